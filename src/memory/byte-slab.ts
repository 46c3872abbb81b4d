/**
 * Fresh byte arrays carved out of a shared slab: one allocation per slab instead of one per array. A
 * small typed array gets its own backing store (off the JavaScript heap beyond 64 bytes in V8), which
 * cost a frame's transmit path more than the rest of it together; a view of a slab costs an object.
 * An array taken is never handed out again, so its taker may keep it; a slab is freed once every
 * array of it is dropped. The memory is bounded by what the takers keep plus one slab.
 */

export class ByteSlab {
  private slab: ArrayBuffer;
  private used = 0;

  /** @param slabSize bytes per slab; a request larger than a quarter of it gets an array of its own. */
  constructor(private readonly slabSize: number) {
    this.slab = new ArrayBuffer(slabSize);
  }

  /** `n` zeroed bytes no one else holds. */
  take(n: number): Uint8Array {
    if (n > this.slabSize >> 2) return new Uint8Array(n);
    if (n > this.slabSize - this.used) {
      this.slab = new ArrayBuffer(this.slabSize);
      this.used = 0;
    }
    const out = new Uint8Array(this.slab, this.used, n);
    // 8-byte aligned starts, as a fresh array would have.
    this.used += (n + 7) & ~7;
    return out;
  }
}
