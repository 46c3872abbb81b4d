/**
 * Places virtio-ts PCI functions on the PCI bus of a v86 emulator (npm v86, pinned): the device half's
 * face to an emulator author who uses v86. For each function it
 * - serves config space live: v86 answers config cycles from a copy taken at registration, so the
 *   adapter takes over the data ports 0xCFC-0xCFF and sends cycles addressed to its functions to
 *   configWrite/configRead (everything else goes on to v86);
 * - routes BARs the guest programs (I/O ports and memory in 128 KiB blocks), following every move,
 *   and refuses ranges another v86 device owns;
 * - drives INTx through v86's PIRQ routing, sharing a line between functions by counting;
 * - gives zero-copy guest memory (V86GuestMemory) limited to the RAM of the guest's memory map, so
 *   that a buffer in a firmware area or past RAM's end is a guest fault, not a write into v86's array
 *   (the firmware's own zones stay reachable while it drives a device: see memory-map.ts).
 * v86 has no MSI delivery for outside devices: boot Linux with `pci=nomsi` (sendMsi is dropped and
 * counted in {@link V86PciAdapter.droppedMsi}).
 * v86 is a 32-bit machine: a PAE guest may place a 64-bit BAR above 4 GiB, where v86 truncates its
 * accesses to 32 bits (the BAR at 0x1_0000_0000 reads and writes RAM at 0). A BAR the adapter cannot
 * route is reported as a {@link BarRefusedError} to {@link V86PciAdapter.onBarRefused} listeners and
 * as a warning; {@link V86PciAdapter.plugVirtio} declares the virtio BAR 32-bit so that it cannot
 * happen.
 * v86's saved states carry the virtio functions' snapshots (device-state.ts).
 * Every v86 internal used is in internals.ts.
 */

import type { V86 } from 'v86';
import type { VirtioDevice } from '../../core/virtio-device.js';
import { BarRefusedError, UsageError, type BarRefusedCode } from '../../errors.js';
import type { DecodedBar, DeviceHost, PciFunction } from '../../pci/function.js';
import type { AccessSize } from '../../memory/access-size.js';
import { PCI_CONFIG_DATA_PORT, PCI_CONFIG_SPACE_SIZE, PCI_INTERRUPT_PIN } from '../../spec/pci.js';
import { VirtioPciFunction, type VirtioPciFunctionOptions } from '../../transport/pci/virtio-pci-function.js';
import { V86GuestMemory, reserveWasmHeap } from './guest-memory.js';
import { V86_LOOP_COUNTER, v86Internals, type MmioRead, type V86Cpu } from './internals.js';
import { seabiosMemoryMap, type V86MemoryMap } from './memory-map.js';
import { MmioWordReads } from './mmio-word-reads.js';
import { joinV86States } from './device-state.js';

/** v86 maps MMIO in blocks of this size (src/io.js mmap_register). */
const MMIO_BLOCK_SHIFT = 17;
const MMIO_BLOCK_SIZE = 1 << MMIO_BLOCK_SHIFT;
const BLOCK_COUNT = 2 ** 32 / MMIO_BLOCK_SIZE;
const PORT_COUNT = 0x10000;
/** Bit 31 of the config address register enables a config cycle (PCI configuration mechanism #1). */
const CONFIG_ENABLE = 0x8000_0000;
/** EFLAGS.IF: the CPU takes maskable interrupts. */
const EFLAGS_IF = 0x200;
/** PIIX3 PIRQ route control registers in the ISA bridge's config space (what v86's raise_irq reads). */
const PIIX_PIRQ_ROUTE = 0x60;

/** One config-space write, as replayed into a fresh function before restoring a saved state. */
export type ConfigWrite = readonly [offset: number, size: AccessSize, value: number];

/** A function placed on the bus. */
export interface PluggedFunction {
  readonly name: string;
  /** devfn on bus 0 (slot << 3 | function). */
  readonly devfn: number;
  readonly fn: PciFunction;
  readonly memory: V86GuestMemory;
  /**
   * The config writes the guest made, in order (what a saved state needs to rebuild the function),
   * up to {@link MAX_RECORDED_CONFIG_WRITES}.
   */
  readonly configWrites: readonly ConfigWrite[];
  /** The guest made more config writes than were recorded: no saved state can be rebuilt from them. */
  readonly configWritesTruncated: boolean;
}

interface Plugged extends PluggedFunction {
  configWrites: ConfigWrite[];
  configWritesTruncated: boolean;
  intx: boolean;
  intxLine: number;
}

interface Route {
  readonly dev: Plugged;
  readonly bar: DecodedBar;
}

const ONES: Record<AccessSize, number> = { 1: 0xff, 2: 0xffff, 4: 0xffff_ffff };

/**
 * Config writes recorded per function. A boot to /init makes a few hundred; a guest making more is
 * not booting, and recording them all would let it grow the host's memory without bound.
 */
export const MAX_RECORDED_CONFIG_WRITES = 4096;
/** Refused BARs kept (and warned about) per function: the guest chooses the addresses, so every one could be new. */
export const MAX_REFUSED_BARS = 64;

export interface V86PciAdapterOptions {
  /**
   * Where the adapter's warnings go (a BAR it cannot route), one message each (default
   * console.warn: v86 keeps no log of its own outside its debug build).
   */
  readonly warn?: (message: string) => void;
  /**
   * The RAM of the guest's firmware memory map, the only memory devices may reach. Default: the map
   * SeaBIOS states for v86's memory size ({@link seabiosMemoryMap}).
   */
  readonly memoryMap?: V86MemoryMap;
}

/** A free slot for our functions: v86's own devices use slots 0, 1, 5-7, 10-12, 18 and 30. */
export const FIRST_FREE_DEVFN = 13 << 3;

export class V86PciAdapter {
  private readonly cpu: V86Cpu;
  /** What every function's guest memory is limited to. */
  readonly memoryMap: V86MemoryMap;
  private readonly byDevfn = new Map<number, Plugged>();
  private routes: Route[] = [];
  private readonly ownedPorts = new Uint8Array(PORT_COUNT);
  private readonly ownedBlocks = new Uint8Array(BLOCK_COUNT);
  /** Asserted INTx count per interrupt line, so functions sharing a line don't lower it for each other. */
  private readonly lineCount = new Map<number, number>();
  /** Level last driven on each line, and a devfn v86 routes to it (raise_irq/lower_irq take a devfn). */
  private readonly lineDriven = new Map<number, boolean>();
  private readonly lineDevfn = new Map<number, number>();
  /** Depth of guest accesses being served (config, port, MMIO): inside one, the CPU is mid-instruction. */
  private accessDepth = 0;
  /** The instruction counter is ahead by V86_LOOP_COUNTER to end the CPU's run (see deliverAtBoundary). */
  private runCut = false;
  private deliveryQueued = false;
  private readonly unmappedRead8: MmioRead | undefined;
  /** Each BAR placement the adapter could not route, in the order the guest made them: each function's first {@link MAX_REFUSED_BARS}. */
  readonly refusedBars: BarRefusedError[] = [];
  private readonly barRefusedListeners = new Set<(error: BarRefusedError) => void>();
  /** The last refusal per function and BAR, and the refusals kept per function (bounded by their number). */
  private readonly lastRefusal = new Map<string, string>();
  private readonly refusalsKept = new Map<string, number>();
  private readonly warn: (message: string) => void;
  /** Which MMIO byte reads are halves of the guest's 16-bit reads. */
  private readonly wordReads: MmioWordReads;
  /** The high byte of a guest's 16-bit MMIO read, for its second half (see mmioRead8). */
  private pendingHighByte: [addr: number, byte: number] | undefined;
  /** MSI messages the function sent, which v86 cannot deliver. */
  droppedMsi = 0;

  /** @param emulator a v86 emulator after its "emulator-loaded" event, before its first run */
  constructor(emulator: V86, options: V86PciAdapterOptions = {}) {
    this.warn = options.warn ?? ((message) => console.warn(message));
    this.cpu = v86Internals(emulator);
    this.memoryMap = options.memoryMap ?? seabiosMemoryMap(this.cpu.memory_size[0]! >>> 0);
    reserveWasmHeap(this.cpu);
    this.wordReads = new MmioWordReads(this.cpu);
    this.unmappedRead8 = this.findUnmappedHandler();
    this.takeConfigPorts();
    this.takeMmioWrite16();
    this.takeRunEnd();
    // v86's save_state/restore_state carry our virtio functions too (device-state.ts).
    joinV86States(
      this.cpu,
      () => this.functions,
      () => {
        this.reroute();
        this.syncIntxAfterRestore();
      },
    );
  }

  /** Functions plugged so far, in devfn order. */
  get functions(): PluggedFunction[] {
    return [...this.byDevfn.values()].sort((a, b) => a.devfn - b.devfn);
  }

  /**
   * Puts the function `create` builds on bus 0 at `devfn`. `create` receives the DeviceHost (guest
   * memory, INTx) the function talks to. Call before the emulator first runs (or restores a state).
   */
  plug<F extends PciFunction>(devfn: number, name: string, create: (host: DeviceHost) => F): F {
    if (!Number.isInteger(devfn) || devfn < 8 || devfn > 0xff) throw new UsageError(`devfn ${devfn} is not a free bus-0 devfn`);
    if (this.byDevfn.has(devfn)) throw new UsageError(`devfn 0x${devfn.toString(16)} is taken`);
    const memory = new V86GuestMemory(this.cpu, this.memoryMap);
    let dev: Plugged | undefined;
    const host: DeviceHost = {
      memory,
      sendMsi: () => {
        this.droppedMsi++;
      },
      setIntx: (level) => {
        if (dev !== undefined) this.setIntx(dev, level);
      },
    };
    const fn = create(host);
    dev = { name, devfn, fn, memory, configWrites: [], configWritesTruncated: false, intx: false, intxLine: -1 };
    const space = configSnapshot(fn);
    // v86 keeps this copy for its own use: raise_irq reads the interrupt pin from it, and saved
    // states carry it. pci_bars stays empty so v86 never moves ports behind our back.
    this.cpu.devices.pci.register_device({ name, pci_id: devfn, pci_space: space, pci_bars: [] });
    this.byDevfn.set(devfn, dev);
    this.reroute();
    return fn;
  }

  /**
   * Puts `device` on bus 0 at `devfn` as a {@link VirtioPciFunction}. Unlike that class's default
   * (QEMU's 64-bit BAR4), the modern BAR is 32-bit unless `options.modernBar64` says otherwise: v86
   * cannot reach above 4 GiB, where a PAE guest may place a 64-bit BAR. The shared memory BAR (BAR2,
   * when the device declares regions) is 32-bit too unless `options.sharedMemoryBar64`, so its regions
   * must fit 2 GiB together (and the guest's PCI hole).
   */
  plugVirtio(devfn: number, name: string, device: VirtioDevice, options: VirtioPciFunctionOptions = {}): VirtioPciFunction {
    return this.plug(
      devfn,
      name,
      (host) =>
        new VirtioPciFunction(device, host, {
          ...options,
          modernBar64: options.modernBar64 ?? false,
          sharedMemoryBar64: options.sharedMemoryBar64 ?? false,
        }),
    );
  }

  /**
   * Call `listener` with each BAR placement the adapter cannot route (see {@link BarRefusedError});
   * returns a function that removes it. Listeners run inside the guest's config write: keep them short.
   */
  onBarRefused(listener: (error: BarRefusedError) => void): () => void {
    this.barRefusedListeners.add(listener);
    return () => this.barRefusedListeners.delete(listener);
  }

  /** Apply config writes recorded in an earlier run (before restoring that run's saved state). */
  replayConfigWrites(devfn: number, writes: readonly ConfigWrite[]): void {
    const dev = this.byDevfn.get(devfn);
    if (dev === undefined) throw new UsageError(`no function at devfn 0x${devfn.toString(16)}`);
    for (const [offset, size, value] of writes) this.configWrite(dev, offset, size, value);
  }

  // ---- config space -------------------------------------------------------------------------

  /** The function a config cycle through port 0xCFC + lane targets, with the register offset. */
  private configTarget(lane: number, size: AccessSize): [Plugged, number] | undefined {
    const addr = this.cpu.devices.pci.pci_addr32[0]! >>> 0;
    if ((addr & CONFIG_ENABLE) === 0 || ((addr >>> 16) & 0xff) !== 0) return undefined;
    const dev = this.byDevfn.get((addr >>> 8) & 0xff);
    if (dev === undefined || lane + size > 4) return undefined;
    return [dev, (addr & 0xfc) + lane];
  }

  /**
   * Wraps v86's handlers of ports 0xCFC-0xCFF: cycles for our functions go to them, the rest to v86.
   * Relies on: io.ports entries and pci.pci_addr32 (the address latched from port 0xCF8).
   */
  private takeConfigPorts(): void {
    const io = this.cpu.io;
    for (let lane = 0; lane < 4; lane++) {
      const port = PCI_CONFIG_DATA_PORT + lane;
      const v86 = { ...io.ports[port]! };
      const read = (size: AccessSize, v86Read: (port: number) => number) => (p: number) => {
        const t = this.configTarget(lane, size);
        if (t === undefined) return v86Read.call(v86.device, p);
        this.accessDepth++;
        try {
          const value = t[0].fn.configRead(t[1], size);
          return size === 4 ? value | 0 : value;
        } finally {
          this.accessDepth--;
        }
      };
      const write = (size: AccessSize, v86Write: (value: number) => void) => (value: number) => {
        const t = this.configTarget(lane, size);
        if (t === undefined) v86Write.call(v86.device, value);
        else this.configWrite(t[0], t[1], size, value >>> 0);
      };
      io.register_read(port, this, read(1, v86.read8), read(2, v86.read16), read(4, v86.read32));
      io.register_write(port, this, write(1, v86.write8), write(2, v86.write16), write(4, v86.write32));
    }
  }

  private configWrite(dev: Plugged, offset: number, size: AccessSize, value: number): void {
    if (dev.configWrites.length < MAX_RECORDED_CONFIG_WRITES) dev.configWrites.push([offset, size, value]);
    else dev.configWritesTruncated = true;
    this.accessDepth++;
    try {
      dev.fn.configWrite(offset, size, value);
    } finally {
      this.accessDepth--;
    }
    this.reroute();
  }

  // ---- BAR routing --------------------------------------------------------------------------

  /** Recompute where every function's BARs decode, and claim ports/blocks newly covered. */
  private reroute(): void {
    const routes: Route[] = [];
    for (const dev of this.byDevfn.values()) {
      for (const bar of dev.fn.decodedBars()) {
        if (bar.size <= 0) continue;
        if (bar.kind === 'io' ? this.claimPorts(dev, bar) : this.claimBlocks(dev, bar)) routes.push({ dev, bar });
      }
    }
    this.routes = routes;
  }

  /**
   * Report a BAR placement that cannot be routed: every listener hears of each new one; a function's
   * first {@link MAX_REFUSED_BARS} are kept and warned about (the guest
   * chooses the addresses, so an unbounded list or log would be its to grow).
   */
  private refuse(dev: Plugged, bar: DecodedBar, code: BarRefusedCode, why: string): false {
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
  private claimPorts(dev: Plugged, bar: DecodedBar): boolean {
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
  private claimBlocks(dev: Plugged, bar: DecodedBar): boolean {
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
    this.accessDepth++;
    try {
      return dev.fn.barRead(bar.index, off, size);
    } finally {
      this.accessDepth--;
    }
  }

  private barWrite(kind: 'io' | 'memory', addr: number, size: AccessSize, value: number): void {
    this.pendingHighByte = undefined;
    const hit = this.route(kind, addr, size);
    if (hit === undefined) return;
    const [{ dev, bar }, off] = hit;
    this.accessDepth++;
    try {
      dev.fn.barWrite(bar.index, off, size, value);
    } finally {
      this.accessDepth--;
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

  // ---- INTx ---------------------------------------------------------------------------------

  /**
   * The interrupt line v86's raise_irq uses for a devfn: PIRQ register (pin - 1 + slot - 1) & 3 of
   * the ISA bridge (relies on pci.isa_bridge_space8 and the pin in v86's config copy).
   */
  private intxLineOf(dev: Plugged): number | undefined {
    const pin = dev.fn.configRead(PCI_INTERRUPT_PIN, 1);
    if (pin < 1 || pin > 4) return undefined;
    return this.cpu.devices.pci.isa_bridge_space8[PIIX_PIRQ_ROUTE + ((pin - 1 + (dev.devfn >> 3) - 1) & 3)]!;
  }

  /**
   * Make the interrupt lines agree with our functions after v86 restored a saved state: the state's
   * interrupt controller may hold a level that functions of the saving run asserted (SeaBIOS leaves
   * the virtio-blk it booted from with an interrupt pending), which fresh functions never lower, and
   * a level-triggered line stuck high is an interrupt storm once the guest unmasks it.
   */
  syncIntxAfterRestore(): void {
    for (const dev of this.byDevfn.values()) {
      const line = this.intxLineOf(dev);
      if (line === undefined || (this.lineCount.get(line) ?? 0) > 0) continue;
      this.cpu.devices.pci.lower_irq(dev.devfn);
      this.lineDriven.set(line, false);
    }
  }

  private setIntx(dev: Plugged, level: boolean): void {
    if (dev.intx === level) return;
    dev.intx = level;
    if (level) {
      dev.memory.flushDirty();
      const line = this.intxLineOf(dev);
      if (line === undefined) return; // the function has no INTx pin
      dev.intxLine = line;
      this.lineDevfn.set(line, dev.devfn);
      this.lineCount.set(line, (this.lineCount.get(line) ?? 0) + 1);
    } else if (dev.intxLine >= 0) {
      this.lineCount.set(dev.intxLine, (this.lineCount.get(dev.intxLine) ?? 1) - 1);
      dev.intxLine = -1;
    }
    this.driveLines();
  }

  /**
   * Drive each line to "some function asserts it", at once: the interrupt controller sees the level
   * when the function changes it. v86's raise_irq/lower_irq also deliver a pending interrupt on the
   * spot if the CPU takes interrupts, even mid-instruction; so while a guest access is being served
   * with IF set, IF reads clear for the duration of the call (nothing is delivered) and the interrupt
   * waits, pending, for v86's next check between instructions, which deliverAtBoundary brings forward.
   * With IF clear (the usual case: an ISR read in the guest's interrupt handler) nothing can be
   * delivered anyway.
   */
  private driveLines(): void {
    const flags = this.cpu.flags;
    const hold = this.accessDepth > 0 && (flags[0]! & EFLAGS_IF) !== 0;
    const pci = this.cpu.devices.pci;
    let changed = false;
    if (hold) flags[0] = flags[0]! & ~EFLAGS_IF;
    try {
      for (const [line, count] of this.lineCount) {
        const level = count > 0;
        if ((this.lineDriven.get(line) ?? false) === level) continue;
        this.lineDriven.set(line, level);
        changed = true;
        const devfn = this.lineDevfn.get(line)!;
        if (level) pci.raise_irq(devfn);
        else pci.lower_irq(devfn);
      }
    } finally {
      if (hold) flags[0] = flags[0]! | EFLAGS_IF;
    }
    if (hold && changed) this.deliverAtBoundary();
  }

  /**
   * Have v86 take a pending interrupt at its next return to the CPU loop (when compiled code or the
   * interpreter leaves the block it runs), as it takes its timers' interrupts, rather than when its
   * time slice ends: the instruction counter jumps ahead by a whole run, so do_many_cycles_native
   * stops there and main_loop calls handle_irqs; the run's end (takeRunEnd) takes the jump back. (v86
   * also counts the jump as heat for the block the access came from, which makes v86 compile a hot
   * block sooner, nothing else.) When the access was not made by the running CPU (a host-side
   * access, a halted guest), a microtask delivers once the caller's code is done, between
   * instructions.
   */
  private deliverAtBoundary(): void {
    if (!this.runCut) {
      this.runCut = true;
      this.cpu.instruction_counter[0] = (this.cpu.instruction_counter[0]! + V86_LOOP_COUNTER) >>> 0;
    }
    if (this.deliveryQueued) return;
    this.deliveryQueued = true;
    queueMicrotask(() => {
      this.deliveryQueued = false;
      this.cpu.handle_irqs();
    });
  }

  /** Wraps run_hardware_timers, which main_loop calls when a CPU run ends, to undo deliverAtBoundary's jump. */
  private takeRunEnd(): void {
    const cpu = this.cpu;
    const v86Timers = cpu.run_hardware_timers;
    cpu.run_hardware_timers = (acpiEnabled: boolean, now: number) => {
      if (this.runCut) {
        this.runCut = false;
        cpu.instruction_counter[0] = (cpu.instruction_counter[0]! - V86_LOOP_COUNTER) >>> 0;
      }
      return v86Timers.call(cpu, acpiEnabled, now);
    };
  }
}

/** The function's 256 config bytes as the guest would read them now. */
export function configSnapshot(fn: PciFunction): number[] {
  const bytes: number[] = [];
  for (let off = 0; off < PCI_CONFIG_SPACE_SIZE; off++) bytes.push(fn.configRead(off, 1));
  return bytes;
}
