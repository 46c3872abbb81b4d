/**
 * The device's virtqueues as the device core drives them (2.6, 4.1.4.3): each queue's
 * configuration and when the driver may change it (3.1.1 step 7), the rings live since activation,
 * queue reset (2.6.1), the administration queue beside the device's own (2.13), and the suspend
 * gate (device-suspend.ts) the device model sees its queues through. The device core decides when
 * the device starts, stops and resets; this builds, enables, resets and disables the queues.
 */

import { asError, type ActivateContext, type ResetCompletion, type VirtioDevice } from './virtio-device.js';
import type { AdminQueueHandler } from './admin-queue-handler.js';
import type { DeviceStatus } from './device-status.js';
import { whenSettled, type PendingResets } from './device-reset.js';
import { SuspendGate } from './device-suspend.js';
import { RING_AREAS, VirtqueueConfig, type RingArea } from './virtqueue-config.js';
import type { QueueImage } from './core-snapshot.js';
import type { GuestMemory } from '../memory/guest-memory.js';
import { checkQueueMaxSize, ringFormat } from '../queue/ring-format.js';
import type { DeviceRingOptions } from '../queue/rings.js';
import type { DeviceQueue } from '../queue/types.js';
import { DRIVER_REQUIREMENTS as R, type DriverAuditSink } from '../spec/driver-requirements.js';
import { VIRTIO_F_ADMIN_VQ, VIRTIO_F_RING_RESET, hasFeature } from '../spec/features.js';
import { VIRTIO_CONFIG_S_DRIVER_OK } from '../spec/status.js';

/** What the queues need of the device core they belong to. */
export interface VirtqueuesHost {
  readonly device: VirtioDevice;
  readonly memory: GuestMemory;
  readonly audit: DriverAuditSink | undefined;
  /** The features the driver has written (the rings are built for them). */
  readonly driverFeatures: bigint;
  /** The negotiated features once FEATURES_OK is set, else 0. */
  readonly negotiatedFeatures: bigint;
  readonly needsResetSet: boolean;
  /** A fault (a ring the driver set up wrongly, a device model that threw): DEVICE_NEEDS_RESET. */
  needsReset(cause: Error): void;
  /** Used elements were pushed on queue `index`. */
  usedBuffers(index: number): void;
}

/** What the queues are made of: the device model's maximum sizes, an administration queue, how rings are built. */
export interface VirtqueuesOptions {
  readonly maxSizes: readonly number[];
  readonly adminQueue: AdminQueueHandler | undefined;
  readonly buildRing: (options: DeviceRingOptions) => DeviceQueue;
}

/** See the file comment. */
export class Virtqueues {
  /** The device's own queues (num_queues); the administration queue is {@link adminQueue}. */
  readonly queues: readonly VirtqueueConfig[];
  /** The administration queue's configuration, at index num_queues (VIRTIO_F_ADMIN_VQ offered), else undefined. */
  readonly adminQueue: VirtqueueConfig | undefined;
  private readonly adminHandler: AdminQueueHandler | undefined;
  /** Builds a queue's device ring (DeviceCoreOptions.deviceRing). */
  readonly buildRing: (options: DeviceRingOptions) => DeviceQueue;
  /** Queues live since activation (null where not enabled); the administration queue's at its index. */
  active: (DeviceQueue | null)[] = [];
  /** Whether the device model was activated since the last reset (at DRIVER_OK, or at first use, see InterfaceRules.usableBeforeDriverOk). */
  activated = false;
  /** The suspension state of this life's queues (3.4); a new gate at every activation and reset. */
  gate = new SuspendGate();

  constructor(
    private readonly host: VirtqueuesHost,
    private readonly status: DeviceStatus,
    private readonly pendingResets: PendingResets,
    options: VirtqueuesOptions,
  ) {
    const admin = options.adminQueue;
    this.buildRing = options.buildRing;
    this.queues = options.maxSizes.map((max, i) => {
      checkQueueMaxSize(`queue ${i}: maximum size`, max);
      return new VirtqueueConfig(i, max);
    });
    if (admin !== undefined) checkQueueMaxSize('administration queue: maximum size', admin.queueMaxSize);
    this.adminHandler = admin;
    this.adminQueue = admin === undefined ? undefined : new VirtqueueConfig(this.queues.length, admin.queueMaxSize);
  }

  /** Every queue the transport addresses: the device's and, when offered, the administration queue. */
  get count(): number {
    return this.queues.length + (this.adminQueue === undefined ? 0 : 1);
  }

  /** admin_queue_index and admin_queue_num (4.1.4.3) once VIRTIO_F_ADMIN_VQ is negotiated, else undefined. */
  get adminRange(): { readonly index: number; readonly num: number } | undefined {
    return this.adminQueue !== undefined && hasFeature(this.host.negotiatedFeatures, VIRTIO_F_ADMIN_VQ)
      ? { index: this.adminQueue.index, num: 1 }
      : undefined;
  }

  /** Queue `index` as the driver can select it (the administration queue once VIRTIO_F_ADMIN_VQ is negotiated). */
  config(index: number): VirtqueueConfig | undefined {
    if (index >= 0 && index < this.queues.length) return this.queues[index];
    return this.adminRange !== undefined && index === this.adminQueue!.index ? this.adminQueue : undefined;
  }

  /** Whether VIRTIO_F_RING_RESET was negotiated (queues can be reset and re-enabled while live). */
  get ringResetNegotiated(): boolean {
    return hasFeature(this.host.negotiatedFeatures, VIRTIO_F_RING_RESET);
  }

  // ---- queue configuration (4.1.4.3) ----

  /** Whether queue `index`'s configuration may change now (see DeviceCore.queueWritable). */
  writable(index: number): boolean {
    const q = this.config(index);
    // 3.4.2: a suspended device ignores configuration writes.
    if (q === undefined || q.enabled || q.resetPending || this.status.suspendSet) return false;
    // 2.6.1.2: with RING_RESET a disabled (reset) queue is set up again while the device is live.
    if ((this.status.value & VIRTIO_CONFIG_S_DRIVER_OK) !== 0) return this.ringResetNegotiated && !this.host.needsResetSet;
    return this.status.inQueueSetup;
  }

  /** A size the negotiated ring format allows (2.6), no larger than the maximum; anything else is ignored. */
  setSize(index: number, size: number): void {
    const q = this.config(index);
    if (this.host.audit !== undefined) this.auditSetup(index, 'queue_size');
    if (q !== undefined && this.writable(index) && ringFormat(this.host.negotiatedFeatures).isQueueSize(size) && size <= q.maxSize)
      q.size = size;
  }
  setRingHalf(index: number, area: RingArea, half: 0 | 1, value: number): void {
    if (this.host.audit !== undefined) this.auditSetup(index, `the ${area} area address`);
    if (this.writable(index)) this.config(index)!.setRingHalf(area, half, value);
  }
  /** Audit: queue fields change only while the queue is disabled, in the set-up state (3.1.1, 4.1.4.3.2). */
  private auditSetup(index: number, field: string): void {
    const audit = this.host.audit!;
    const q = this.config(index);
    // With ADMIN_VQ every index past num_queues is an administration queue's: only the range reported may be set up.
    if (q === undefined && index >= this.queues.length && this.adminRange !== undefined)
      audit(
        R.commonAdminQueueRange,
        `${field} of queue ${index} written; the administration queues are ${this.adminRange.index}..${this.adminRange.index + this.adminRange.num - 1}`,
      );
    if (q === undefined || q.resetPending || this.writable(index)) return;
    if (this.status.suspendSet) audit(R.suspendNoConfigWrite, `${field} of queue ${index} written while SUSPEND is set`);
    else if (q.enabled) audit(R.commonConfigureBeforeEnable, `${field} of queue ${index} written after the queue was enabled`);
    else audit(R.initQueueSetupState, `${field} of queue ${index} written in status 0x${this.status.value.toString(16)}`);
  }
  enable(index: number): void {
    if (this.host.audit !== undefined) this.auditSetup(index, 'queue_enable');
    if (!this.writable(index)) return;
    const q = this.config(index)!;
    q.enabled = true;
    if (!this.activated) return;
    // Re-enabled after a queue reset (2.6.1.2), or enabled in a device used before DRIVER_OK: live at once.
    try {
      const queue = this.build(q);
      this.active[index] = queue;
      if (q !== this.adminQueue) this.host.device.enableQueue?.(this.gate.wrap(queue));
    } catch (e) {
      this.host.needsReset(asError(e));
    }
  }

  /** 2.6.1.1 queue reset (see DeviceCore.resetQueue). */
  reset(index: number): void {
    const q = this.config(index);
    if (q === undefined || q.resetPending || !this.ringResetNegotiated || (this.status.value & VIRTIO_CONFIG_S_DRIVER_OK) === 0) return;
    if (this.status.suspendSet) {
      this.host.audit?.(R.suspendNoConfigWrite, `queue_reset of queue ${index} written while SUSPEND is set`);
      return;
    }
    this.active[index] = null;
    let completion: ResetCompletion = undefined;
    try {
      // The administration queue answers each command as it is notified: nothing of it is in flight.
      if (q !== this.adminQueue) completion = this.host.device.resetQueue?.(index);
    } catch (e) {
      this.host.needsReset(asError(e));
    }
    q.reset();
    this.pendingResets.beginQueue(q, completion);
  }

  /** Take an enabled queue back to disabled with no rings (see DeviceCore.disableQueue). */
  disable(index: number): void {
    const q = this.queues[index];
    if (q === undefined || !this.status.inQueueSetup) return;
    if (q.enabled && this.active[index]) {
      // Live in a device used before DRIVER_OK: the device model stops using it first.
      this.active[index] = null;
      try {
        whenSettled(this.host.device.resetQueue?.(index), () => undefined);
      } catch (e) {
        this.host.needsReset(asError(e));
      }
    }
    q.enabled = false;
    for (const area of RING_AREAS) for (const half of [0, 1] as const) q.setRingHalf(area, half, 0);
  }

  // ---- the queues' life: activation to reset ----

  /** A live queue over `q`'s rings (the constructor validates them; throws QueueFaultError). */
  private build(q: VirtqueueConfig): DeviceQueue {
    const areas = { desc: q.ringAddress('desc'), driver: q.ringAddress('driver'), device: q.ringAddress('device') };
    return this.buildRing({ index: q.index, size: q.size, memory: this.host.memory, areas, features: this.host.driverFeatures });
  }

  /** DRIVER_OK: build the enabled queues (validating their rings) and hand them to the device. */
  activate(): void {
    const features = this.host.driverFeatures;
    this.activated = true;
    this.gate = new SuspendGate();
    try {
      this.active = this.queues.map((q) => (q.enabled ? this.build(q) : null));
      // The model sees its queues through the suspend gate (device-suspend.ts); the administration
      // queue lives beside them, never among them.
      const ctx: ActivateContext = { features, queues: this.active.map((q) => q && this.gate.wrap(q)) };
      if (this.adminQueue?.enabled === true) this.active[this.adminQueue.index] = this.build(this.adminQueue);
      this.host.device.activate(ctx);
    } catch (e) {
      this.host.needsReset(asError(e));
    }
  }

  /** A device reset begins: the device stops using its queues at once. */
  stop(): void {
    this.active = [];
    this.activated = false;
    this.gate = new SuspendGate();
  }

  /** A device reset: the administration queue's owner and every queue's configuration back to their power-on state. */
  resetAll(): void {
    this.adminHandler?.reset();
    for (const q of this.queues) q.reset();
    this.adminQueue?.reset();
  }

  /** Take the queues of a snapshot read by core-snapshot.ts (checked there): their configuration and rings. */
  restore(images: readonly QueueImage[], activated: boolean): void {
    images.forEach(({ size, enabled, areas }, i) => {
      const q = this.queues[i]!;
      q.size = size;
      q.enabled = enabled;
      for (const area of RING_AREAS) {
        q.setRingHalf(area, 0, Number(areas[area] & 0xffff_ffffn));
        q.setRingHalf(area, 1, Number(areas[area] >> 32n));
      }
    });
    this.active = images.map((q) => q.ring);
    this.activated = activated;
    this.gate = new SuspendGate();
  }

  /** The administration queue was notified: its handler answers every command queued (throws on a ring fault). */
  serveAdmin(queue: DeviceQueue): void {
    if (this.adminHandler!.serve(queue, this.host.audit)) this.host.usedBuffers(queue.index);
  }
}
