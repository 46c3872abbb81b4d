/**
 * Guest memory as the device half sees it. Addresses are plain numbers: every valid guest address is
 * below 2^53, and a 64-bit value from the guest is joined with {@link joinU64}, which keeps the high
 * half (anything at or above 2^53 simply fails the range check). Every access is range-checked.
 */

import { GuestMemoryError, UsageError } from '../errors.js';

/** A range of guest-physical addresses, [base, base + size). */
export interface AddressRange {
  readonly base: number;
  readonly size: number;
}

/**
 * One region's backing store, as {@link GuestMemory.region} hands it out: guest address `a` of the
 * region is `bytes[a - base]` and `dv` at `a - base`.
 */
export interface GuestRegion {
  readonly base: number;
  readonly bytes: Uint8Array;
  readonly dv: DataView;
  /** `bytes`' buffer and byteOffset, read once: a view built on them costs half what `subarray` does. */
  readonly buffer: ArrayBufferLike;
  readonly byteOffset: number;
}

export interface GuestMemory {
  /** One past the highest address backed by memory (RAM in the platform's memory map). */
  readonly end: number;
  /** Whether [addr, addr + len) lies wholly inside one region (len 0 is in range at any mapped address). */
  contains(addr: number, len: number): boolean;
  read8(addr: number): number;
  read16(addr: number): number;
  read32(addr: number): number;
  read64(addr: number): bigint;
  write8(addr: number, value: number): void;
  write16(addr: number, value: number): void;
  write32(addr: number, value: number): void;
  write64(addr: number, value: bigint): void;
  /** A zero-copy view of [addr, addr + len); throws GuestMemoryError unless inside one region. */
  view(addr: number, len: number): Uint8Array;
  /** Copy guest bytes at addr into dst. */
  read(addr: number, dst: Uint8Array): void;
  /** Copy src into guest memory at addr. */
  write(addr: number, src: Uint8Array): void;
  /**
   * The region holding [addr, addr + len) whole, for several accesses inside that range checked
   * once (a device writing a header and a payload, say). The range counts as written, as a view's
   * does, and only the range may be accessed through it. Throws GuestMemoryError unless inside one
   * region.
   */
  region(addr: number, len: number): GuestRegion;
}

const TWO_32 = 0x1_0000_0000;

/**
 * The 64-bit value hi:lo as a number. Exact below 2^53; above that it is approximate but still
 * above every guest address, so a range check rejects it rather than wrapping to a low address.
 */
export function joinU64(lo: number, hi: number): number {
  return (hi >>> 0) * TWO_32 + (lo >>> 0);
}

/** The low 32-bit half of an address. */
export function lo32(value: number): number {
  // `>>> 0` is the value modulo 2^32 (ToUint32), as `% 2^32 >>> 0` is, without a floating-point remainder.
  return value >>> 0;
}

/** The high 32-bit half of an address (exact for addresses below 2^53). */
export function hi32(value: number): number {
  // Most addresses are below 4 GiB: skip the floating-point division for them.
  return value >= 0 && value < TWO_32 ? 0 : Math.floor(value / TWO_32) >>> 0;
}

/** The low and high 32-bit halves of an address; hot paths use {@link lo32} and {@link hi32}, which allocate nothing. */
export function splitU64(value: number): [lo: number, hi: number] {
  return [lo32(value), hi32(value)];
}

/**
 * Number.isSafeInteger written out: the same answer, but TurboFan inlines this form into every
 * guest-memory accessor, where the builtin call made each checked read cost several times a raw one.
 */
export function isSafeInteger(x: number): boolean {
  return Math.floor(x) === x && x <= Number.MAX_SAFE_INTEGER && x >= -Number.MAX_SAFE_INTEGER;
}

/** Whether [addr, addr + len) fits in [base, base + size) without overflow. */
export function rangeInside(addr: number, len: number, base: number, size: number): boolean {
  return isSafeInteger(addr) && isSafeInteger(len) && len >= 0 && addr >= base && len <= size && addr - base <= size - len;
}

/** The largest of `ranges` (the first of equals); `ranges` must not be empty. */
export function largestRange(ranges: readonly AddressRange[]): AddressRange {
  return ranges.reduce((a, b) => (b.size > a.size ? b : a));
}

/**
 * `ram` sorted by base, after checking that the ranges are non-empty, do not overlap and lie inside
 * [base, base + size): a memory map is the platform's (an emulator author's) input, so a wrong one
 * is a UsageError.
 */
function checkRamMap(ram: readonly AddressRange[], base: number, size: number): AddressRange[] {
  const sorted = [...ram].sort((a, b) => a.base - b.base);
  if (sorted.length === 0) throw new UsageError('a memory region needs at least one RAM range');
  let floor = base;
  for (const r of sorted) {
    if (!(isSafeInteger(r.size) && r.size > 0 && r.base >= floor && rangeInside(r.base, r.size, base, size))) {
      throw new UsageError(
        `RAM range [0x${r.base.toString(16)}, +0x${r.size.toString(16)}) is empty, overlaps another or lies outside [0x${base.toString(16)}, +0x${size.toString(16)})`,
      );
    }
    floor = r.base + r.size;
  }
  return sorted;
}

/** One contiguous region of guest memory backed by an ArrayBuffer or SharedArrayBuffer. */
export class ArrayGuestMemory implements GuestMemory, GuestRegion {
  readonly bytes: Uint8Array;
  readonly end: number;
  readonly dv: DataView;
  /**
   * `bytes`' buffer and offset, kept: a view built on them costs half what `subarray` does (which
   * looks up the species constructor) and the `buffer` getter costs as much again.
   */
  readonly buffer: ArrayBufferLike;
  readonly byteOffset: number;
  /**
   * The largest RAM range, checked first (every access when the region is all RAM): one range
   * compare on the hot path, as without a map. Kept as fields: reading the view's byteLength costs
   * more than the check itself.
   */
  private readonly ramBase: number;
  private readonly ramSize: number;
  /** The other RAM ranges, tried only when an access misses the largest one. */
  private readonly otherRam: readonly AddressRange[];

  /**
   * @param backing size in bytes, or an existing buffer/view to wrap without copying
   * @param base guest-physical address of the first byte (may be above 4 GiB)
   * @param ram the RAM ranges of the platform's memory map inside this region (default: all of it).
   *   Bytes between them are holes (firmware areas, ROM, reserved ranges): they stay in `bytes`, but
   *   every accessor refuses them, so no device reads or writes there.
   */
  constructor(
    backing: number | ArrayBufferLike | Uint8Array,
    readonly base = 0,
    ram?: readonly AddressRange[],
  ) {
    if (typeof backing === 'number') this.bytes = new Uint8Array(backing);
    else if (backing instanceof Uint8Array) this.bytes = backing;
    else this.bytes = new Uint8Array(backing);
    this.buffer = this.bytes.buffer;
    this.byteOffset = this.bytes.byteOffset;
    this.dv = new DataView(this.buffer, this.byteOffset, this.bytes.byteLength);
    const ranges = ram === undefined ? [{ base, size: this.bytes.byteLength }] : checkRamMap(ram, base, this.bytes.byteLength);
    const largest = largestRange(ranges);
    this.ramBase = largest.base;
    this.ramSize = largest.size;
    this.otherRam = ranges.filter((r) => r !== largest);
    const last = ranges[ranges.length - 1]!;
    this.end = last.base + last.size;
  }

  contains(addr: number, len: number): boolean {
    return rangeInside(addr, len, this.ramBase, this.ramSize) || (this.otherRam.length !== 0 && this.inOtherRam(addr, len));
  }

  private inOtherRam(addr: number, len: number): boolean {
    for (const r of this.otherRam) if (rangeInside(addr, len, r.base, r.size)) return true;
    return false;
  }

  /** Offset into `bytes` of [addr, addr + len), or throws. */
  offsetOf(addr: number, len: number): number {
    if (!this.contains(addr, len)) throw new GuestMemoryError(addr, len);
    return addr - this.base;
  }

  read8(addr: number): number {
    return this.dv.getUint8(this.offsetOf(addr, 1));
  }
  read16(addr: number): number {
    return this.dv.getUint16(this.offsetOf(addr, 2), true);
  }
  read32(addr: number): number {
    return this.dv.getUint32(this.offsetOf(addr, 4), true);
  }
  read64(addr: number): bigint {
    return this.dv.getBigUint64(this.offsetOf(addr, 8), true);
  }
  write8(addr: number, value: number): void {
    this.dv.setUint8(this.offsetOf(addr, 1), value);
  }
  write16(addr: number, value: number): void {
    this.dv.setUint16(this.offsetOf(addr, 2), value, true);
  }
  write32(addr: number, value: number): void {
    this.dv.setUint32(this.offsetOf(addr, 4), value >>> 0, true);
  }
  write64(addr: number, value: bigint): void {
    this.dv.setBigUint64(this.offsetOf(addr, 8), BigInt.asUintN(64, value), true);
  }
  view(addr: number, len: number): Uint8Array {
    return new Uint8Array(this.buffer, this.byteOffset + this.offsetOf(addr, len), len);
  }
  // `length`: V8 does not inline the byteLength getter of a view.
  read(addr: number, dst: Uint8Array): void {
    dst.set(this.view(addr, dst.length));
  }
  write(addr: number, src: Uint8Array): void {
    // Set at an offset: no view of guest memory to allocate.
    this.bytes.set(src, this.offsetOf(addr, src.length));
  }
  region(addr: number, len: number): GuestRegion {
    this.offsetOf(addr, len);
    return this;
  }
}

/**
 * Several regions at their guest-physical bases, e.g. low RAM below the PCI hole and high RAM above
 * 4 GiB. An access must fall inside one region; one that spans a gap is out of range.
 */
export class RegionGuestMemory implements GuestMemory {
  readonly end: number;
  private readonly regions: readonly ArrayGuestMemory[];

  constructor(regions: readonly ArrayGuestMemory[]) {
    this.regions = [...regions].sort((a, b) => a.base - b.base);
    for (let i = 1; i < this.regions.length; i++) {
      const prev = this.regions[i - 1]!;
      if (this.regions[i]!.base < prev.end) throw new RangeError('guest memory regions overlap');
    }
    this.end = this.regions.length === 0 ? 0 : this.regions[this.regions.length - 1]!.end;
  }

  region(addr: number, len: number): GuestRegion {
    return this.regionOf(addr, len);
  }

  private regionOf(addr: number, len: number): ArrayGuestMemory {
    for (const r of this.regions) if (r.contains(addr, len)) return r;
    throw new GuestMemoryError(addr, len);
  }

  contains(addr: number, len: number): boolean {
    return this.regions.some((r) => r.contains(addr, len));
  }
  read8(addr: number): number {
    return this.regionOf(addr, 1).read8(addr);
  }
  read16(addr: number): number {
    return this.regionOf(addr, 2).read16(addr);
  }
  read32(addr: number): number {
    return this.regionOf(addr, 4).read32(addr);
  }
  read64(addr: number): bigint {
    return this.regionOf(addr, 8).read64(addr);
  }
  write8(addr: number, value: number): void {
    this.regionOf(addr, 1).write8(addr, value);
  }
  write16(addr: number, value: number): void {
    this.regionOf(addr, 2).write16(addr, value);
  }
  write32(addr: number, value: number): void {
    this.regionOf(addr, 4).write32(addr, value);
  }
  write64(addr: number, value: bigint): void {
    this.regionOf(addr, 8).write64(addr, value);
  }
  view(addr: number, len: number): Uint8Array {
    return this.regionOf(addr, len).view(addr, len);
  }
  read(addr: number, dst: Uint8Array): void {
    dst.set(this.view(addr, dst.byteLength));
  }
  write(addr: number, src: Uint8Array): void {
    this.view(addr, src.byteLength).set(src);
  }
}
