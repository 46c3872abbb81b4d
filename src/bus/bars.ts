/**
 * The BAR sizing protocol (PCI Local Bus 3.0 6.2.5.1) and, where no firmware has run, BAR assignment
 * from the bus's address windows, as a BIOS would do it.
 */

import { BusError } from '../errors.js';
import { joinU64, splitU64 } from '../memory/guest-memory.js';
import type { DecodedBar } from '../pci/function.js';
import {
  PCI_BASE_ADDRESS_0,
  PCI_BASE_ADDRESS_IO_MASK,
  PCI_BASE_ADDRESS_MEM_MASK,
  PCI_BASE_ADDRESS_MEM_PREFETCH,
  PCI_BASE_ADDRESS_MEM_TYPE_64,
  PCI_BASE_ADDRESS_SPACE_IO,
  PCI_COMMAND,
  PCI_COMMAND_IO,
  PCI_COMMAND_MASTER,
  PCI_COMMAND_MEMORY,
  PCI_NUM_BARS,
} from '../spec/pci.js';
import type { Bdf, BusResources, PciBus } from './pci-bus.js';

/** A BAR as found by sizing: kind, size and the base it is programmed to (0 = not yet assigned). */
export type PciBar = DecodedBar;

/** The BAR register offset of slot `index`. */
function barRegister(index: number): number {
  return PCI_BASE_ADDRESS_0 + 4 * index;
}

/** The lowest set bit of a non-zero value: the size a BAR's writable mask encodes. */
function lowestSetBit(mask: bigint): number {
  return Number(mask & -mask);
}

/**
 * Size every BAR of `fn` and report how each is programmed. Memory and I/O decoding are off while
 * the registers hold all-ones (so the device never answers at a bogus address) and the command
 * register is restored afterwards. A 64-bit BAR is reported once, at its lower slot. All six
 * registers are probed at once: the accesses are issued together (a remote bus pipelines them) and
 * performed in order.
 */
export async function sizeBars(bus: PciBus, fn: Bdf): Promise<PciBar[]> {
  const command = await bus.configRead(fn, PCI_COMMAND, 2);
  await bus.configWrite(fn, PCI_COMMAND, 2, command & ~(PCI_COMMAND_IO | PCI_COMMAND_MEMORY));
  const slots = Array.from({ length: PCI_NUM_BARS }, (_, index) => barRegister(index));
  let originals: number[];
  let masks: number[];
  try {
    // One Promise.all over every access, so a failing bus leaves no rejection unobserved.
    [originals, , masks] = await Promise.all([
      Promise.all(slots.map((reg) => bus.configRead(fn, reg, 4))),
      Promise.all(slots.map((reg) => bus.configWrite(fn, reg, 4, 0xffffffff))),
      Promise.all(slots.map((reg) => bus.configRead(fn, reg, 4))),
    ]);
    await Promise.all(slots.map((reg, i) => bus.configWrite(fn, reg, 4, originals[i]!)));
  } finally {
    await bus.configWrite(fn, PCI_COMMAND, 2, command);
  }
  return decodeBars(
    originals.map((v) => v >>> 0),
    masks.map((v) => v >>> 0),
  );
}

/** The BARs that six (original value, all-ones read-back) register pairs describe. */
function decodeBars(originals: readonly number[], masks: readonly number[]): PciBar[] {
  const bars: PciBar[] = [];
  for (let index = 0; index < PCI_NUM_BARS; index++) {
    const lo = masks[index]!;
    if (lo === 0) continue;
    if ((lo & PCI_BASE_ADDRESS_SPACE_IO) !== 0) {
      const mask = lo & PCI_BASE_ADDRESS_IO_MASK;
      if (mask !== 0)
        bars.push({
          index,
          kind: 'io',
          is64: false,
          prefetchable: false,
          size: lowestSetBit(BigInt(mask)),
          base: (originals[index]! & PCI_BASE_ADDRESS_IO_MASK) >>> 0,
        });
      continue;
    }
    const is64 = (lo & PCI_BASE_ADDRESS_MEM_TYPE_64) !== 0;
    // A 64-bit BAR in the last slot has no upper half: the function is broken, so leave it unused.
    if (is64 && index + 1 === PCI_NUM_BARS) break;
    const hiMask = is64 ? masks[index + 1]! : 0;
    const mask = (BigInt(hiMask) << 32n) | BigInt((lo & PCI_BASE_ADDRESS_MEM_MASK) >>> 0);
    if (mask !== 0n) {
      const base = joinU64((originals[index]! & PCI_BASE_ADDRESS_MEM_MASK) >>> 0, is64 ? originals[index + 1]! : 0);
      bars.push({ index, kind: 'memory', is64, prefetchable: (lo & PCI_BASE_ADDRESS_MEM_PREFETCH) !== 0, size: lowestSetBit(mask), base });
    }
    if (is64) index++;
  }
  return bars;
}

/** A range of bus addresses one BAR decodes, and whose it is ("bdf:index"). */
interface Claim {
  readonly start: number;
  readonly end: number;
  readonly owner: string;
}

/**
 * Hands out naturally aligned ranges from a bus's address windows, lowest first, and keeps every
 * range it handed out or accepted, so that no two BARs on the bus ever overlap.
 */
export class BarAllocator {
  private readonly next: { mem32: number; mem64: number; io: number };
  private readonly claims: Claim[] = [];

  constructor(private readonly resources: BusResources) {
    this.next = { mem32: resources.mem32.base, mem64: resources.mem64?.base ?? 0, io: resources.io.base };
  }

  /**
   * Accept a BAR programmed before the driver came, at its base, for `owner`: only inside a window
   * its kind may use (a 64-bit BAR may sit in mem32 too) and overlapping no other owner's range.
   * False means it must be moved (as Linux reassigns resources that do not fit its windows).
   */
  claim(owner: string, bar: Pick<PciBar, 'kind' | 'is64' | 'size' | 'base'>): boolean {
    const end = bar.base + bar.size;
    const inside = (w: { base: number; size: number } | undefined): boolean =>
      w !== undefined && bar.base >= w.base && end <= w.base + w.size;
    const fits = bar.kind === 'io' ? inside(this.resources.io) : inside(this.resources.mem32) || (bar.is64 && inside(this.resources.mem64));
    if (!fits) return false;
    const overlap = this.claims.find((c) => c.start < end && bar.base < c.end);
    if (overlap !== undefined) return overlap.owner === owner && overlap.start === bar.base && overlap.end === end; // already ours
    this.claims.push({ start: bar.base, end, owner });
    return true;
  }

  /** A base for a BAR of this kind and size (for `owner`), or undefined when its window is full. */
  take(bar: Pick<PciBar, 'kind' | 'is64' | 'size'>, owner = ''): number | undefined {
    const window = bar.kind === 'io' ? 'io' : bar.is64 && this.resources.mem64 !== undefined ? 'mem64' : 'mem32';
    const { base, size } = window === 'mem64' ? this.resources.mem64! : this.resources[window];
    const align = (at: number): number => Math.ceil(at / bar.size) * bar.size;
    let start = align(this.next[window]);
    // Step over claimed ranges; each is passed at most once, as start only grows.
    for (let hit = this.overlapping(start, bar.size); hit !== undefined; hit = this.overlapping(start, bar.size)) start = align(hit.end);
    if (start + bar.size > base + size) return undefined;
    this.next[window] = start + bar.size;
    this.claims.push({ start, end: start + bar.size, owner });
    return start;
  }

  private overlapping(start: number, size: number): Claim | undefined {
    return this.claims.find((c) => c.start < start + size && start < c.end);
  }
}

/** One allocator per bus, so functions assigned one after another never overlap. */
const allocators = new WeakMap<PciBus, BarAllocator>();

function allocatorFor(bus: PciBus, resources: BusResources): BarAllocator {
  let allocator = allocators.get(bus);
  if (allocator === undefined) {
    allocator = new BarAllocator(resources);
    allocators.set(bus, allocator);
  }
  return allocator;
}

/**
 * Size `fn`'s BARs, give every unprogrammed one (base 0) an address from `bus.resources` (64-bit
 * BARs from the 64-bit window when the bus has one), then enable I/O and memory decoding and bus
 * mastering. A BAR the device came with programmed is kept only inside the bus's windows and clear
 * of every other BAR assigned on the bus; otherwise it is moved, so that a device cannot aim the
 * driver's accesses at another function's registers. With no resources (firmware assigned the
 * BARs) only the command register is changed. Throws BusError when a window has no room left.
 */
export async function assignBars(bus: PciBus, fn: Bdf): Promise<PciBar[]> {
  const sized = await sizeBars(bus, fn);
  const resources = bus.resources;
  const bars = sized.map((bar): PciBar => {
    if (resources === undefined) return bar;
    const allocator = allocatorFor(bus, resources);
    const owner = `${fn}:${bar.index}`;
    if (bar.base !== 0 && allocator.claim(owner, bar)) return bar;
    const base = allocator.take(bar, owner);
    if (base === undefined) throw new BusError(`${bus.name}: no room for BAR${bar.index} (${bar.kind}, ${bar.size} bytes)`);
    return { ...bar, base };
  });
  const writes = bars.flatMap((bar, i) => {
    if (bar.base === sized[i]!.base) return [];
    const [lo, hi] = splitU64(bar.base);
    // The low flag bits are read-only, so writing the bare address is enough.
    const lower = bus.configWrite(fn, barRegister(bar.index), 4, lo);
    return bar.is64 ? [lower, bus.configWrite(fn, barRegister(bar.index + 1), 4, hi)] : [lower];
  });
  await Promise.all(writes);
  const command = await bus.configRead(fn, PCI_COMMAND, 2);
  await bus.configWrite(fn, PCI_COMMAND, 2, command | PCI_COMMAND_IO | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
  return bars;
}
