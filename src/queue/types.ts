/** The device-side virtqueue as device models use it (transport- and ring-format-neutral). */

/**
 * A descriptor chain popped from the available ring: device-readable buffers first, then
 * device-writable ones (2.7.4.2). Buffers are (address, length) pairs inside guest memory, already
 * checked; `view(i)` gives a zero-copy view.
 */
export interface DescriptorChain {
  /** Head descriptor index: the id to put in the used ring. */
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
}
