/**
 * What a device model is (after Firecracker's VirtioDevice): features, config bytes, queues,
 * activate and reset, and services from its transport. Device models never see PCI: the transport
 * maps them onto PCI (modern, legacy or transitional), and another transport could reuse them.
 */

import type { GuestMemory } from '../memory/guest-memory.js';
import type { AccessSize } from '../memory/access-size.js';
import type { DeviceQueue } from '../queue/types.js';
import type { SharedMemoryRegion } from './shared-memory.js';
import type { DriverAuditSink } from '../spec/driver-requirements.js';
import type { SnapshotReader } from '../snapshot/snapshot-reader.js';
import type { SnapshotStruct } from '../snapshot/snapshot-value.js';

/** Services the transport gives a device model. */
export interface VirtioDeviceHost {
  readonly memory: GuestMemory;
  /** Device config changed: bump config_generation and send a configuration change notification when live (2.3). */
  configChanged(): void;
  /**
   * Device config changed because a driver request asked for it (e.g. net's mac after
   * VIRTIO_NET_CTRL_MAC_ADDR_SET): change config_generation (4.1.4.3.1: a driver reading the config
   * across the change must see a new generation), without a configuration change notification
   * (the driver knows: it asked). Optional for hosts written before it; the transports' core has it.
   */
  configChangedByDriver?(): void;
  /** Used elements were pushed on queue `index`: a used buffer notification, subject to event suppression (2.3). */
  usedBuffers(index: number): void;
  /** A fatal error caused by the guest: set DEVICE_NEEDS_RESET and stop processing until reset. */
  needsReset(cause: Error): void;
  /** In audit mode, where the device model records the driver statements it sees broken (core/driver-audit.ts). */
  readonly audit?: DriverAuditSink | undefined;
}

/**
 * What {@link VirtioDevice.reset} and {@link VirtioDevice.resetQueue} return: nothing when no
 * operation of the old life is outstanding, else a promise that settles (it never rejects) once no
 * backend operation started before the reset can touch guest memory or the backend any more. The
 * transport reports the reset finished only then (device_status reads 0, queue_reset reads 0).
 */
export type ResetCompletion = void | Promise<void>;

/** Given at DRIVER_OK: the negotiated features and the enabled queues (null where not enabled). */
export interface ActivateContext {
  readonly features: bigint;
  readonly queues: readonly (DeviceQueue | null)[];
}

export interface VirtioDevice {
  /** Virtio device type (spec 5), e.g. VIRTIO_ID_BLOCK. */
  readonly deviceType: number;
  /** Device-specific feature bits offered; the transport adds the transport/ring bits it supports. */
  readonly deviceFeatures: bigint;
  /** Maximum size of each queue; the count is num_queues. */
  readonly queueMaxSizes: readonly number[];
  /** Length of the device-specific configuration space. */
  readonly configSize: number;
  /**
   * Shared memory regions (2.10) the device presents, each with a unique shmid; none when absent.
   * Read once, when the transport is built: the PCI transport places them in a BAR (shared-memory-cfg.ts).
   */
  readonly sharedMemoryRegions?: readonly SharedMemoryRegion[];
  /** Called once by the transport before any other call. */
  attach(host: VirtioDeviceHost): void;
  /** Read device config; the transport guarantees offset + size <= configSize. */
  readConfig(offset: number, size: AccessSize): number;
  writeConfig(offset: number, size: AccessSize, value: number): void;
  /** Whether the device accepts this feature set (beyond being a subset of the offer); FEATURES_OK otherwise refused. */
  acceptFeatures?(features: bigint): boolean;
  /** The driver set DRIVER_OK. */
  activate(ctx: ActivateContext): void;
  /**
   * The driver notified queue `index`. With VIRTIO_F_NOTIFICATION_DATA, `next` is what the
   * notification says of the driver's position (bits 16-31: next_off, next_wrap; 2.9), already
   * checked possible for the ring format: a hint, since the ring itself stays the authority.
   */
  queueNotify(index: number, next?: number): void;
  /**
   * Device reset: stop using the queues, drop all queue state and in-flight requests, back to
   * power-on state. A device with asynchronous backends returns a promise for the moment its old
   * operations have all settled ({@link ResetCompletion}); until then its operations still count
   * against its in-flight limits.
   */
  reset(): ResetCompletion;
  /**
   * VIRTIO_F_RING_RESET (2.6.1): stop using queue `index` and drop its in-flight requests (a late
   * completion must not reach the queue's next ring). The transport offers RING_RESET only to a
   * device that implements both this and {@link VirtioDevice.enableQueue}. Asynchronous operations
   * of the queue: as for {@link VirtioDevice.reset}.
   */
  resetQueue?(index: number): ResetCompletion;
  /** VIRTIO_F_RING_RESET: queue `queue.index`, reset earlier, was enabled again with a new ring after DRIVER_OK. */
  enableQueue?(queue: DeviceQueue): void;
  /**
   * VIRTIO_F_SUSPEND (3.4): the driver is suspending the device. The transport already keeps new
   * chains from the model and waits for the chains in flight to be used; a model that holds popped
   * chains waiting for input (not being processed) hands them back here, used, or the suspension
   * would wait for input that cannot come. On resume the transport notifies every live queue, so the
   * model looks at its rings again.
   */
  suspend?(): void;
  /**
   * The model's own state for a snapshot (docs/snapshots.md): what it holds beyond its queues (the
   * core snapshots those, in-flight chains included). A device without it cannot be snapshotted.
   */
  snapshot?(): SnapshotStruct;
  /**
   * Check `state` (a snapshot's device part) without changing anything, throwing SnapshotError when
   * it cannot be this model's, and return what applies it. The transport runs that on the model in
   * its reset state, before it activates the model with the restored queues; the restored queues
   * then hand the model the chains it held in flight again, as new requests.
   */
  prepareRestore?(state: SnapshotReader): () => void;
}

/** What a device model threw (it may throw anything), as the Error a DEVICE_NEEDS_RESET fault keeps. */
export function asError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
}
