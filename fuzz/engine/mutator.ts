/**
 * Byte-level mutations in the manner of libFuzzer/AFL, plus structure-aware ones: a target that
 * reads fixed-size records (one register access, one descriptor) names its record size, and whole
 * records are then inserted, deleted, duplicated and swapped; a target's dictionary of encoded
 * operations is spliced in as tokens.
 */

import type { Rng } from './rng.js';

/** Values that sit on boundaries virtio code must get right (sizes, wraps, "all ones"). */
const INTERESTING: readonly number[] = [
  0,
  1,
  2,
  3,
  4,
  7,
  8,
  15,
  16,
  0x7f,
  0x80,
  0xff,
  0x100,
  0x3ff,
  0x400,
  0x7fff,
  0x8000,
  0x8001,
  0xfffe,
  0xffff,
  0x10000,
  0x7fffffff,
  0x80000000,
  0xfffffff0,
  0xfffffffe,
  0xffffffff,
  0x1_0000_0000,
  0x1_0000_0010,
  2 ** 53 - 1,
  // queue sizes and ring offsets
  32,
  64,
  128,
  256,
  512,
  1024,
  32768,
];
const INTERESTING_64: readonly bigint[] = [
  0xffff_ffff_ffff_ffffn,
  0xffff_ffff_ffff_fff0n,
  0x8000_0000_0000_0000n,
  0x1_0000_0000n,
  1n << 53n,
];

export interface MutationShape {
  /** Longest input the target wants. */
  readonly maxLength: number;
  /** Size of the records the target reads, if it reads fixed-size records after a header. */
  readonly recordSize?: number;
  /** Bytes before the first record. */
  readonly headerSize?: number;
  /** Encoded fragments worth splicing in (single operations, magic values). */
  readonly dictionary?: readonly Uint8Array[];
}

export class Mutator {
  constructor(
    private readonly rng: Rng,
    private readonly shape: MutationShape,
  ) {}

  /** A mutant of `input`: 1 to 8 stacked mutations, `other` used for crossover. */
  mutate(input: Uint8Array, other: Uint8Array | undefined): Uint8Array {
    let out: Uint8Array = input.length === 0 ? new Uint8Array(1) : input.slice();
    const rounds = 1 << this.rng.below(4);
    for (let i = 0; i < rounds; i++) out = this.once(out, other);
    return out.length > this.shape.maxLength ? out.subarray(0, this.shape.maxLength) : out;
  }

  private once(d: Uint8Array, other: Uint8Array | undefined): Uint8Array {
    const r = this.rng;
    switch (r.below(14)) {
      case 0: {
        if (d.length > 0) d[r.below(d.length)]! ^= 1 << r.below(8);
        return d;
      }
      case 1: {
        if (d.length > 0) d[r.below(d.length)] = r.below(256);
        return d;
      }
      case 2: {
        if (d.length > 0) {
          const i = r.below(d.length);
          d[i] = (d[i]! + (r.oneIn(2) ? 1 : 255) * (1 + r.below(8))) & 0xff;
        }
        return d;
      }
      case 3:
      case 4:
        return this.interesting(d);
      case 5:
        return this.insertBytes(d);
      case 6:
        return this.deleteBytes(d);
      case 7:
        return this.copyWithin(d);
      case 8:
        return other !== undefined && other.length > 0 ? this.crossover(d, other) : this.insertBytes(d);
      case 9:
      case 10:
        return this.shape.recordSize !== undefined ? this.recordOp(d, this.shape.recordSize) : this.copyWithin(d);
      case 11:
        return this.shape.dictionary !== undefined && this.shape.dictionary.length > 0 ? this.token(d) : this.interesting(d);
      case 12: {
        // Truncate: shorter inputs exercise "ran out of operations" paths.
        return d.length > 1 ? d.subarray(0, 1 + r.below(d.length - 1)) : d;
      }
      default: {
        // Small random delta on a 16-bit field: indices that are one or a few off.
        if (d.length >= 2) {
          const i = r.below(d.length - 1);
          const v = (d[i]! | (d[i + 1]! << 8)) + (r.below(33) - 16);
          d[i] = v & 0xff;
          d[i + 1] = (v >> 8) & 0xff;
        }
        return d;
      }
    }
  }

  private interesting(d: Uint8Array): Uint8Array {
    const r = this.rng;
    const width = r.pick([1, 2, 4, 8] as const);
    if (d.length < width) return d;
    const at = r.below(d.length - width + 1);
    let v = width === 8 && r.oneIn(3) ? r.pick(INTERESTING_64) : BigInt(r.pick(INTERESTING));
    if (r.oneIn(4)) v = BigInt.asUintN(64, -v);
    for (let i = 0; i < width; i++) d[at + i] = Number((v >> BigInt(8 * i)) & 0xffn);
    return d;
  }

  private insertBytes(d: Uint8Array): Uint8Array {
    const r = this.rng;
    const n = 1 + r.below(r.oneIn(4) ? 64 : 8);
    const at = r.below(d.length + 1);
    const out = new Uint8Array(d.length + n);
    out.set(d.subarray(0, at));
    const fill = r.oneIn(2) ? r.below(256) : -1;
    for (let i = 0; i < n; i++) out[at + i] = fill >= 0 ? fill : r.below(256);
    out.set(d.subarray(at), at + n);
    return out;
  }

  private deleteBytes(d: Uint8Array): Uint8Array {
    if (d.length <= 1) return d;
    const r = this.rng;
    const at = r.below(d.length);
    const n = 1 + r.below(Math.min(d.length - at, 16));
    const out = new Uint8Array(d.length - n);
    out.set(d.subarray(0, at));
    out.set(d.subarray(at + n), at);
    return out;
  }

  private copyWithin(d: Uint8Array): Uint8Array {
    if (d.length < 2) return d;
    const r = this.rng;
    const from = r.below(d.length);
    const n = 1 + r.below(Math.min(d.length - from, 32));
    const to = r.below(d.length - n + 1);
    d.copyWithin(to, from, from + n);
    return d;
  }

  private crossover(d: Uint8Array, other: Uint8Array): Uint8Array {
    const r = this.rng;
    const cut = r.below(d.length + 1);
    const from = r.below(other.length);
    const take = 1 + r.below(other.length - from);
    const out = new Uint8Array(cut + take);
    out.set(d.subarray(0, cut));
    out.set(other.subarray(from, from + take), cut);
    return out;
  }

  private token(d: Uint8Array): Uint8Array {
    const r = this.rng;
    const tok = r.pick(this.shape.dictionary!);
    const at = this.recordBoundary(d);
    if (r.oneIn(2) && at + tok.length <= d.length) {
      d.set(tok, at);
      return d;
    }
    const out = new Uint8Array(d.length + tok.length);
    out.set(d.subarray(0, at));
    out.set(tok, at);
    out.set(d.subarray(at), at + tok.length);
    return out;
  }

  /** A random position, on a record boundary when the target has records. */
  private recordBoundary(d: Uint8Array): number {
    const size = this.shape.recordSize;
    const header = this.shape.headerSize ?? 0;
    if (size === undefined || d.length <= header) return this.rng.below(d.length + 1);
    return Math.min(d.length, header + size * this.rng.below(Math.floor((d.length - header) / size) + 1));
  }

  private recordOp(d: Uint8Array, size: number): Uint8Array {
    const r = this.rng;
    const header = this.shape.headerSize ?? 0;
    const records = Math.floor((d.length - header) / size);
    if (records <= 0) return this.insertBytes(d);
    const a = header + size * r.below(records);
    const b = header + size * r.below(records);
    switch (r.below(4)) {
      case 0: {
        // duplicate record a at b
        const out = new Uint8Array(d.length + size);
        out.set(d.subarray(0, b));
        out.set(d.subarray(a, a + size), b);
        out.set(d.subarray(b), b + size);
        return out;
      }
      case 1: {
        const out = new Uint8Array(d.length - size);
        out.set(d.subarray(0, a));
        out.set(d.subarray(a + size), a);
        return out;
      }
      case 2: {
        const tmp = d.slice(a, a + size);
        d.copyWithin(a, b, b + size);
        d.set(tmp, b);
        return d;
      }
      default: {
        // a fresh random record
        const out = new Uint8Array(d.length + size);
        out.set(d.subarray(0, b));
        for (let i = 0; i < size; i++) out[b + i] = r.below(256);
        out.set(d.subarray(b), b + size);
        return out;
      }
    }
  }
}
