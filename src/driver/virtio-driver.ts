/**
 * The virtio driver core: everything a device driver (rng, blk, net, console) shares. It probes a
 * PCI function once, commits to the interface the probe chose, runs the initialisation sequence of
 * spec 3.1.1, negotiates features in one place (feature-negotiation.ts), sets up queues
 * (virtqueues.ts), keeps the device status and its step (device-status.ts), reads configuration
 * consistently across config_generation (device-configuration.ts), and turns interrupts into queue
 * wake-ups and config-change callbacks (driver-notifications.ts).
 */

import { DeviceFaultError, UsageError } from '../errors.js';
import { ringFormat, type RingFormat } from '../queue/ring-format.js';
import type { DriverRing } from '../queue/types.js';
import { deviceTypeName, VIRTIO_PCI_VENDOR_ID } from '../spec/ids.js';
import { hasFeature, VIRTIO_F_ADMIN_VQ, VIRTIO_F_RING_RESET } from '../spec/features.js';
import { PCI_SUBSYSTEM_ID } from '../spec/pci.js';
import { VIRTIO_CONFIG_S_ACKNOWLEDGE, VIRTIO_CONFIG_S_DRIVER } from '../spec/status.js';
import type { AccessSize } from '../memory/access-size.js';
import type { DriverTransport } from '../transport/pci/driver-transport.js';
import { LegacyDriverTransport } from '../transport/pci/legacy-driver.js';
import { ModernDriverTransport } from '../transport/pci/modern-driver.js';
import { disableMsix, setupInterrupts, type InterruptMode, type InterruptPlan } from '../transport/pci/msix-driver.js';
import { probe, virtioDeviceType, type ProbeOptions, type ProbeResult } from '../transport/pci/probe.js';
import { DriverQueue, type QueueHost } from './driver-queue.js';
import { readConfig64, readConfigStable } from './device-configuration.js';
import { DriverStatus } from './device-status.js';
import { DriverNotifications } from './driver-notifications.js';
import { acceptedFeatures, type RingChoice } from './feature-negotiation.js';
import { checkAdminQueueRange, configureVirtqueue, type QueueOptions } from './virtqueues.js';
import { enumerate } from '../bus/enumerate.js';
import { formatBdf, type Bdf, type InterruptEvent, type PciBus } from '../bus/pci-bus.js';

const DEFAULT_TIMEOUT_MS = 5000;

/**
 * How often the administration queue's used ring is polled when it has no interrupt of its own
 * (MSI-X with a vector per queue: the plan's vectors cover num_queues, see {@link VirtioDriver.setupAdminQueue}).
 */
const ADMIN_POLL_INTERVAL_MS = 1;

export interface VirtioDriverOptions extends ProbeOptions {
  /** Expect this virtio device type (spec 5); UsageError otherwise. */
  readonly deviceType?: number;
  /** Timeout of every wait (used buffers, reset), in ms (default 5000). */
  readonly timeoutMs?: number;
  /** Also poll used rings this often (ms), for buses that cannot deliver interrupts. Default: interrupts only. */
  readonly pollIntervalMs?: number;
  /**
   * 'auto' (default): MSI-X with a vector per queue, else one shared queue vector, else INTx, as
   * Linux's vp_find_vqs; 'msix': MSI-X or an error; 'intx': never enable MSI-X.
   */
  readonly interrupts?: InterruptMode;
  /** The ring format to negotiate (default 'auto'); see {@link RingChoice}. */
  readonly ring?: RingChoice;
}

/**
 * One virtio device, driven through one transport.
 *
 * @example
 * ```ts
 * const [fn] = await VirtioDriver.find(bus, VIRTIO_ID_RNG);
 * const drv = await VirtioDriver.open(bus, fn!, { deviceType: VIRTIO_ID_RNG });
 * await drv.negotiate(featureSet(VIRTIO_F_EVENT_IDX));    // device bits + ring bits wanted
 * const q = await drv.setupQueue<number>(0);
 * await drv.driverOk();
 * const buf = bus.dma.alloc(64, 16);
 * q.submit([], [{ addr: buf.addr, len: 64 }], 1);          // one device-writable buffer
 * await q.kick();
 * const [done] = await q.waitUsed();                        // { token: 1, len }
 * await bus.dma.refresh(buf.addr, done!.len);               // then read buf.bytes
 * await drv.close();
 * ```
 */
export class VirtioDriver implements QueueHost {
  /** Virtio device type (spec 5), e.g. VIRTIO_ID_BLOCK. */
  readonly deviceType: number;
  /** Every feature bit the device offers. */
  readonly deviceFeatures: bigint;
  private negotiated = 0n;
  /** The device status as this driver set it, and its step (device-status.ts). */
  private readonly status: DriverStatus;
  private readonly queues = new Map<number, DriverQueue<unknown>>();
  private readonly configListeners = new Set<() => void>();
  private readonly unsubscribe: () => void;
  private readonly interruptMode: InterruptMode;
  private readonly ringChoice: RingChoice;
  private plan: InterruptPlan | undefined;
  /** The administration queues, as checked by {@link setupAdminQueue}. */
  private adminRange: { readonly index: number; readonly num: number } | undefined;
  /** Interrupts as the notifications of 2.3 (driver-notifications.ts). */
  private readonly notifications = new DriverNotifications({
    readIsr: () => this.transport.readIsr(),
    usedBuffer: (index) => this.queues.get(index)?.signal(),
    usedBuffers: () => this.wakeQueues(),
    configurationChange: () => this.configInterrupt(),
    fault: (error) => {
      this.status.fault ??= error;
    },
  });
  /** Default timeout of every wait, in ms. */
  readonly timeoutMs: number;
  /** QueueHost: poll interval for waits, or undefined to rely on interrupts. */
  readonly pollIntervalMs: number | undefined;

  private constructor(
    readonly bus: PciBus,
    readonly fn: Bdf,
    /** The probe's decision, with its explanation. */
    readonly probe: ProbeResult,
    /** The one interface this driver uses. */
    readonly transport: DriverTransport,
    deviceFeatures: bigint,
    options: VirtioDriverOptions,
  ) {
    this.deviceType = probe.deviceType;
    // open() has set ACKNOWLEDGE and DRIVER (spec 3.1.1 steps 1-3) before building the driver.
    this.status = new DriverStatus(transport, fn, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER, () => this.wakeQueues());
    this.deviceFeatures = deviceFeatures;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.pollIntervalMs = options.pollIntervalMs;
    this.interruptMode = options.interrupts ?? 'auto';
    this.ringChoice = options.ring ?? 'auto';
    this.unsubscribe = bus.onInterrupt(fn, (event) => this.onInterrupt(event));
  }

  /** PCI functions on bus 0 that are virtio devices of `deviceType` (any type when omitted). */
  static async find(bus: PciBus, deviceType?: number): Promise<Bdf[]> {
    const found: Bdf[] = [];
    for (const f of await enumerate(bus)) {
      const subsystemId = await bus.configRead(f.bdf, PCI_SUBSYSTEM_ID, 2);
      const type = f.vendorId === VIRTIO_PCI_VENDOR_ID ? virtioDeviceType(f.deviceId, subsystemId) : undefined;
      if (type !== undefined && (deviceType === undefined || type === deviceType)) found.push(f.bdf);
    }
    return found;
  }

  /**
   * Probe `fn`, commit to the interface the probe chose, reset the device and set ACKNOWLEDGE and
   * DRIVER (spec 3.1.1 steps 1-3), and read the device's features. Next: {@link negotiate}.
   */
  static async open(bus: PciBus, fn: Bdf, options: VirtioDriverOptions = {}): Promise<VirtioDriver> {
    const result = await probe(bus, fn, options);
    if (options.deviceType !== undefined && result.deviceType !== options.deviceType)
      throw new UsageError(`${formatBdf(fn)} is a ${deviceTypeName(result.deviceType)}, not a ${deviceTypeName(options.deviceType)}`);
    const transport = createTransport(bus, result, options.timeoutMs ?? DEFAULT_TIMEOUT_MS);
    await transport.reset();
    await transport.setStatus(VIRTIO_CONFIG_S_ACKNOWLEDGE);
    await transport.setStatus(VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
    const features = await transport.deviceFeatures();
    return new VirtioDriver(bus, fn, result, transport, features, options);
  }

  /** The features both sides agreed on (after {@link negotiate}). */
  get features(): bigint {
    return this.negotiated;
  }

  /** The ring format of every queue, as negotiated (the split ring before {@link negotiate}). */
  get ringFormat(): RingFormat {
    return ringFormat(this.negotiated);
  }

  /** How the device interrupts this driver, chosen after {@link negotiate} (undefined before). */
  get interrupts(): InterruptPlan | undefined {
    return this.plan;
  }

  /** The fault that stopped this driver, if any (see {@link QueueHost.fault}). */
  get fault(): Error | undefined {
    return this.status.fault;
  }

  /**
   * Feature negotiation (spec 3.1.1 steps 4-6). Accepts the offered bits among `wanted` (transport
   * bits only where this core implements them, see DRIVER_CORE_FEATURES; on the modern interface
   * VERSION_1, NOTIFICATION_DATA, NOTIF_CONFIG_DATA and RING_RESET whenever offered; VERSION_1 never
   * on the legacy one, ANY_LAYOUT there whenever offered; VIRTIO_F_RING_PACKED as the `ring` option says, whatever `wanted` holds),
   * drops every bit whose dependencies are not accepted with it (2.2.1, the device type's table in
   * spec/feature-requirements.ts: e.g. net's CTRL_RX without CTRL_VQ), writes them, sets FEATURES_OK
   * and reads it back.
   * Throws DeviceFaultError ERR_DEVICE_FEATURES (after setting FAILED) when a `required` bit is not
   * offered (the packed ring too, with `ring: 'packed'`) or the device does not keep FEATURES_OK.
   * Returns the accepted features.
   */
  async negotiate(wanted: bigint, required = 0n): Promise<bigint> {
    this.status.expect('features', 'negotiate()');
    const modern = this.transport.kind === 'modern';
    const offer = { deviceType: this.deviceType, offered: this.deviceFeatures, modern, ring: this.ringChoice };
    const accepted = acceptedFeatures(offer, wanted, required);
    if (accepted instanceof DeviceFaultError) return this.status.fail(accepted);
    await this.transport.setDriverFeatures(accepted);
    if (modern) await this.status.featuresOk(accepted);
    this.negotiated = accepted;
    // Vectors are assigned to every queue before any is enabled (4.1.5.1.3).
    this.plan = await setupInterrupts(this.bus, this.fn, this.probe, this.transport, this.interruptMode);
    this.status.phase = 'queues';
    return accepted;
  }

  /**
   * Set up and enable queue `index` (spec 4.1.5.1.3): check it exists, choose its size, allocate
   * its rings in DMA memory, tell the device where they are, enable it. Throws DeviceFaultError
   * ERR_DEVICE_QUEUE when the device has no such queue.
   */
  async setupQueue<T = unknown>(index: number, options: QueueOptions = {}): Promise<DriverQueue<T>> {
    this.status.expect('queues', 'setupQueue()');
    if (this.queues.has(index)) throw new UsageError(`queue ${index} is already set up`);
    const ring = await this.enableQueueRing<T>(index, options);
    const queue = new DriverQueue<T>(index, ring, this, this.timeoutMs);
    this.queues.set(index, queue);
    return queue;
  }

  /**
   * Set up and enable the first administration virtqueue (VIRTIO_F_ADMIN_VQ negotiated; 2.13,
   * 4.1.4.3.2: only an index in admin_queue_index .. admin_queue_index + admin_queue_num - 1). The
   * device's admin_queue_index and admin_queue_num are checked first (4.1.4.3.1: the range lies
   * past num_queues and inside 16 bits): DeviceFaultError ERR_DEVICE_QUEUE when they break that or
   * name no queue. The queue then behaves as any other; device/admin's command format is
   * driver/admin/admin-queue.ts's. With MSI-X and a vector per queue it gets no vector and is polled.
   */
  async setupAdminQueue<T = unknown>(options: QueueOptions = {}): Promise<DriverQueue<T>> {
    this.status.expect('queues', 'setupAdminQueue()');
    if (!hasFeature(this.negotiated, VIRTIO_F_ADMIN_VQ)) throw new UsageError('VIRTIO_F_ADMIN_VQ was not negotiated');
    const [{ index, num }, numQueues] = await Promise.all([this.transport.adminQueues(), this.transport.numQueues()]);
    checkAdminQueueRange(index, num, numQueues);
    if (this.queues.has(index)) throw new UsageError(`administration queue ${index} is already set up`);
    this.adminRange = { index, num };
    const ring = await this.enableQueueRing<T>(index, options);
    const polled = this.plan?.kind === 'msix-per-queue' ? (this.pollIntervalMs ?? ADMIN_POLL_INTERVAL_MS) : this.pollIntervalMs;
    const queue = new DriverQueue<T>(index, ring, this.queueHost(polled), this.timeoutMs);
    this.queues.set(index, queue);
    return queue;
  }

  /** This driver as the host of a queue polled every `pollIntervalMs`. */
  private queueHost(pollIntervalMs: number | undefined): QueueHost {
    const faultOf = (): Error | undefined => this.status.fault;
    const suspendedOf = (): boolean => this.suspended;
    return {
      notify: (index, next) => this.notify(index, next),
      get fault() {
        return faultOf();
      },
      get suspended() {
        return suspendedOf();
      },
      pollIntervalMs,
      timeoutError: (index, timeoutMs) => this.timeoutError(index, timeoutMs),
      resetQueue: (index) => this.resetQueue(index),
      enableRing: (index, size) => this.enableRing(index, size),
    };
  }

  /** Whether `index` is an administration queue of the range {@link setupAdminQueue} checked. */
  private isAdminQueue(index: number): boolean {
    const range = this.adminRange;
    return range !== undefined && index >= range.index && index < range.index + range.num;
  }

  /** Set up queue `index` (virtqueues.ts); the administration queues are those {@link setupAdminQueue} checked. */
  private enableQueueRing<T>(index: number, options: QueueOptions): Promise<DriverRing<T>> {
    return configureVirtqueue<T>(this, index, options, (i) => this.isAdminQueue(i));
  }

  /** QueueHost: VIRTIO_F_RING_RESET, the device side of {@link DriverQueue.reset}. */
  async resetQueue(index: number): Promise<void> {
    this.status.expect('live', 'a queue reset');
    if (!hasFeature(this.negotiated, VIRTIO_F_RING_RESET)) throw new UsageError(`queue ${index}: VIRTIO_F_RING_RESET was not negotiated`);
    await this.transport.resetQueue(index);
  }

  /** QueueHost: the queue set up again after its reset (2.6.1.2), as at first set-up. */
  async enableRing<T>(index: number, size: number | undefined): Promise<DriverRing<T>> {
    this.status.expect('live', 'a queue re-enable');
    return this.enableQueueRing<T>(index, { size });
  }

  /** Set DRIVER_OK (spec 3.1.1 step 8): the device is live. Throws if it answers with DEVICE_NEEDS_RESET. */
  async driverOk(): Promise<void> {
    await this.status.driverOk();
  }

  /**
   * VIRTIO_F_SUSPEND (3.4): set SUSPEND and wait until the device shows itself suspended (SUSPEND
   * set, DRIVER_OK clear, 3.4.1), at most `timeoutMs` (DeviceFaultError ERR_DEVICE_TIMEOUT; a device
   * that sets DEVICE_NEEDS_RESET instead fails with ERR_DEVICE_NEEDS_RESET). Until {@link resume} the
   * queues refuse {@link DriverQueue.kick}; after a timeout only {@link close} (a reset) recovers.
   * UsageError unless live with VIRTIO_F_SUSPEND negotiated.
   */
  suspend(timeoutMs = this.timeoutMs): Promise<void> {
    return this.status.suspend(this.negotiated, timeoutMs);
  }

  /**
   * 3.4: set DRIVER_OK again on the suspended device and wait until it runs (SUSPEND clear, DRIVER_OK
   * set), at most `timeoutMs`; the queues are usable again. UsageError unless suspended.
   */
  resume(timeoutMs = this.timeoutMs): Promise<void> {
    return this.status.resume(timeoutMs);
  }

  /** QueueHost: whether the device is suspended (or being suspended) by {@link suspend}. */
  get suspended(): boolean {
    return this.status.phase === 'suspended';
  }

  /** Read the device status and turn DEVICE_NEEDS_RESET into this driver's fault. */
  checkStatus(): Promise<number> {
    return this.status.check();
  }

  /** Read one device-configuration field of up to 4 bytes (a single access, so never torn). */
  readConfig(offset: number, size: AccessSize): Promise<number> {
    return this.transport.readConfig(offset, size);
  }

  /** Write one device-configuration field. */
  writeConfig(offset: number, size: AccessSize, value: number): Promise<void> {
    return this.transport.writeConfig(offset, size, value);
  }

  /**
   * Run `read` (several configuration reads) until config_generation is the same before and after
   * (spec 4.1.4.3.1, 2.5.1), at most 16 times; DeviceFaultError ERR_DEVICE_CONFIG if it never settles.
   */
  readConfigStable<R>(read: () => Promise<R>): Promise<R> {
    return readConfigStable(this.transport, read);
  }

  /** A 64-bit configuration field, read as two 32-bit halves within one generation. */
  readConfig64(offset: number): Promise<bigint> {
    return readConfig64(this.transport, offset);
  }

  /** Call `listener` on each configuration-change interrupt; returns the unsubscribe function. */
  onConfigChange(listener: () => void): () => void {
    this.configListeners.add(listener);
    return () => this.configListeners.delete(listener);
  }

  /** QueueHost: notify the device about queue `index` (the transport adds `next` when notification data was negotiated). */
  notify(index: number, next: number): Promise<void> {
    return this.transport.notify(index, next);
  }

  /** QueueHost: a wait timed out; blame DEVICE_NEEDS_RESET if the device set it. */
  async timeoutError(index: number, timeoutMs: number): Promise<Error> {
    try {
      await this.checkStatus();
    } catch (error) {
      return error as Error;
    }
    return new DeviceFaultError('ERR_DEVICE_TIMEOUT', `${formatBdf(this.fn)} queue ${index}: no used buffer within ${timeoutMs} ms`);
  }

  /** An interrupt: a notification from the device (see driver-notifications.ts), unless closed. */
  private onInterrupt(event: InterruptEvent): void {
    if (this.status.phase === 'closed') return;
    this.notifications.interrupt(event, this.plan);
  }

  private wakeQueues(): void {
    for (const q of this.queues.values()) q.signal();
  }

  /** A configuration change: DEVICE_NEEDS_RESET (2.1.2) becomes the driver's fault, anything else goes to the listeners. */
  private async configInterrupt(): Promise<void> {
    try {
      await this.checkStatus();
    } catch {
      return; // the fault is recorded and every waiter woken
    }
    for (const listener of this.configListeners) listener();
  }

  /** Reset the device (stopping it from touching DMA memory), stop listening, and fail further waits. */
  async close(): Promise<void> {
    if (this.status.phase === 'closed') return;
    this.status.phase = 'closed';
    this.unsubscribe();
    this.status.fault ??= new UsageError('driver closed');
    this.wakeQueues();
    await this.transport.reset();
    if (this.plan !== undefined && this.plan.kind !== 'intx' && this.probe.msix !== undefined)
      await disableMsix(this.bus, this.fn, this.probe.msix, this.transport);
    // The device no longer touches the rings, and once a publish or reap waiting on the bus has
    // ended neither do we: their memory can go back to the allocator.
    await Promise.all([...this.queues.values()].map((q) => q.idle()));
    for (const q of this.queues.values()) q.destroy();
  }
}

/** The transport the probe committed to. */
function createTransport(bus: PciBus, result: ProbeResult, timeoutMs: number): DriverTransport {
  return result.kind === 'modern'
    ? new ModernDriverTransport(bus, result.layout, { resetTimeoutMs: timeoutMs })
    : new LegacyDriverTransport(bus, result.bar0, { resetTimeoutMs: timeoutMs });
}
