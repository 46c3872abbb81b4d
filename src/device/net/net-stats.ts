/** virtio-net's counters: what a caller (or a test) reads of the device's traffic and its refusals. */

/** Counters a caller (or a test) can read; they survive device reset. */
export interface NetDeviceStats {
  rxFrames: number;
  rxBytes: number;
  /** Frames that found no receive buffer, or came while the driver was not ready. */
  rxDropped: number;
  /** Frames the receive filter refused (not for our MAC, and not promiscuous). */
  rxFiltered: number;
  /** Frames larger than the receive buffer without VIRTIO_NET_F_MRG_RXBUF. */
  rxOversize: number;
  /** Receive chains the device returned unused because of their shape. */
  rxBadChains: number;
  txFrames: number;
  txBytes: number;
  /** Transmit chains refused for their shape or header. */
  txErrors: number;
  /** Control commands answered VIRTIO_NET_ERR. */
  ctrlErrors: number;
}

/** Every counter at 0. */
export function netDeviceStats(): NetDeviceStats {
  return {
    rxFrames: 0,
    rxBytes: 0,
    rxDropped: 0,
    rxFiltered: 0,
    rxOversize: 0,
    rxBadChains: 0,
    txFrames: 0,
    txBytes: 0,
    txErrors: 0,
    ctrlErrors: 0,
  };
}
