/**
 * The packed ring's wire layout written out from the spec text (2.8.1, 2.8.13, 2.8.14), apart from
 * src/spec, so that tests build the bytes they expect without the code under test.
 */

import type { GuestMemory } from '../../src/memory/guest-memory.js';

/** struct pvirtq_desc { le64 addr; le32 len; le16 id; le16 flags; } and its flag bits. */
export const PD = {
  size: 16,
  addr: 0,
  len: 8,
  id: 12,
  flags: 14,
  NEXT: 1,
  WRITE: 2,
  INDIRECT: 4,
  AVAIL: 1 << 7,
  USED: 1 << 15,
} as const;

/** struct pvirtq_event_suppress { le16 desc (off:15, wrap:1); le16 flags; } and the flag values. */
export const EV = { desc: 0, flags: 2, ENABLE: 0, DISABLE: 1, DESC: 2, RESERVED: 3 } as const;

export interface RingDesc {
  readonly addr: number;
  readonly len: number;
  readonly id: number;
  readonly flags: number;
}

/** Descriptor `slot` of the ring at `ring`, field by field. */
export function readRingDesc(memory: GuestMemory, ring: number, slot: number): RingDesc {
  const at = ring + slot * PD.size;
  return {
    addr: memory.read32(at + PD.addr) + memory.read32(at + PD.addr + 4) * 2 ** 32,
    len: memory.read32(at + PD.len),
    id: memory.read16(at + PD.id),
    flags: memory.read16(at + PD.flags),
  };
}

/**
 * The used descriptor the device writes (2.8.1: AVAIL and USED both equal to its wrap counter;
 * 2.8.3: WRITE when it wrote data, with `len` the bytes written).
 */
export function usedDesc(id: number, len: number, wrap: number): { id: number; len: number; flags: number } {
  return { id, len, flags: (wrap === 1 ? PD.AVAIL | PD.USED : 0) | (len > 0 ? PD.WRITE : 0) };
}

/** The AVAIL/USED bits of an available descriptor for wrap counter `wrap` (2.8.1). */
export function availBits(wrap: number): number {
  return wrap === 1 ? PD.AVAIL : PD.USED;
}
