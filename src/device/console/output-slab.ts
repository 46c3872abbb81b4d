/**
 * Buffers for guest output handed to host streams, carved from large slabs: one allocation per slab
 * instead of one per write (Node's own buffer pool serves only small sizes, and a fresh buffer per
 * write cost a quarter of the transmit path with 4 KiB chains). A batch is built in place behind
 * the previous one, then taken as one Buffer; a slice is never handed out twice, so a stream may
 * keep it, and a slab is freed once every slice of it is dropped.
 */

export class OutputSlab {
  private slab: Buffer = Buffer.alloc(0);
  /** The open batch is slab[start, end). */
  private start = 0;
  private end = 0;

  /** @param slabSize bytes per slab; a larger batch gets a slab of its own size */
  constructor(private readonly slabSize: number) {}

  /** Bytes in the open batch. */
  get length(): number {
    return this.end - this.start;
  }

  /**
   * Make room for `n` more bytes behind the open batch: when the slab is full behind it, the batch
   * moves to a new slab (at most one batch, against a slab of several, so this copy is rare).
   */
  makeRoom(n: number): void {
    if (n <= this.slab.byteLength - this.end) return;
    const open = this.slab.subarray(this.start, this.end);
    this.slab = Buffer.allocUnsafeSlow(Math.max(this.slabSize, open.byteLength + n));
    this.slab.set(open);
    this.start = 0;
    this.end = open.byteLength;
  }

  /** Copy `src` to the end of the open batch, into room made beforehand (a RangeError otherwise). */
  append(src: Uint8Array): void {
    this.slab.set(src, this.end);
    this.end += src.byteLength;
  }

  /** The open batch as a Buffer the caller may give away; the next batch opens behind it. */
  take(): Buffer {
    const out = this.slab.subarray(this.start, this.end);
    // The next batch starts 8-aligned, as Node's pool does, so that copies into it stay fast.
    this.start = this.end = Math.min((this.end + 7) & ~7, this.slab.byteLength);
    return out;
  }
}
