/**
 * The framing QEMU's `-netdev stream` and `-netdev socket` use on a byte stream: each Ethernet frame
 * is preceded by its length as a 4-byte big-endian integer (QEMU net/stream.c).
 */

import { BusError } from '../../errors.js';

export const STREAM_LENGTH_SIZE = 4;
/** Largest frame accepted, as QEMU's NET_BUFSIZE (4096 + 65536): a longer length means a broken peer. */
export const STREAM_MAX_FRAME = 4096 + 65_536;

/** The bytes that carry `frame` on the stream. */
export function encodeStreamFrame(frame: Uint8Array): Uint8Array {
  const out = new Uint8Array(STREAM_LENGTH_SIZE + frame.byteLength);
  new DataView(out.buffer).setUint32(0, frame.byteLength, false);
  out.set(frame, STREAM_LENGTH_SIZE);
  return out;
}

/**
 * Reassembles frames from stream chunks split at any boundary. Holds at most one partial frame, so
 * its memory is bounded by STREAM_MAX_FRAME.
 */
export class StreamFrameDecoder {
  private readonly lengthBytes = new Uint8Array(STREAM_LENGTH_SIZE);
  private lengthHave = 0;
  private frame: Uint8Array | undefined;
  private frameHave = 0;

  /** Feed a chunk; returns the frames it completes. Throws BusError for a length over the limit. */
  push(chunk: Uint8Array): Uint8Array[] {
    const frames: Uint8Array[] = [];
    let i = 0;
    while (i < chunk.byteLength) {
      if (!this.frame) {
        const n = Math.min(STREAM_LENGTH_SIZE - this.lengthHave, chunk.byteLength - i);
        this.lengthBytes.set(chunk.subarray(i, i + n), this.lengthHave);
        this.lengthHave += n;
        i += n;
        if (this.lengthHave < STREAM_LENGTH_SIZE) break;
        const len = new DataView(this.lengthBytes.buffer).getUint32(0, false);
        if (len > STREAM_MAX_FRAME) throw new BusError(`stream peer sent a ${len}-byte frame (limit ${STREAM_MAX_FRAME})`);
        this.lengthHave = 0;
        this.frame = new Uint8Array(len);
        this.frameHave = 0;
      }
      const n = Math.min(this.frame.byteLength - this.frameHave, chunk.byteLength - i);
      this.frame.set(chunk.subarray(i, i + n), this.frameHave);
      this.frameHave += n;
      i += n;
      if (this.frameHave === this.frame.byteLength) {
        frames.push(this.frame);
        this.frame = undefined;
      }
    }
    return frames;
  }
}
