/** A transmitq chain parsed into its virtio_net_hdr and frame (5.1.9.2). */

import { RequestShapeError } from '../../errors.js';
import type { DescriptorChain } from '../../queue/types.js';
import { decodeVirtioNetHdr, ETH_MAX_FRAME_NO_GSO, type VirtioNetHdr } from '../../spec/net.js';
import type { ByteSlab } from '../../memory/byte-slab.js';
import { gatherReadable } from '../chain-bytes.js';

export interface NetTxRequest {
  readonly hdr: VirtioNetHdr;
  /** A copy of the frame bytes, owned by the caller. */
  readonly frame: Uint8Array;
}

/**
 * Parse a transmitq chain whose header is `hdrSize` bytes, copying it into a fresh array (from
 * `slab` when given). Throws RequestShapeError for a malformed one.
 */
export function parseNetTxRequest(chain: DescriptorChain, hdrSize: number, slab?: ByteSlab): NetTxRequest {
  if (chain.writableBytes !== 0) throw new RequestShapeError(`transmit chain ${chain.head} has device-writable buffers`);
  if (chain.readableBytes < hdrSize) throw new RequestShapeError(`transmit chain ${chain.head} is shorter than the ${hdrSize}-byte header`);
  const bytes = gatherReadable(chain, hdrSize + ETH_MAX_FRAME_NO_GSO, slab);
  return { hdr: decodeVirtioNetHdr(bytes, hdrSize), frame: bytes.subarray(hdrSize) };
}
