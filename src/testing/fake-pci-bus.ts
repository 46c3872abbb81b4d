/**
 * TEST DOUBLE, not a machine: a PciBus that serves hand-built configuration spaces (see
 * config-space-builder.ts) with working BAR sizing and a command register, routes memory and I/O
 * accesses inside decoded BARs to per-BAR handlers a test supplies, logs every access, and lets the
 * test raise interrupts. For driver-side unit tests that must not depend on the device half.
 */

import { joinU64 } from '../memory/guest-memory.js';
import { ArrayGuestMemory } from '../memory/guest-memory.js';
import type { AccessSize } from '../memory/access-size.js';
import type { Bdf, BusResources, InterruptEvent, PciBus } from '../bus/pci-bus.js';
import { RamDma } from '../bus/ram-dma.js';
import { InterruptListeners } from '../bus/interrupt-listeners.js';
import {
  PCI_BASE_ADDRESS_0,
  PCI_BASE_ADDRESS_MEM_PREFETCH,
  PCI_BASE_ADDRESS_MEM_TYPE_64,
  PCI_BASE_ADDRESS_SPACE_IO,
  PCI_COMMAND,
  PCI_COMMAND_IO,
  PCI_COMMAND_MEMORY,
  PCI_NUM_BARS,
} from '../spec/pci.js';
import type { BarSpec, BuiltFunction } from './config-space-builder.js';

/** What a test puts behind one BAR. */
export interface RegionHandler {
  read(offset: number, size: AccessSize): number;
  write(offset: number, size: AccessSize, value: number): void;
}

export interface BusAccess {
  readonly op: 'configRead' | 'configWrite' | 'memRead' | 'memWrite' | 'ioRead' | 'ioWrite';
  /** Function (config accesses) or, for mem/io, the function and BAR hit (bar -1 when none). */
  readonly fn: Bdf | undefined;
  readonly bar: number | undefined;
  /** Config offset, or the offset inside the BAR. */
  readonly offset: number;
  readonly size: AccessSize;
  readonly value: number;
}

class FakeFunction {
  readonly config: Uint8Array;
  readonly dv: DataView;
  readonly barRegs = new Array<number>(PCI_NUM_BARS).fill(0);

  constructor(
    readonly bdf: Bdf,
    built: BuiltFunction,
    readonly bars: readonly (BarSpec | undefined)[],
    readonly handlers: ReadonlyMap<number, RegionHandler>,
  ) {
    this.config = built.config.slice();
    this.dv = new DataView(this.config.buffer);
  }

  /** The BAR register value hardware would return (address bits masked by size, flag bits set). */
  barRead(index: number): number {
    const spec = this.bars[index];
    if (spec !== undefined) {
      const maskLo = spec.size >= 2 ** 32 ? 0 : ~(spec.size - 1) >>> 0;
      const flags =
        spec.kind === 'io'
          ? PCI_BASE_ADDRESS_SPACE_IO
          : (spec.is64 === true ? PCI_BASE_ADDRESS_MEM_TYPE_64 : 0) | (spec.prefetchable === true ? PCI_BASE_ADDRESS_MEM_PREFETCH : 0);
      return ((this.barRegs[index]! & maskLo & ~0xf) | flags) >>> 0;
    }
    const lower = index > 0 ? this.bars[index - 1] : undefined;
    if (lower?.is64 === true) {
      const maskHi = lower.size > 2 ** 32 ? ~(lower.size / 2 ** 32 - 1) >>> 0 : 0xffffffff;
      return (this.barRegs[index]! & maskHi) >>> 0;
    }
    return 0;
  }

  /** Base of BAR `index` if its space is decoded, else undefined. */
  decodedBase(index: number): number | undefined {
    const spec = this.bars[index];
    if (spec === undefined) return undefined;
    const command = this.dv.getUint16(PCI_COMMAND, true);
    if ((command & (spec.kind === 'io' ? PCI_COMMAND_IO : PCI_COMMAND_MEMORY)) === 0) return undefined;
    const lo = this.barRead(index) & (spec.kind === 'io' ? ~0x3 : ~0xf);
    const base = joinU64(lo, spec.is64 === true ? this.barRead(index + 1) : 0);
    return base === 0 ? undefined : base;
  }
}

/**
 * Contiguous in-process DMA memory over the driver half's allocator (so tests can count free bytes);
 * flush/refresh are no-ops, but it does not claim to be coherent, so drivers take their remote-bus paths.
 */
export class LocalDma extends RamDma {
  override readonly coherent = false;
  constructor(override readonly memory: ArrayGuestMemory) {
    super(memory, memory.base, memory.end - memory.base);
  }
}

export class FakePciBus implements PciBus {
  readonly name = 'fake-pci-bus (test double)';
  readonly log: BusAccess[] = [];
  readonly dma: LocalDma;
  resources: BusResources | undefined = {
    mem32: { base: 0xe000_0000, size: 0x1000_0000 },
    mem64: { base: 0x80_0000_0000, size: 0x100_0000_0000 },
    io: { base: 0xc000, size: 0x1000 },
  };
  private readonly functions = new Map<Bdf, FakeFunction>();
  private readonly listeners = new InterruptListeners();

  constructor(dmaBytes = 1 << 20) {
    this.dma = new LocalDma(new ArrayGuestMemory(dmaBytes, 0x10_0000));
  }

  /** Plug a function in at `bdf`; `handlers` maps BAR index to what answers inside it. */
  add(bdf: Bdf, built: BuiltFunction, handlers: ReadonlyMap<number, RegionHandler> = new Map()): void {
    this.functions.set(bdf, new FakeFunction(bdf, built, built.bars, handlers));
  }

  /** The function's current configuration bytes (BAR registers as hardware would show them). */
  configBytes(bdf: Bdf): Uint8Array {
    const f = this.functions.get(bdf)!;
    const copy = f.config.slice();
    for (let i = 0; i < PCI_NUM_BARS; i++) new DataView(copy.buffer).setUint32(PCI_BASE_ADDRESS_0 + 4 * i, f.barRead(i), true);
    return copy;
  }

  /** Deliver an interrupt event to the function's listeners. */
  raise(bdf: Bdf, event: InterruptEvent): void {
    this.listeners.emit(bdf, event);
  }

  /** Accesses of one kind, for assertions. */
  accesses(op: BusAccess['op']): BusAccess[] {
    return this.log.filter((a) => a.op === op);
  }

  async configRead(fn: Bdf, offset: number, size: AccessSize): Promise<number> {
    const f = this.functions.get(fn);
    let value: number;
    if (f === undefined) value = size === 4 ? 0xffffffff : size === 2 ? 0xffff : 0xff;
    else {
      const bytes = this.configBytes(fn);
      const dv = new DataView(bytes.buffer);
      value = size === 1 ? dv.getUint8(offset) : size === 2 ? dv.getUint16(offset, true) : dv.getUint32(offset, true);
    }
    this.log.push({ op: 'configRead', fn, bar: undefined, offset, size, value });
    return value;
  }

  async configWrite(fn: Bdf, offset: number, size: AccessSize, value: number): Promise<void> {
    this.log.push({ op: 'configWrite', fn, bar: undefined, offset, size, value });
    const f = this.functions.get(fn);
    if (f === undefined) return;
    if (offset >= PCI_BASE_ADDRESS_0 && offset < PCI_BASE_ADDRESS_0 + 4 * PCI_NUM_BARS && size === 4) {
      f.barRegs[(offset - PCI_BASE_ADDRESS_0) / 4] = value >>> 0;
    } else if (offset === PCI_COMMAND && size === 2) {
      f.dv.setUint16(PCI_COMMAND, value & 0x0407, true);
    }
  }

  private route(kind: 'memory' | 'io', addr: number): { f: FakeFunction; bar: number; offset: number } | undefined {
    for (const f of this.functions.values()) {
      for (let i = 0; i < PCI_NUM_BARS; i++) {
        const spec = f.bars[i];
        const base = f.decodedBase(i);
        if (spec?.kind === kind && base !== undefined && addr >= base && addr < base + spec.size) return { f, bar: i, offset: addr - base };
      }
    }
    return undefined;
  }

  private async access(kind: 'memory' | 'io', op: BusAccess['op'], addr: number, size: AccessSize, value?: number): Promise<number> {
    const hit = this.route(kind, addr);
    const handler = hit?.f.handlers.get(hit.bar);
    let result = value ?? 0;
    if (value === undefined) result = handler !== undefined ? handler.read(hit!.offset, size) : kind === 'io' ? 2 ** (8 * size) - 1 : 0;
    else handler?.write(hit!.offset, size, value);
    this.log.push({ op, fn: hit?.f.bdf, bar: hit?.bar ?? -1, offset: hit?.offset ?? addr, size, value: result });
    return result;
  }

  memRead(addr: number, size: AccessSize): Promise<number> {
    return this.access('memory', 'memRead', addr, size);
  }
  async memWrite(addr: number, size: AccessSize, value: number): Promise<void> {
    await this.access('memory', 'memWrite', addr, size, value);
  }
  ioRead(port: number, size: AccessSize): Promise<number> {
    return this.access('io', 'ioRead', port, size);
  }
  async ioWrite(port: number, size: AccessSize, value: number): Promise<void> {
    await this.access('io', 'ioWrite', port, size, value);
  }

  onInterrupt(fn: Bdf, listener: (event: InterruptEvent) => void): () => void {
    return this.listeners.add(fn, listener);
  }
  /** Whether msiMessage gives messages (as a bus with an MSI address window would); off by default. */
  deliverMsi = false;

  msiMessage(_fn: Bdf, vector: number): { address: number; data: number } | undefined {
    return this.deliverMsi ? { address: 0xfee0_0000, data: vector } : undefined;
  }
  async close(): Promise<void> {}
}
