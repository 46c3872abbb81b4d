/**
 * One queue of a device driven by hand, for the ring checks (split-ring, packed-ring,
 * event-suppression): the device initialised through the check's transport with only the ring
 * features a check asks for, one queue enabled on rings the check builds descriptor by descriptor.
 *
 * The rings are the mock rings of virtio-ts/testing (MockQueue, MockPackedQueue: chains built by name,
 * raw pokes for hostile ones) placed in one DMA window, wrapped as guest memory. Over a remote bus
 * (QEMU over qtest) the window is a local copy: {@link kick} flushes all of it before the
 * notification and {@link poll} refreshes it, so a check reads what the device wrote. Used buffer
 * notifications are seen through the ISR (MSI-X is turned off), which reading clears.
 */

import { DeviceFaultError, UsageError } from '../errors.js';
import type { DmaBuffer } from '../memory/dma.js';
import { PACKED_RING, SPLIT_RING } from '../queue/ring-format.js';
import { featureSet, VIRTIO_F_RING_PACKED, VIRTIO_F_VERSION_1 } from '../spec/features.js';
import { PCI_MSIX_FLAGS, PCI_MSIX_FLAGS_ENABLE } from '../spec/pci.js';
import {
  VIRTIO_CONFIG_S_ACKNOWLEDGE,
  VIRTIO_CONFIG_S_DRIVER,
  VIRTIO_CONFIG_S_DRIVER_OK,
  VIRTIO_CONFIG_S_FEATURES_OK,
} from '../spec/status.js';
import { VIRTIO_PCI_ISR_QUEUE } from '../spec/virtio-pci.js';
import { MockPackedQueue } from '../testing/mock-packed-queue.js';
import { MockQueue } from '../testing/mock-queue.js';
import type { ChainSpec, UsedElem } from '../testing/mock-ring.js';
import { disableMsix } from '../transport/pci/msix-driver.js';
import type { DriverTransport } from '../transport/pci/driver-transport.js';
import type { CheckContext } from './statement.js';
import { WriteTrackingMemory } from './written-ranges.js';

/** Bytes of the DMA window the rings and buffers live in. */
const WINDOW_BYTES = 64 * 1024;
/** Queue size the checks use when the device allows it: small, so that wrapping is cheap. */
const DEFAULT_QUEUE_SIZE = 16;
/** First poll interval of {@link RingSession.poll}, in ms; doubled up to 20. */
const POLL_START_MS = 1;

export interface RingSessionOptions {
  readonly format: 'split' | 'packed';
  /** Queue to enable. */
  readonly queue: number;
  /** Ring features (INDIRECT_DESC, EVENT_IDX, IN_ORDER) to accept when offered; the rest are declined. */
  readonly accept?: bigint;
  /** Queue size wanted (capped by the device's maximum; a power of 2 on the split ring). */
  readonly size?: number;
}

/** See the file comment. */
export class RingSession {
  private constructor(
    private readonly ctx: CheckContext,
    readonly transport: DriverTransport,
    /** The features negotiated. */
    readonly features: bigint,
    readonly queue: number,
    /** The ring the check drives (its `memory` is the DMA window). */
    readonly ring: MockQueue | MockPackedQueue,
    private readonly window: DmaBuffer,
    private readonly memory: WriteTrackingMemory,
  ) {}

  /**
   * Reset the device, negotiate VERSION_1 (modern), the ring format and the offered bits of
   * `accept`, enable `queue` on fresh rings and set DRIVER_OK. Through the legacy interface (the
   * check's `via`): the split ring in the legacy layout, of the device's fixed size, without
   * FEATURES_OK. UsageError when the check asked for the packed ring where it is not offered (its
   * `applies` should have said so); DeviceFaultError when the device refuses FEATURES_OK or has no
   * such queue.
   */
  static async open(ctx: CheckContext, options: RingSessionOptions): Promise<RingSession> {
    const transport = await ctx.transport();
    const legacy = transport.kind === 'legacy';
    const probe = await ctx.probe();
    if (probe.msix !== undefined) {
      const control = await ctx.bus.configRead(ctx.fn, probe.msix.offset + PCI_MSIX_FLAGS, 2);
      if ((control & PCI_MSIX_FLAGS_ENABLE) !== 0) await disableMsix(ctx.bus, ctx.fn, probe.msix, transport);
    }
    await transport.reset();
    await transport.setStatus(VIRTIO_CONFIG_S_ACKNOWLEDGE);
    await transport.setStatus(VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
    const offered = await transport.deviceFeatures();
    const packed = options.format === 'packed';
    const wanted =
      (legacy ? 0n : featureSet(VIRTIO_F_VERSION_1)) | (options.accept ?? 0n) | (packed ? featureSet(VIRTIO_F_RING_PACKED) : 0n);
    const features = offered & wanted;
    if (packed !== ((features & featureSet(VIRTIO_F_RING_PACKED)) !== 0n))
      throw new UsageError('the device does not offer VIRTIO_F_RING_PACKED through this interface');
    await transport.setDriverFeatures(features);
    // The legacy interface has no FEATURES_OK (3.1.2).
    const status = VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | (legacy ? 0 : VIRTIO_CONFIG_S_FEATURES_OK);
    if (!legacy) {
      await transport.setStatus(status);
      if (((await transport.getStatus()) & VIRTIO_CONFIG_S_FEATURES_OK) === 0)
        throw new DeviceFaultError('ERR_DEVICE_FEATURES', `the device refused FEATURES_OK for features 0x${features.toString(16)}`);
    }
    if (options.queue >= (await transport.numQueues()))
      throw new DeviceFaultError('ERR_DEVICE_QUEUE', `the device has no queue ${options.queue}`);
    const max = await transport.queueMaxSize(options.queue);
    if (max === 0) throw new DeviceFaultError('ERR_DEVICE_QUEUE', `queue ${options.queue} is not available (queue_size 0)`);
    const format = packed ? PACKED_RING : SPLIT_RING;
    if (legacy && !format.isQueueSize(max))
      throw new DeviceFaultError('ERR_DEVICE_QUEUE', `queue ${options.queue}: fixed size ${max} is not a split ring size`);
    const size = legacy ? max : format.largestQueueSize(Math.min(max, options.size ?? DEFAULT_QUEUE_SIZE));

    const dma = ctx.bus.dma;
    const window = dma.alloc(WINDOW_BYTES, 4096);
    window.bytes.fill(0);
    const memory = new WriteTrackingMemory(window.bytes, window.addr);
    const ringOptions = { size, memory, base: window.addr, legacyLayout: legacy };
    const ring = packed ? new MockPackedQueue(ringOptions) : new MockQueue(ringOptions);
    const session = new RingSession(ctx, transport, features, options.queue, ring, window, memory);
    try {
      await ctx.bus.dma.flush(window.addr, WINDOW_BYTES); // zeroed rings, before the device learns where they are
      memory.takeWritten();
      const areas =
        ring instanceof MockQueue
          ? { descAddr: ring.descAddr, driverAddr: ring.availAddr, deviceAddr: ring.usedAddr }
          : { descAddr: ring.descAddr, driverAddr: ring.driverAddr, deviceAddr: ring.deviceAddr };
      await transport.setupQueue(options.queue, { size, ...areas });
      await transport.enableQueue(options.queue);
      await transport.setStatus(status | VIRTIO_CONFIG_S_DRIVER_OK);
      await transport.readIsr(); // start with a clear ISR
    } catch (error) {
      await session.close();
      throw error;
    }
    ctx.note(`${options.format} ring of ${size} on queue ${options.queue}, features 0x${features.toString(16)}`);
    return session;
  }

  get size(): number {
    return this.ring.size;
  }

  /** Build `spec` as a chain and make it available (visible to the device after {@link kick}); its id. */
  add(spec: ChainSpec): number {
    return this.ring.addChain(spec);
  }

  /** Make the check's writes since the last flush visible to the device, in the order made. */
  async flush(): Promise<void> {
    for (const range of this.memory.takeWritten()) await this.ctx.bus.dma.flush(range.addr, range.len);
  }

  /** Bring every device write into the local image (after flushing the check's own). */
  async refresh(): Promise<void> {
    await this.flush();
    await this.ctx.bus.dma.refresh(this.window.addr, WINDOW_BYTES);
  }

  /** Flush the check's writes, then notify the queue (with notification data when negotiated: none is). */
  async kick(): Promise<void> {
    await this.flush();
    await this.transport.notify(this.queue, 0);
  }

  /**
   * Poll until `done()` holds on the refreshed window or the check's time runs out; whether it held.
   * `minMs`: poll at least this long even when `done()` holds at once (to give a device the time to
   * do what it should not).
   */
  async poll(done: () => boolean, minMs = 0): Promise<boolean> {
    const start = Date.now();
    for (let delay = POLL_START_MS; ; delay = Math.min(delay * 2, 20)) {
      await this.refresh();
      const elapsed = Date.now() - start;
      if (elapsed >= minMs && done()) return true;
      if (elapsed >= this.ctx.timeoutMs) return done();
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }

  /**
   * Wait until the device has returned `count` used elements; the ones read, fewer when time ran
   * out. DeviceFaultError ERR_DEVICE_USED_ID when one names a buffer not in flight (the check
   * cannot judge its statement on such a device).
   */
  async waitUsed(count: number): Promise<UsedElem[]> {
    const got: UsedElem[] = [];
    let fault: DeviceFaultError | undefined;
    await this.poll(() => {
      try {
        got.push(...this.ring.readUsed());
      } catch (error) {
        fault = new DeviceFaultError('ERR_DEVICE_USED_ID', `queue ${this.queue}: ${(error as Error).message}`);
      }
      return got.length >= count || fault !== undefined;
    });
    if (fault !== undefined) throw fault;
    return got;
  }

  /** Whether a used buffer notification came since the last call (the ISR's queue bit; reading clears it). */
  async notified(): Promise<boolean> {
    return ((await this.transport.readIsr()) & VIRTIO_PCI_ISR_QUEUE) !== 0;
  }

  /** Reset the device, then give the window back (kept when the reset fails: the device may still write it). */
  async close(): Promise<void> {
    await this.transport.reset();
    this.ctx.bus.dma.free(this.window);
  }
}

/** Run `body` on a fresh session; the session is closed however `body` ends. */
export async function withRing<R>(ctx: CheckContext, options: RingSessionOptions, body: (s: RingSession) => Promise<R>): Promise<R> {
  const session = await RingSession.open(ctx, options);
  try {
    return await body(session);
  } finally {
    await session.close();
  }
}
