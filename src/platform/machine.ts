/**
 * The in-process machine: guest RAM, one PCI bus hosting any number of functions, MMIO and port
 * I/O routed by each function's decoded BARs, INTx and MSI delivery, and the {@link PciBus} the
 * driver half uses. Where the two halves of virtio-ts meet without an emulator.
 *
 *   const m = new Machine({ ramSize: 64 << 20 });
 *   const { bdf } = m.plugVirtio(new SomeDevice());    // or m.plug((host) => new MyFunction(host))
 *   const ids = await m.bus.configRead(bdf, 0, 4);     // the driver half sees only m.bus
 *
 * Behaviour like hardware: reads of unmapped addresses, ports and empty slots return all-ones and
 * writes to them are dropped. Interrupt events reach listeners asynchronously (a microtask later),
 * so a device never re-enters the driver from inside a register access.
 */

import type { VirtioDevice } from '../core/virtio-device.js';
import { bdf as makeBdf, formatBdf, type Bdf, type BusResources, type InterruptEvent, type PciBus } from '../bus/pci-bus.js';
import { UsageError } from '../errors.js';
import {
  ArrayGuestMemory,
  RegionGuestMemory,
  largestRange,
  rangeInside,
  type AddressRange,
  type GuestMemory,
} from '../memory/guest-memory.js';
import type { DeviceHost, PciFunction } from '../pci/function.js';
import type { AccessSize } from '../memory/access-size.js';
import { PCI_DEVICES_PER_BUS } from '../spec/pci-enumeration.js';
import { VirtioPciFunction, type VirtioPciFunctionOptions } from '../transport/pci/virtio-pci-function.js';
import { RamDma } from '../bus/ram-dma.js';

/** Where RAM above 4 GiB starts. */
export const HIGH_RAM_BASE = 0x1_0000_0000;
/** BAR windows handed to the driver: 32-bit memory below 4 GiB, 64-bit memory far above RAM, ports. */
export const MACHINE_MEM32_WINDOW = { base: 0xe000_0000, size: 0x1000_0000 } as const;
export const MACHINE_MEM64_WINDOW = { base: 0x100_0000_0000, size: 0x10_0000_0000 } as const;
export const MACHINE_IO_WINDOW = { base: 0xc000, size: 0x4000 } as const;
/** x86's MSI address window: a write here is an interrupt message, not a memory write. */
export const MSI_ADDRESS_BASE = 0xfee0_0000;
export const MSI_ADDRESS_SIZE = 0x10_0000;
/** MSI data = bdf << MSI_VECTOR_BITS | vector (MSI-X tables have at most 2048 entries). */
const MSI_VECTOR_BITS = 11;
/** The first page of DMA RAM is kept back so that no buffer sits at bus address 0. */
const DMA_GUARD = 0x1000;

export interface MachineOptions {
  /** RAM from address 0, in bytes (default 64 MiB, or the length of `ram`; at most up to the 32-bit BAR window). */
  readonly ramSize?: number;
  /**
   * The bytes of RAM from address 0, used as they are (neither copied nor zeroed): a buffer another
   * thread shares, or one reused across machines, which spares allocating and zeroing a new one per
   * machine. Its length is the RAM size; a `ramSize` given beside it must equal it.
   */
  readonly ram?: Uint8Array;
  /** RAM from 4 GiB ({@link HIGH_RAM_BASE}), in bytes (default 0: none). */
  readonly highRamSize?: number;
  /** The RAM the driver's DMA memory comes from (default 'low'; 'high' puts every ring and buffer above 4 GiB). */
  readonly dmaRegion?: 'low' | 'high';
  /**
   * The RAM ranges of the platform's memory map, as its firmware would state them (default: all of
   * low and high RAM). Each lies inside low or high RAM. Addresses between them are holes: a device
   * buffer touching one is a guest fault, the bus reads them as all-ones, and the driver's DMA
   * memory is the largest range of its region.
   */
  readonly ramMap?: readonly AddressRange[];
}

/** A function on the machine's bus and where it sits. */
export interface Plugged<F extends PciFunction> {
  readonly bdf: Bdf;
  readonly fn: F;
}

/** A slot's interrupt state: its INTx level and who listens. */
interface SlotLines {
  intx: boolean;
  readonly listeners: Set<(event: InterruptEvent) => void>;
}

interface Slot {
  readonly fn: PciFunction;
  readonly lines: SlotLines;
}

/** A decoded BAR range, for routing. */
interface Window {
  readonly base: number;
  readonly size: number;
  readonly slot: Slot;
  readonly bar: number;
}

const ALL_ONES: Record<AccessSize, number> = { 1: 0xff, 2: 0xffff, 4: 0xffff_ffff };

export class Machine {
  readonly memory: GuestMemory;
  readonly bus: PciBus;
  private readonly slots = new Map<Bdf, Slot>();
  /** Routing tables, rebuilt after config writes (the only way BARs and decoding change). */
  private memWindows: Window[] | undefined;
  private ioWindows: Window[] | undefined;

  constructor(options: MachineOptions = {}) {
    const ramSize = options.ramSize ?? options.ram?.byteLength ?? 64 << 20;
    if (options.ram !== undefined && options.ram.byteLength !== ramSize)
      throw new UsageError(`RAM of ${options.ram.byteLength} bytes given with ramSize ${ramSize}`);
    const highRamSize = options.highRamSize ?? 0;
    if (!Number.isSafeInteger(ramSize) || ramSize < 2 * DMA_GUARD || ramSize > MACHINE_MEM32_WINDOW.base)
      throw new UsageError(`RAM size ${ramSize} must be between ${2 * DMA_GUARD} and 0x${MACHINE_MEM32_WINDOW.base.toString(16)}`);
    if (!Number.isSafeInteger(highRamSize) || highRamSize < 0 || HIGH_RAM_BASE + highRamSize > MACHINE_MEM64_WINDOW.base)
      throw new UsageError(`high RAM size ${highRamSize} does not fit below the 64-bit BAR window`);
    const lowRam = options.ramMap?.filter((r) => r.base < HIGH_RAM_BASE) ?? [{ base: 0, size: ramSize }];
    const highRam = options.ramMap?.filter((r) => r.base >= HIGH_RAM_BASE) ?? [{ base: HIGH_RAM_BASE, size: highRamSize }];
    if (highRamSize === 0 && options.ramMap !== undefined && highRam.length > 0)
      throw new UsageError('RAM ranges above 4 GiB need highRamSize');
    const low = new ArrayGuestMemory(options.ram ?? ramSize, 0, lowRam);
    const high = highRamSize > 0 ? new ArrayGuestMemory(highRamSize, HIGH_RAM_BASE, highRam) : undefined;
    this.memory = high === undefined ? low : new RegionGuestMemory([low, high]);
    if (options.dmaRegion === 'high' && high === undefined) throw new UsageError('dmaRegion "high" needs highRamSize');
    const window = largestRange(options.dmaRegion === 'high' ? highRam : lowRam);
    const dmaBase = Math.max(window.base, DMA_GUARD);
    if (window.base + window.size - dmaBase <= 0) throw new UsageError('no RAM above the guard page for DMA memory');
    this.bus = new MachineBus(this, new RamDma(this.memory, dmaBase, window.base + window.size - dmaBase));
  }

  /**
   * Put the function `factory` builds at `at` (default: function 0 of the lowest free device
   * number on bus 0). The factory receives the {@link DeviceHost} for that slot.
   */
  plug<F extends PciFunction>(factory: (host: DeviceHost) => F, at?: Bdf): Plugged<F> {
    const addr = at ?? this.freeSlot();
    if (!Number.isInteger(addr) || addr < 0 || addr > 0xffff) throw new UsageError(`bus/device/function ${addr} out of range`);
    if (this.slots.has(addr)) throw new UsageError(`slot ${formatBdf(addr)} is taken`);
    const lines: SlotLines = { intx: false, listeners: new Set() };
    const host: DeviceHost = {
      memory: this.memory,
      sendMsi: (address, data) => this.deliverMsi(address, data),
      setIntx: (level) => {
        if (lines.intx === level) return;
        lines.intx = level;
        this.emit(addr, { kind: 'intx', asserted: level });
      },
    };
    const fn = factory(host);
    this.slots.set(addr, { fn, lines });
    this.invalidateRouting();
    return { bdf: addr, fn };
  }

  /** Plug a virtio device as a virtio-pci function ({@link VirtioPciFunction}): modern-only by default, or `mode` transitional / legacy; `msixVectors` adds MSI-X. */
  plugVirtio(device: VirtioDevice, options: VirtioPciFunctionOptions & { readonly at?: Bdf } = {}): Plugged<VirtioPciFunction> {
    return this.plug((host) => new VirtioPciFunction(device, host, options), options.at);
  }

  /** The function at `addr`, if any. */
  functionAt(addr: Bdf): PciFunction | undefined {
    return this.slots.get(addr)?.fn;
  }

  /** Current level of the INTx line of the function at `addr`. */
  intxLevel(addr: Bdf): boolean {
    return this.slots.get(addr)?.lines.intx ?? false;
  }

  /** The MSI message that reaches the listeners of (`addr`, `vector`). */
  msiMessage(addr: Bdf, vector: number): { address: number; data: number } | undefined {
    if (!Number.isInteger(vector) || vector < 0 || vector >= 1 << MSI_VECTOR_BITS) return undefined;
    return { address: MSI_ADDRESS_BASE, data: (addr << MSI_VECTOR_BITS) | vector };
  }

  /**
   * Forget routing after a config write (BARs or the command register may have changed). The bus
   * does this itself; call it after configuring a function directly rather than through `bus`.
   */
  invalidateRouting(): void {
    this.memWindows = undefined;
    this.ioWindows = undefined;
  }

  /** Listen for interrupts of the function at `addr`. */
  listen(addr: Bdf, listener: (event: InterruptEvent) => void): () => void {
    const slot = this.slots.get(addr);
    if (slot === undefined) throw new UsageError(`no function at ${formatBdf(addr)}`);
    slot.lines.listeners.add(listener);
    return () => slot.lines.listeners.delete(listener);
  }

  /** Drop every listener (the bus was closed). */
  unlistenAll(): void {
    for (const slot of this.slots.values()) slot.lines.listeners.clear();
  }

  /** The window holding [addr, addr + size) in memory or I/O space, if a BAR decodes it. @internal (the machine's bus routing) */
  route(space: 'memory' | 'io', addr: number, size: number): Window | undefined {
    if (this.memWindows === undefined || this.ioWindows === undefined) this.buildRouting();
    const windows = space === 'memory' ? this.memWindows! : this.ioWindows!;
    for (const w of windows) if (rangeInside(addr, size, w.base, w.size)) return w;
    return undefined;
  }

  private buildRouting(): void {
    this.memWindows = [];
    this.ioWindows = [];
    for (const slot of this.slots.values()) {
      for (const bar of slot.fn.decodedBars()) {
        const w: Window = { base: bar.base, size: bar.size, slot, bar: bar.index };
        (bar.kind === 'io' ? this.ioWindows : this.memWindows).push(w);
      }
    }
  }

  private freeSlot(): Bdf {
    for (let device = 0; device < PCI_DEVICES_PER_BUS; device++) {
      const addr = makeBdf(0, device, 0);
      if (!this.slots.has(addr)) return addr;
    }
    throw new UsageError('bus 0 is full');
  }

  /** An MSI is a 32-bit memory write: in the MSI window it is an interrupt, elsewhere plain DMA. */
  private deliverMsi(address: number, data: number): void {
    if (address >= MSI_ADDRESS_BASE && address < MSI_ADDRESS_BASE + MSI_ADDRESS_SIZE) {
      this.emit(data >>> MSI_VECTOR_BITS, { kind: 'msi', address, data });
    } else if (this.memory.contains(address, 4)) {
      this.memory.write32(address, data);
    }
  }

  private emit(addr: Bdf, event: InterruptEvent): void {
    const slot = this.slots.get(addr);
    if (slot === undefined || slot.lines.listeners.size === 0) return;
    // A promise reaction: cheaper than queueMicrotask, which wraps each callback in an async resource.
    void Promise.resolve().then(() => {
      for (const listener of slot.lines.listeners) listener(event);
    });
  }
}

/** The driver half's view of a {@link Machine}. Every access completes at once. */
class MachineBus implements PciBus {
  readonly name = 'in-process';
  readonly resources: BusResources = { mem32: MACHINE_MEM32_WINDOW, mem64: MACHINE_MEM64_WINDOW, io: MACHINE_IO_WINDOW };

  constructor(
    private readonly machine: Machine,
    readonly dma: RamDma,
  ) {}

  async configRead(addr: Bdf, offset: number, size: AccessSize): Promise<number> {
    const fn = this.machine.functionAt(addr);
    return fn === undefined ? ALL_ONES[size] : fn.configRead(offset, size);
  }

  async configWrite(addr: Bdf, offset: number, size: AccessSize, value: number): Promise<void> {
    const fn = this.machine.functionAt(addr);
    if (fn === undefined) return;
    fn.configWrite(offset, size, value);
    this.machine.invalidateRouting();
  }

  async memRead(addr: number, size: AccessSize): Promise<number> {
    const w = this.machine.route('memory', addr, size);
    if (w !== undefined) return w.slot.fn.barRead(w.bar, addr - w.base, size);
    const mem = this.machine.memory;
    if (!mem.contains(addr, size)) return ALL_ONES[size];
    return size === 1 ? mem.read8(addr) : size === 2 ? mem.read16(addr) : mem.read32(addr);
  }

  async memWrite(addr: number, size: AccessSize, value: number): Promise<void> {
    const w = this.machine.route('memory', addr, size);
    if (w !== undefined) {
      w.slot.fn.barWrite(w.bar, addr - w.base, size, value);
      return;
    }
    const mem = this.machine.memory;
    if (!mem.contains(addr, size)) return;
    if (size === 1) mem.write8(addr, value & 0xff);
    else if (size === 2) mem.write16(addr, value & 0xffff);
    else mem.write32(addr, value);
  }

  async ioRead(port: number, size: AccessSize): Promise<number> {
    const w = this.machine.route('io', port, size);
    return w === undefined ? ALL_ONES[size] : w.slot.fn.barRead(w.bar, port - w.base, size);
  }

  async ioWrite(port: number, size: AccessSize, value: number): Promise<void> {
    const w = this.machine.route('io', port, size);
    w?.slot.fn.barWrite(w.bar, port - w.base, size, value);
  }

  onInterrupt(addr: Bdf, listener: (event: InterruptEvent) => void): () => void {
    return this.machine.listen(addr, listener);
  }

  msiMessage(addr: Bdf, vector: number): { address: number; data: number } | undefined {
    return this.machine.msiMessage(addr, vector);
  }

  async close(): Promise<void> {
    this.machine.unlistenAll();
  }
}
