/**
 * How the net driver lays out its chains. On the legacy interface without VIRTIO_F_ANY_LAYOUT
 * (5.1.9.8): the virtio_net_hdr in a descriptor of its own, the frame in the next; a control
 * command's class and command in one 2-byte descriptor, its data in one more (two for
 * VIRTIO_NET_CTRL_MAC_TABLE_SET: one per table), the ack in a 1-byte one. Otherwise free, and the
 * driver uses one descriptor per buffer.
 */

import type { DmaSpan } from '../driver-queue.js';

export type Framing = 'any-layout' | 'legacy';

/**
 * The spans of a header of `hdrSize` bytes at `addr` followed by `frameBytes` of frame: one, or
 * with legacy framing the header's and the frame's (no empty one).
 */
export function frameSpans(framing: Framing, hdrSize: number, addr: number, frameBytes: number): DmaSpan[] {
  if (framing === 'any-layout' || frameBytes === 0) return [{ addr, len: hdrSize + frameBytes }];
  return [
    { addr, len: hdrSize },
    { addr: addr + hdrSize, len: frameBytes },
  ];
}

/** Descriptors a frame of `frameBytes` takes ({@link frameSpans}' count). */
export function descriptorsFor(framing: Framing, frameBytes: number): number {
  return framing === 'legacy' && frameBytes > 0 ? 2 : 1;
}
