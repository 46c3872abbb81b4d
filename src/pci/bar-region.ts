/**
 * What sits behind a BAR: a register block the function serves, and a map that places several
 * blocks at offsets inside one BAR (as virtio-pci puts common, ISR, device and notify in BAR4).
 */

import type { AccessSize } from './function.js';

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
      if (offset < p.offset + p.size && p.offset < offset + size) throw new RangeError(`region at 0x${offset.toString(16)} overlaps another`);
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
