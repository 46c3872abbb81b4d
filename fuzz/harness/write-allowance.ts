/**
 * What a device may write in guest memory, as the guest has declared it: the used ring of every
 * live queue and every buffer a descriptor (direct, or in an indirect table) marks device-writable.
 * Ranges accumulate over a run: a chain popped earlier keeps its buffers writable even after the
 * guest rewrites its descriptors, so a device completing it late is still within its rights.
 */

import type { GuestMemory } from '../../src/memory/guest-memory.js';
import { VIRTQ_DESC_F_INDIRECT, VIRTQ_DESC_F_WRITE, VIRTQ_DESC_SIZE, usedRingSize } from '../../src/spec/ring.js';
import type { GuardedMemory } from '../../src/testing/guarded-memory.js';

/** Past this many ranges every write is allowed (a hostile guest can declare many; stay a superset). */
const MAX_RANGES = 4096;

export interface LiveRing {
  readonly size: number;
  readonly desc: number;
  readonly used: number;
}

export class WriteAllowance {
  private readonly keys = new Set<string>();
  private readonly ranges: Array<[number, number]> = [];
  private saturated = false;

  /** Scan the rings' descriptor tables (and the indirect tables they name) as the guest left them. */
  collect(guest: GuestMemory, rings: readonly LiveRing[]): void {
    for (const r of rings) {
      this.add(r.used, usedRingSize(r.size));
      this.scanTable(guest, r.desc, r.size, true);
    }
  }

  /** Apply the collected ranges to the guarded memory (after clearing its allowances). */
  applyTo(mem: GuardedMemory): void {
    mem.clearAllowed();
    if (this.saturated) mem.allowWrite(mem.base, mem.end - mem.base, 'saturated');
    for (const [addr, len] of this.ranges) mem.allowWrite(addr, len, 'guest-declared writable');
  }

  private scanTable(guest: GuestMemory, table: number, entries: number, direct: boolean): void {
    if (!guest.contains(table, entries * VIRTQ_DESC_SIZE)) return;
    for (let i = 0; i < entries; i++) {
      const at = table + i * VIRTQ_DESC_SIZE;
      const addr = Number(guest.read64(at));
      const len = guest.read32(at + 8);
      const flags = guest.read16(at + 12);
      if ((flags & VIRTQ_DESC_F_INDIRECT) !== 0) {
        if (direct && len % VIRTQ_DESC_SIZE === 0) this.scanTable(guest, addr, Math.min(len / VIRTQ_DESC_SIZE, 64), false);
      } else if ((flags & VIRTQ_DESC_F_WRITE) !== 0) this.add(addr, len);
    }
  }

  private add(addr: number, len: number): void {
    if (len === 0) return;
    if (this.ranges.length >= MAX_RANGES) {
      this.saturated = true;
      return;
    }
    const key = `${addr}:${len}`;
    if (this.keys.has(key)) return;
    this.keys.add(key);
    this.ranges.push([addr, len]);
  }
}
