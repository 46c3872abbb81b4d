/**
 * Buffers for guest output handed to host streams, carved from large slabs: one allocation per slab
 * instead of one per write (Node's own buffer pool serves only small sizes, and a fresh buffer per
 * write cost a quarter of the transmit path with 4 KiB chains). A slice is never handed out twice,
 * so a stream may keep it; a slab is freed once every slice of it is dropped.
 */

export class OutputSlab {
  private slab: Buffer | undefined;
  private used = 0;

  /** @param slabSize bytes per slab; a larger request gets a buffer of its own */
  constructor(private readonly slabSize: number) {}

  /** `n` bytes the caller fills (contents undefined until then). */
  take(n: number): Buffer {
    if (n > this.slabSize) return Buffer.allocUnsafeSlow(n);
    if (this.slab === undefined || this.used + n > this.slabSize) {
      this.slab = Buffer.allocUnsafeSlow(this.slabSize);
      this.used = 0;
    }
    const out = this.slab.subarray(this.used, this.used + n);
    // The next slice starts 8-aligned, as Node's pool does, so that copies into it stay fast.
    this.used += (n + 7) & ~7;
    return out;
  }
}
