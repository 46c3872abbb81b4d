/**
 * The two halves of a virtqueue as the layers above queue/ use them, transport- and
 * ring-format-neutral: {@link DeviceQueue} for device models, {@link DriverRing} for the driver
 * half. rings.ts builds both for the negotiated format.
 */

import type { DmaSpan } from '../memory/dma.js';
import type { SnapshotReader } from '../snapshot/snapshot-reader.js';
import type { SnapshotStruct } from '../snapshot/snapshot-value.js';

/**
 * A descriptor chain popped from the available ring: device-readable buffers first, then
 * device-writable ones (2.7.4.2). Buffers are (address, length) pairs inside guest memory, already
 * checked; `view(i)` gives a zero-copy view.
 */
export interface DescriptorChain {
  /** The id to give pushUsed(): the split ring's head descriptor index, the packed ring's buffer id. */
  readonly head: number;
  /** Number of buffers. */
  readonly count: number;
  /** Buffers 0..readable-1 are device-readable, the rest device-writable. */
  readonly readable: number;
  readonly readableBytes: number;
  readonly writableBytes: number;
  addr(i: number): number;
  len(i: number): number;
  /** Zero-copy view of buffer i in guest memory. */
  view(i: number): Uint8Array;
}

export interface DeviceQueue {
  readonly index: number;
  readonly size: number;
  /**
   * The next available chain, or null when the ring is empty. Throws QueueFaultError on a guest fault.
   * The chain belongs to the caller until `pushUsed(chain.head, …)`; after that the queue may reuse
   * the object, so don't keep it. Any number of chains may be held at once (asynchronous devices).
   */
  pop(): DescriptorChain | null;
  /** Put a used element: `head` from a popped chain, `len` bytes written into its writable buffers. */
  pushUsed(head: number, len: number): void;
  /**
   * Whether the driver wants an interrupt for the used elements pushed since the last call
   * (VIRTQ_AVAIL_F_NO_INTERRUPT, or used_event with VIRTIO_F_EVENT_IDX).
   */
  needsInterrupt(): boolean;
  /** Ask the driver for notifications (true) or not (false): used flags or avail_event. */
  setNotification(enabled: boolean): void;
  /** Whether the avail ring holds chains not yet popped. */
  hasAvailable(): boolean;
  /**
   * The queue's state with its in-flight chains (docs/snapshots.md); a queue without it cannot be
   * part of a snapshot (SnapshotError 'ERR_SNAPSHOT_UNSUPPORTED').
   */
  snapshot?(): SnapshotStruct;
}

/** A chain in flight restored from a snapshot, with its used len if the in-order layer held it back. */
export interface RestoredChain {
  readonly chain: DescriptorChain;
  readonly usedLen: number | undefined;
}

/**
 * A device ring as the in-order layer (in-order-queue.ts) drives it: a {@link DeviceQueue} that can
 * also return a chain without a used element of its own. With VIRTIO_F_IN_ORDER a device may use a
 * batch of buffers with one used element, for the batch's last buffer, written where the batch's
 * first would have gone; the ring skips past the rest (2.7.9 split, 2.8.8 packed).
 */
export interface InOrderRing extends DeviceQueue {
  /**
   * Chain `head` was used completely (2.7.9: skipped buffers "are assumed to have been used (read or
   * written) by the device completely"); its used element is implied by the next `pushUsed`, which
   * writes one element at the batch's start and moves past every chain of the batch. Only for the
   * oldest chain in flight, with a `pushUsed` for a later one following at once.
   */
  skipUsed(head: number): void;
  /** The ring's state, `usedLen` giving the used len of each chain the in-order layer holds back. */
  snapshot(usedLen?: (head: number) => number | undefined): SnapshotStruct;
  /**
   * Take the state of a snapshot (a fresh ring only; SnapshotError when it cannot be this ring's):
   * the chains the device model held are popped again first, in their order; returns every
   * in-flight chain in pop order.
   */
  restore(state: SnapshotReader): RestoredChain[];
}

/** A used element as the driver sees it: the token given to add() and the bytes the device wrote. */
export interface UsedBuffer<T> {
  readonly token: T;
  readonly len: number;
}

/** Bus addresses of a ring's three areas, as the transport tells the device (4.1.4.3: queue_desc, queue_driver, queue_device). */
export interface RingAreas {
  readonly desc: number;
  readonly driver: number;
  readonly device: number;
}

/**
 * The driver-side virtqueue ring: chains in, used elements out, every used element checked against
 * what was submitted (DeviceFaultError otherwise). Its memory is DmaMemory; over a remote bus the
 * asynchronous operations flush and refresh it, over coherent DMA the synchronous forms do the same
 * at once. `T` is the caller's token for each chain.
 */
export interface DriverRing<T> {
  readonly index: number;
  readonly size: number;
  readonly areas: RingAreas;
  /** Descriptors free for new chains. */
  readonly numFree: number;
  /** DMA memory is coherent: {@link publishSync} and {@link reapSync} may be used. */
  readonly coherent: boolean;
  /** Make the zeroed rings visible to the device; before the transport learns where they are. */
  flushRings(): Promise<void>;
  /** Put a chain of device-readable `out` then device-writable `inn` buffers in the ring; returns its head id. */
  add(out: readonly DmaSpan[], inn: readonly DmaSpan[], token: T): number;
  /** Make the chains added so far visible; resolves whether the device wants a notification. */
  publish(): Promise<boolean>;
  /** publish() at once, for coherent DMA. */
  publishSync(): boolean;
  /** Take every used element returned since the last call, checked. */
  reap(): Promise<UsedBuffer<T>[]>;
  /** reap() at once, for coherent DMA. */
  reapSync(): UsedBuffer<T>[];
  /**
   * What a VIRTIO_F_NOTIFICATION_DATA notification says of the chains published so far: bits 16-31
   * of the notification value (2.9: next_off, next_wrap in bit 15), i.e. where the next available
   * entry will be written. Split ring: the published avail idx. Packed ring: the offset of the next
   * descriptor to be made available, with the driver's wrap counter in bit 15.
   */
  notificationData(): number;
  /** Ask the device not to interrupt (true) or to interrupt again (false); advisory. */
  setInterruptSuppression(enabled: boolean): Promise<void>;
  /** After a device reset: forget every chain in flight and return their tokens. */
  detachUnused(): T[];
  /** Resolves once no publish() or reap() is running (one may be waiting on a remote bus); before destroy(). */
  idle(): Promise<void>;
  /** Give the ring memory back; the ring is unusable afterwards. */
  destroy(): void;
}
