/**
 * What sits behind a BAR: a register block the function serves, and a map that places several
 * blocks at offsets inside one BAR (as virtio-pci puts common, ISR, device and notify in BAR4).
 */

import { UsageError } from '../errors.js';
import type { AccessSize } from '../memory/access-size.js';

/** A register block. Offsets are relative to the block; callers keep offset + size inside it. */
export interface BarRegion {
  read(offset: number, size: AccessSize): number;
  write(offset: number, size: AccessSize, value: number): void;
}

interface Placed {
  readonly offset: number;
  readonly size: number;
  readonly region: BarRegion;
}

/**
 * Blocks at fixed offsets inside one BAR. An access must fall wholly inside one block; one that
 * falls in a hole or straddles two blocks reads 0 and writes nothing (QEMU's unassigned space).
 */
export class RegionMap implements BarRegion {
  private readonly placed: Placed[] = [];

  /** Place `region` at [offset, offset + size); blocks must not overlap. */
  add(offset: number, size: number, region: BarRegion): this {
    for (const p of this.placed)
      if (offset < p.offset + p.size && p.offset < offset + size)
        throw new UsageError(`region at 0x${offset.toString(16)} overlaps another`);
    this.placed.push({ offset, size, region });
    return this;
  }

  private find(offset: number, size: number): Placed | undefined {
    for (const p of this.placed) if (offset >= p.offset && offset + size <= p.offset + p.size) return p;
    return undefined;
  }

  read(offset: number, size: AccessSize): number {
    const p = this.find(offset, size);
    return p === undefined ? 0 : p.region.read(offset - p.offset, size);
  }

  write(offset: number, size: AccessSize, value: number): void {
    const p = this.find(offset, size);
    p?.region.write(offset - p.offset, size, value);
  }
}

/**
 * A region seen through QEMU's memory core for devices without unaligned-access support: an
 * access not naturally aligned is split into naturally aligned pieces (1, 2 or 4 bytes, from the
 * lowest address up), each dispatched on its own, and the pieces' values composed little-endian.
 * Aligned accesses pass through unchanged.
 */
export class NaturallyAligned implements BarRegion {
  constructor(private readonly inner: BarRegion) {}

  read(offset: number, size: AccessSize): number {
    if (offset % size === 0) return this.inner.read(offset, size);
    let value = 0;
    for (let done = 0; done < size;) {
      const piece = pieceSize(offset + done, size - done);
      value += this.inner.read(offset + done, piece) * 2 ** (8 * done);
      done += piece;
    }
    return value;
  }

  write(offset: number, size: AccessSize, value: number): void {
    if (offset % size === 0) {
      this.inner.write(offset, size, value);
      return;
    }
    for (let done = 0; done < size;) {
      const piece = pieceSize(offset + done, size - done);
      this.inner.write(offset + done, piece, Math.floor((value >>> 0) / 2 ** (8 * done)) % 2 ** (8 * piece));
      done += piece;
    }
  }
}

/** The largest naturally aligned access at `offset` no longer than `remaining`. */
function pieceSize(offset: number, remaining: number): AccessSize {
  if (remaining >= 4 && offset % 4 === 0) return 4;
  if (remaining >= 2 && offset % 2 === 0) return 2;
  return 1;
}
