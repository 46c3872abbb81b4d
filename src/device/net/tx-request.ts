/**
 * A transmitq chain read into its virtio_net_hdr and frame (5.1.9.2), lending rather than copying:
 * a frame that lies in one guest buffer comes back as a view of that buffer, any other frame as a
 * copy in the reader's own scratch array. Either is valid until the chain is used or the next
 * read(); the header fields the device acts on are read once, so a guest rewriting its buffer
 * meanwhile changes at most the bytes the backend sees, never a length or an offset.
 */

import { RequestShapeError } from '../../errors.js';
import type { GuestMemory } from '../../memory/guest-memory.js';
import type { DescriptorChain } from '../../queue/types.js';
import {
  ETH_MAX_FRAME_NO_GSO,
  VIRTIO_NET_HDR_CSUM_OFFSET,
  VIRTIO_NET_HDR_CSUM_START,
  VIRTIO_NET_HDR_F_NEEDS_CSUM,
  VIRTIO_NET_HDR_FLAGS,
  VIRTIO_NET_HDR_GSO_TYPE,
  VIRTIO_NET_HDR_SIZE,
} from '../../spec/net.js';
import { readChain } from '../chain-bytes.js';

const EMPTY = new Uint8Array(0);

export class NetTxReader {
  /** The header of the chain last read: flags and gso_type, and the checksum offsets when flags has NEEDS_CSUM. */
  flags = 0;
  gsoType = 0;
  csumStart = 0;
  csumOffset = 0;
  /** Header bytes split over several buffers are gathered here. */
  private readonly hdrBytes = new Uint8Array(VIRTIO_NET_HDR_SIZE);
  /** A frame that spans buffers, or one the device must write (checksum completion), is copied here: memory bounded by the largest frame. */
  private readonly scratch = new Uint8Array(ETH_MAX_FRAME_NO_GSO);

  /**
   * The frame of a transmit chain whose header is `hdrSize` bytes, the header's fields left in this
   * reader. The frame is the reader's own copy when the header asks for VIRTIO_NET_HDR_F_NEEDS_CSUM
   * (the device writes the checksum into it, never into a device-readable buffer), else a view of
   * guest memory (`memory`, the chain's) when it lies in one buffer. Throws RequestShapeError for a
   * malformed chain.
   */
  read(chain: DescriptorChain, hdrSize: number, memory: GuestMemory): Uint8Array {
    const total = chain.readableBytes;
    if (chain.writableBytes !== 0) throw new RequestShapeError(`transmit chain ${chain.head} has device-writable buffers`);
    if (total < hdrSize) throw new RequestShapeError(`transmit chain ${chain.head} is shorter than the ${hdrSize}-byte header`);
    if (total > hdrSize + ETH_MAX_FRAME_NO_GSO) {
      throw new RequestShapeError(
        `transmit chain ${chain.head}: ${total} readable bytes exceed the limit of ${hdrSize + ETH_MAX_FRAME_NO_GSO}`,
      );
    }
    // Buffer 0's place and length, read once: usually it holds the header and the whole frame.
    const len0 = chain.len(0);
    const addr0 = chain.addr(0);
    const frameLen = total - hdrSize;
    if (len0 >= hdrSize) {
      // The header in place, through buffer 0's region (one range check for header and frame).
      const r = memory.region(addr0, len0);
      const at = addr0 - r.base;
      // flags and gso_type are adjacent bytes: one read.
      const word = r.dv.getUint16(at + VIRTIO_NET_HDR_FLAGS, true);
      this.flags = word & 0xff;
      this.gsoType = word >> 8;
      if ((this.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) !== 0) {
        this.csumStart = r.dv.getUint16(at + VIRTIO_NET_HDR_CSUM_START, true);
        this.csumOffset = r.dv.getUint16(at + VIRTIO_NET_HDR_CSUM_OFFSET, true);
      } else if (len0 >= total && frameLen !== 0) {
        // One view, of the frame only: the one allocation a transmitted frame costs.
        return new Uint8Array(r.buffer, r.byteOffset + at + hdrSize, frameLen);
      }
    } else this.readSplitHeader(chain, hdrSize);
    if (frameLen === 0) return EMPTY;
    if ((this.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) === 0) {
      // The buffer where the frame starts; bounded by the chain's buffers.
      let i = 0;
      let skip = hdrSize;
      while (skip >= chain.len(i)) skip -= chain.len(i++);
      if (chain.len(i) - skip >= frameLen) return memory.view(chain.addr(i) + skip, frameLen);
    }
    const copy = this.scratch.subarray(0, frameLen);
    readChain(chain, hdrSize, copy);
    return copy;
  }

  /** A header split over buffers, gathered first (GSO_NONE and no checksum are the common case, but not this layout). */
  private readSplitHeader(chain: DescriptorChain, hdrSize: number): void {
    const hdr = this.hdrBytes;
    readChain(chain, 0, hdr.subarray(0, hdrSize));
    this.flags = hdr[VIRTIO_NET_HDR_FLAGS]!;
    this.gsoType = hdr[VIRTIO_NET_HDR_GSO_TYPE]!;
    this.csumStart = hdr[VIRTIO_NET_HDR_CSUM_START]! | (hdr[VIRTIO_NET_HDR_CSUM_START + 1]! << 8);
    this.csumOffset = hdr[VIRTIO_NET_HDR_CSUM_OFFSET]! | (hdr[VIRTIO_NET_HDR_CSUM_OFFSET + 1]! << 8);
  }
}
