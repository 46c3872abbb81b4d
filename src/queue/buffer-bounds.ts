/**
 * Whether a buffer a descriptor names lies in guest memory, answered without a call into the memory
 * for the common case. Shared by both ring formats' chain walks.
 */

import type { GuestMemory } from '../memory/guest-memory.js';

/**
 * Two address windows the memory confirmed as one region each at construction (the region at 0 and
 * the topmost one): a buffer inside either needs no call into the memory, others ask it.
 */
export class BufferBounds {
  /** -1 when address 0 is not mapped. */
  private readonly lowEnd: number;
  private readonly topStart: number;
  private readonly topEnd: number;

  constructor(private readonly memory: GuestMemory) {
    this.topEnd = memory.end;
    this.topStart = lowestStart(memory);
    this.lowEnd = memory.contains(0, 0) ? highestEnd(memory) : -1;
  }

  /**
   * Whether [addr, addr + len) lies in guest memory. `addr` comes from joinU64 and `len` from a
   * le32, so both are non-negative and an address at or above 2^53 is above every window.
   */
  inside(addr: number, len: number): boolean {
    return (addr >= this.topStart && addr <= this.topEnd - len) || addr <= this.lowEnd - len || this.memory.contains(addr, len);
  }
}

/** The lowest `start` with [start, memory.end) inside one region (binary search: contains is monotone). */
function lowestStart(memory: GuestMemory): number {
  let lo = 0; // candidates in [lo, hi]; hi always qualifies (an empty range at the end)
  let hi = memory.end;
  if (!memory.contains(hi, 0)) return Infinity;
  while (lo < hi) {
    const mid = Math.floor((lo + hi) / 2);
    if (memory.contains(mid, memory.end - mid)) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

/** The highest `end` with [0, end) inside one region, given that address 0 is mapped. */
function highestEnd(memory: GuestMemory): number {
  let lo = 0; // [0, lo) always qualifies
  let hi = memory.end;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (memory.contains(0, mid)) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}
