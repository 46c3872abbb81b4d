/**
 * Where a virtio-net device's frames go and come from. Frames are whole Ethernet frames without a
 * virtio_net_hdr: the device completes checksums itself and offers no segmentation offload, so a
 * backend never has to honour offload flags.
 */

/** What the device gives its backend to deliver into. */
export interface NetBackendPort {
  /** An incoming frame; the device copies it before returning (or drops it and counts the drop). */
  receive(frame: Uint8Array): void;
  /**
   * Several incoming frames, in order, each as {@link receive} would take it, with one used buffer
   * notification per receive queue at the end instead of one per frame. The device copies them
   * before returning.
   */
  receiveBatch(frames: readonly Uint8Array[]): void;
  /** The medium went up or down (a socket connected or closed); drives VIRTIO_NET_S_LINK_UP. */
  setLinkUp(up: boolean): void;
}

export interface NetBackend {
  /** Called once by the device before any send. */
  attach(port: NetBackendPort): void;
  /** Send one frame. The backend owns `frame` from here (the device does not reuse it). */
  send(frame: Uint8Array): void;
  /** Release sockets and timers; no receive or setLinkUp calls after the promise settles. */
  close(): Promise<void>;
}
