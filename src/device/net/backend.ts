/**
 * Where a virtio-net device's frames go and come from. Frames are whole Ethernet frames without a
 * virtio_net_hdr: the device completes checksums itself and offers no segmentation offload, so a
 * backend never has to honour offload flags.
 *
 * Neither direction copies a frame more than once inside the device: a transmitted frame is lent
 * to the backend for the duration of {@link NetBackend.send} (usually a view of the guest's own
 * buffer), and an incoming frame is copied straight into the guest's receive buffers.
 */

/** What the device gives its backend to deliver into. */
export interface NetBackendPort {
  /**
   * An incoming frame, followed by the used buffer notification. The device copies the frame into
   * a receive buffer (or drops it and counts the drop) before returning: `frame` need only stay
   * valid for the call.
   */
  receive(frame: Uint8Array): void;
  /**
   * Several incoming frames, in order, each as {@link receive} would take it, with one used buffer
   * notification per receive queue at the end instead of one per frame. The device copies them
   * before returning.
   */
  receiveBatch(frames: readonly Uint8Array[]): void;
  /**
   * An incoming frame WITHOUT its notification: the device copies it into a receive buffer (or
   * drops and counts it) before returning, and tells the driver nothing until {@link notify} (or
   * the next receive/receiveBatch). The device calls nothing outside itself here but a fatal fault
   * report, so a backend may call it from inside another device's transmit (the memory pair does).
   */
  place(frame: Uint8Array): void;
  /** The used buffer notifications owed for frames {@link place}d: one per receive queue that got any. */
  notify(): void;
  /** The medium went up or down (a socket connected or closed); drives VIRTIO_NET_S_LINK_UP. */
  setLinkUp(up: boolean): void;
}

export interface NetBackend {
  /** Called once by the device before any send. */
  attach(port: NetBackendPort): void;
  /**
   * Send one frame. `frame` is LENT for the duration of this call only: it is usually a view of
   * the guest's transmit buffer, which the guest may rewrite as soon as the call returns (the
   * device then marks the buffer used), and the device may reuse it for the next frame. A backend
   * that keeps the bytes past the call (queues them, hands them to a socket) copies them first.
   * The backend must not write to it.
   */
  send(frame: Uint8Array): void;
  /** Release sockets and timers; no receive or setLinkUp calls after the promise settles. */
  close(): Promise<void>;
}
