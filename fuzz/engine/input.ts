/**
 * Reads a fuzz input as a stream of little-endian fields, the way every target decodes its
 * operations. Past the end it yields zeros and `done` turns true, so any byte string is a valid
 * input and a mutation never makes a target throw for lack of bytes.
 */
export class FuzzInput {
  private pos = 0;

  constructor(readonly data: Uint8Array) {}

  /** Whether every byte has been consumed. */
  get done(): boolean {
    return this.pos >= this.data.length;
  }

  get remaining(): number {
    return Math.max(0, this.data.length - this.pos);
  }

  u8(): number {
    return this.pos < this.data.length ? this.data[this.pos++]! : (this.pos++, 0);
  }
  u16(): number {
    return this.u8() | (this.u8() << 8);
  }
  u32(): number {
    return (this.u16() | (this.u16() << 16)) >>> 0;
  }
  /** A 64-bit value as a number (exact below 2^53, above it still beyond every guest address). */
  u64(): number {
    const lo = this.u32();
    return this.u32() * 0x1_0000_0000 + lo;
  }
  /** The next `n` bytes (a copy, zero-padded past the end). */
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    const avail = Math.min(n, this.remaining);
    out.set(this.data.subarray(this.pos, this.pos + avail));
    this.pos += n;
    return out;
  }
}

/**
 * Builds an input field by field, mirroring {@link FuzzInput}: seed generators and regression tests
 * write named fields instead of hex.
 */
export class InputWriter {
  private readonly out: number[] = [];

  u8(v: number): this {
    this.out.push(v & 0xff);
    return this;
  }
  u16(v: number): this {
    return this.u8(v).u8(v >>> 8);
  }
  u32(v: number): this {
    return this.u16(v & 0xffff).u16(v >>> 16);
  }
  u64(v: number): this {
    return this.u32(v % 0x1_0000_0000).u32(Math.floor(v / 0x1_0000_0000));
  }
  bytes(b: Uint8Array | readonly number[]): this {
    for (const x of b) this.u8(x);
    return this;
  }
  finish(): Uint8Array {
    return Uint8Array.from(this.out);
  }
}
