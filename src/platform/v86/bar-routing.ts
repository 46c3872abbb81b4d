/**
 * Routes the BARs the guest programs on v86's bus to their functions: I/O ports one by one and memory
 * in v86's 128 KiB MMIO blocks, following every move, and refusing ranges another v86 device owns or
 * that v86 cannot reach (each refusal a {@link BarRefusedError}). Also makes v86's MMIO accesses
 * reach a function at the width the guest used (16-bit writes whole, 16-bit reads as one access).
 */

import { BarRefusedError, type BarRefusedCode } from '../../errors.js';
import type { AccessSize } from '../../memory/access-size.js';
import type { DecodedBar, PciFunction } from '../../pci/function.js';
import type { GuestAccess } from './guest-access.js';
import type { MmioRead, V86Cpu } from './internals.js';
import { MmioWordReads } from './mmio-word-reads.js';

/** v86 maps MMIO in blocks of this size (src/io.js mmap_register). */
const MMIO_BLOCK_SHIFT = 17;
const MMIO_BLOCK_SIZE = 1 << MMIO_BLOCK_SHIFT;
const BLOCK_COUNT = 2 ** 32 / MMIO_BLOCK_SIZE;
const PORT_COUNT = 0x10000;

const ONES: Record<AccessSize, number> = { 1: 0xff, 2: 0xffff, 4: 0xffff_ffff };

/** Refused BARs kept (and warned about) per function: the guest chooses the addresses, so every one could be new. */
export const MAX_REFUSED_BARS = 64;

/** A function as far as its BARs go. */
export interface RoutedFunction {
  readonly name: string;
  readonly fn: PciFunction;
}

interface Route {
  readonly dev: RoutedFunction;
  readonly bar: DecodedBar;
}

export class BarRouter {
  private routes: Route[] = [];
  private readonly ownedPorts = new Uint8Array(PORT_COUNT);
  private readonly ownedBlocks = new Uint8Array(BLOCK_COUNT);
  private readonly unmappedRead8: MmioRead | undefined;
  /** Each BAR placement that could not be routed, in the order the guest made them: each function's first {@link MAX_REFUSED_BARS}. */
  readonly refusedBars: BarRefusedError[] = [];
  private readonly barRefusedListeners = new Set<(error: BarRefusedError) => void>();
  /** The last refusal per function and BAR, and the refusals kept per function (bounded by their number). */
  private readonly lastRefusal = new Map<string, string>();
  private readonly refusalsKept = new Map<string, number>();
  /** Which MMIO byte reads are halves of the guest's 16-bit reads. */
  private readonly wordReads: MmioWordReads;
  /** The high byte of a guest's 16-bit MMIO read, for its second half (see mmioRead8). */
  private pendingHighByte: [addr: number, byte: number] | undefined;

  constructor(
    private readonly cpu: V86Cpu,
    private readonly access: GuestAccess,
    private readonly warn: (message: string) => void,
  ) {
    this.wordReads = new MmioWordReads(cpu);
    this.unmappedRead8 = this.findUnmappedHandler();
    this.takeMmioWrite16();
  }

  /** Recompute where every function's BARs decode, and claim ports/blocks newly covered. */
  reroute(functions: Iterable<RoutedFunction>): void {
    const routes: Route[] = [];
    for (const dev of functions) {
      for (const bar of dev.fn.decodedBars()) {
        if (bar.size <= 0) continue;
        if (bar.kind === 'io' ? this.claimPorts(dev, bar) : this.claimBlocks(dev, bar)) routes.push({ dev, bar });
      }
    }
    this.routes = routes;
  }

  /** See {@link V86PciAdapter.onBarRefused}. */
  onBarRefused(listener: (error: BarRefusedError) => void): () => void {
    this.barRefusedListeners.add(listener);
    return () => this.barRefusedListeners.delete(listener);
  }

  /**
   * Report a BAR placement that cannot be routed: every listener hears of each new one; a function's
   * first {@link MAX_REFUSED_BARS} are kept and warned about (the guest
   * chooses the addresses, so an unbounded list or log would be its to grow).
   */
  private refuse(dev: RoutedFunction, bar: DecodedBar, code: BarRefusedCode, why: string): false {
    const error = new BarRefusedError(code, dev.name, bar.index, bar.kind, bar.base, bar.size, why);
    // A BAR's placement is refused again at each of the guest's config writes until it moves: report it once.
    const slot = `${dev.name}/${bar.index}`;
    if (this.lastRefusal.get(slot) === error.message) return false;
    this.lastRefusal.set(slot, error.message);
    const kept = (this.refusalsKept.get(dev.name) ?? 0) + 1;
    if (kept <= MAX_REFUSED_BARS) {
      this.refusalsKept.set(dev.name, kept);
      this.refusedBars.push(error);
      this.warn(`virtio-ts v86 adapter: ${error.message} [${code}]`);
      if (kept === MAX_REFUSED_BARS)
        this.warn(
          `virtio-ts v86 adapter: ${dev.name}: ${MAX_REFUSED_BARS} BAR placements refused; further ones go to onBarRefused listeners only`,
        );
    }
    for (const listener of this.barRefusedListeners) listener(error);
    return false;
  }

  /**
   * Claim the ports of an I/O BAR. Relies on: io.register_read/register_write (per port, handlers
   * get the port on reads only) and io.empty_port_read8/empty_port_write identifying free ports.
   */
  private claimPorts(dev: RoutedFunction, bar: DecodedBar): boolean {
    const io = this.cpu.io;
    if (bar.base + bar.size > PORT_COUNT) return this.refuse(dev, bar, 'ERR_BAR_BEYOND_PORTS', 'beyond port 0xffff');
    for (let p = bar.base; p < bar.base + bar.size; p++) {
      const e = io.ports[p]!;
      if (this.ownedPorts[p] === 0 && (e.read8 !== io.empty_port_read8 || e.write8 !== io.empty_port_write)) {
        return this.refuse(dev, bar, 'ERR_BAR_CONFLICT', `port 0x${p.toString(16)} belongs to another device`);
      }
    }
    for (let p = bar.base; p < bar.base + bar.size; p++) {
      if (this.ownedPorts[p] === 1) continue;
      this.ownedPorts[p] = 1;
      const port = p;
      io.register_read(
        port,
        this,
        () => this.ioRead(port, 1),
        () => this.ioRead(port, 2),
        () => this.ioRead(port, 4) | 0,
      );
      io.register_write(
        port,
        this,
        (v) => this.ioWrite(port, 1, v),
        (v) => this.ioWrite(port, 2, v),
        (v) => this.ioWrite(port, 4, v),
      );
    }
    return true;
  }

  /**
   * Claim the 128 KiB blocks a memory BAR covers. Relies on: io.mmap_register and
   * cpu.memory_map_read8 (a block still holding the shared unmapped-space handler is free).
   */
  private claimBlocks(dev: RoutedFunction, bar: DecodedBar): boolean {
    const end = bar.base + bar.size;
    if (end > 2 ** 32) {
      return this.refuse(
        dev,
        bar,
        'ERR_BAR_ABOVE_4G',
        "above 4 GiB, which v86 cannot reach: it is a 32-bit machine and truncates the guest's accesses there to 32 bits, so they miss the function " +
          '(declare the BAR 32-bit: V86PciAdapter.plugVirtio does, or VirtioPciFunction option modernBar64: false)',
      );
    }
    const first = Math.floor(bar.base / MMIO_BLOCK_SIZE);
    const last = Math.floor((end - 1) / MMIO_BLOCK_SIZE);
    for (let b = first; b <= last; b++) {
      if (this.ownedBlocks[b] === 0 && (this.unmappedRead8 === undefined || this.cpu.memory_map_read8[b] !== this.unmappedRead8)) {
        return this.refuse(dev, bar, 'ERR_BAR_CONFLICT', `block 0x${(b * MMIO_BLOCK_SIZE).toString(16)} is RAM or another device's`);
      }
    }
    for (let b = first; b <= last; b++) {
      if (this.ownedBlocks[b] === 1) continue;
      this.ownedBlocks[b] = 1;
      this.cpu.io.mmap_register(
        b * MMIO_BLOCK_SIZE,
        MMIO_BLOCK_SIZE,
        (a) => this.mmioRead8(a >>> 0),
        (a, v) => this.mmioWrite(a >>> 0, 1, v),
        (a) => this.mmioRead32(a >>> 0) | 0,
        (a, v) => this.mmioWrite(a >>> 0, 4, v >>> 0),
      );
    }
    return true;
  }

  /** The handler v86 installs on all unmapped space above RAM: the most common one in the hole. */
  private findUnmappedHandler(): MmioRead | undefined {
    const counts = new Map<MmioRead, number>();
    const map = this.cpu.memory_map_read8;
    for (let b = Math.ceil((this.cpu.memory_size[0]! >>> 0) / MMIO_BLOCK_SIZE); b < BLOCK_COUNT; b++) {
      const h = map[b];
      if (h !== undefined) counts.set(h, (counts.get(h) ?? 0) + 1);
    }
    let best: MmioRead | undefined;
    let bestCount = 0;
    for (const [h, n] of counts) if (n > bestCount) [best, bestCount] = [h, n];
    return best;
  }

  /**
   * 16-bit MMIO writes reach JS as cpu.mmap_write16, which v86 splits into two byte writes; ours
   * must arrive whole (a virtio driver writes queue_select or a notify as one 16-bit access).
   */
  private takeMmioWrite16(): void {
    const cpu = this.cpu;
    const v86Write16 = cpu.mmap_write16;
    cpu.mmap_write16 = (addr: number, value: number) => {
      const a = addr >>> 0;
      if (this.ownedBlocks[a >>> MMIO_BLOCK_SHIFT] === 1) this.mmioWrite(a, 2, value & 0xffff);
      else v86Write16.call(cpu, addr, value);
    };
  }

  private route(kind: 'io' | 'memory', addr: number, size: AccessSize): [Route, number] | undefined {
    for (const r of this.routes) {
      const off = addr - r.bar.base;
      if (r.bar.kind === kind && off >= 0 && off + size <= r.bar.size) return [r, off];
    }
    return undefined;
  }

  private barRead(kind: 'io' | 'memory', addr: number, size: AccessSize): number {
    const hit = this.route(kind, addr, size);
    if (hit === undefined) return ONES[size];
    const [{ dev, bar }, off] = hit;
    this.access.enter();
    try {
      return dev.fn.barRead(bar.index, off, size);
    } finally {
      this.access.leave();
    }
  }

  private barWrite(kind: 'io' | 'memory', addr: number, size: AccessSize, value: number): void {
    this.pendingHighByte = undefined;
    const hit = this.route(kind, addr, size);
    if (hit === undefined) return;
    const [{ dev, bar }, off] = hit;
    this.access.enter();
    try {
      dev.fn.barWrite(bar.index, off, size, value);
    } finally {
      this.access.leave();
    }
  }

  /**
   * 16-bit MMIO reads reach JS as two byte reads, low byte first (src/rust/cpu/memory.rs read16), and
   * a register read with the wrong width may read wrong (a device serving fields, not byte lanes,
   * gives 0 for the high byte of queue_size). So the first half of a guest's aligned 16-bit read
   * (as {@link MmioWordReads} tells) reads 16 bits and keeps the high byte for the second half, which
   * v86 makes at once; every other byte read reaches the function at byte width and its own address
   * (an 8-bit register such as config_generation or the ISR is read once, as the guest asked).
   */
  private mmioRead8(addr: number): number {
    const pending = this.pendingHighByte;
    this.pendingHighByte = undefined;
    const word = this.wordReads.inWordRead();
    if (pending !== undefined && pending[0] === addr && word) return pending[1];
    if (!word || (addr & 1) !== 0 || this.route('memory', addr, 2) === undefined) return this.barRead('memory', addr, 1);
    const value = this.barRead('memory', addr, 2);
    this.pendingHighByte = [addr + 1, (value >>> 8) & 0xff];
    return value & 0xff;
  }

  private ioRead(port: number, size: AccessSize): number {
    return this.barRead('io', port, size);
  }
  private ioWrite(port: number, size: AccessSize, value: number): void {
    this.barWrite('io', port, size, value & ONES[size]);
  }
  private mmioRead32(addr: number): number {
    this.pendingHighByte = undefined;
    return this.barRead('memory', addr, 4);
  }
  private mmioWrite(addr: number, size: AccessSize, value: number): void {
    this.barWrite('memory', addr, size, value);
  }
}
