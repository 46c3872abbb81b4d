/**
 * Completing a partial checksum (VIRTIO_NET_HDR_F_NEEDS_CSUM, 5.1.9.2): the driver leaves the
 * pseudo-header sum at csum_start + csum_offset, and the device folds the ones' complement sum of
 * everything from csum_start to the end of the frame into that field. Doing it in software lets the
 * device offer VIRTIO_NET_F_CSUM whatever the backend.
 */

import { RequestShapeError } from '../../errors.js';

/** The ones' complement sum of `bytes` (big-endian 16-bit words) folded to 16 bits. */
export function onesComplementSum(bytes: Uint8Array): number {
  let sum = 0;
  let i = 0;
  for (; i + 1 < bytes.byteLength; i += 2) sum += (bytes[i]! << 8) | bytes[i + 1]!;
  if (i < bytes.byteLength) sum += bytes[i]! << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

/** Fill in the checksum; throws RequestShapeError when the offsets fall outside the frame. */
export function completeChecksum(frame: Uint8Array, csumStart: number, csumOffset: number): void {
  const field = csumStart + csumOffset;
  if (field + 2 > frame.byteLength) {
    throw new RequestShapeError(`csum_start ${csumStart} + csum_offset ${csumOffset} outside a ${frame.byteLength}-byte frame`);
  }
  const csum = ~onesComplementSum(frame.subarray(csumStart)) & 0xffff;
  frame[field] = csum >>> 8;
  frame[field + 1] = csum & 0xff;
}
