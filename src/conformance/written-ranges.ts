/**
 * Guest memory over a local copy of DMA memory that remembers what the driver side wrote, in
 * order, so that only those bytes are flushed to a remote device: flushing a whole window would
 * put back stale copies of what the device wrote meanwhile (used.idx, used descriptors).
 * Views are for reading; writes go through the write methods.
 */

import { ArrayGuestMemory } from '../memory/guest-memory.js';

/** A byte range [addr, addr + len). */
export interface WrittenRange {
  readonly addr: number;
  readonly len: number;
}

export class WriteTrackingMemory extends ArrayGuestMemory {
  private ranges: WrittenRange[] = [];

  /** The ranges written since the last call, in the order written (adjacent ones joined). */
  takeWritten(): WrittenRange[] {
    const out = this.ranges;
    this.ranges = [];
    return out;
  }

  private mark(addr: number, len: number): void {
    const last = this.ranges[this.ranges.length - 1];
    if (last !== undefined && last.addr + last.len === addr) this.ranges[this.ranges.length - 1] = { addr: last.addr, len: last.len + len };
    else this.ranges.push({ addr, len });
  }

  override write8(addr: number, value: number): void {
    super.write8(addr, value);
    this.mark(addr, 1);
  }
  override write16(addr: number, value: number): void {
    super.write16(addr, value);
    this.mark(addr, 2);
  }
  override write32(addr: number, value: number): void {
    super.write32(addr, value);
    this.mark(addr, 4);
  }
  override write64(addr: number, value: bigint): void {
    super.write64(addr, value);
    this.mark(addr, 8);
  }
  override write(addr: number, src: Uint8Array): void {
    super.write(addr, src);
    this.mark(addr, src.length);
  }
}
