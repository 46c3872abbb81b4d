/**
 * Places virtio-ts PCI functions on the PCI bus of a v86 emulator (npm v86, pinned): the device half's
 * face to an emulator author who uses v86. For each function it
 * - serves config space live: v86 answers config cycles from a copy taken at registration, so the
 *   adapter takes over the data ports 0xCFC-0xCFF and sends cycles addressed to its functions to
 *   configWrite/configRead (everything else goes on to v86);
 * - routes BARs the guest programs (I/O ports and memory in 128 KiB blocks), following every move,
 *   and refuses ranges another v86 device owns (bar-routing.ts);
 * - drives INTx through v86's PIRQ routing, sharing a line between functions by counting
 *   (intx-lines.ts);
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
import { UsageError, type BarRefusedError } from '../../errors.js';
import type { DeviceHost, PciFunction } from '../../pci/function.js';
import type { AccessSize } from '../../memory/access-size.js';
import { PCI_CONFIG_DATA_PORT, PCI_CONFIG_SPACE_SIZE } from '../../spec/pci.js';
import { VirtioPciFunction, type VirtioPciFunctionOptions } from '../../transport/pci/virtio-pci-function.js';
import { BarRouter } from './bar-routing.js';
import { GuestAccess } from './guest-access.js';
import { V86GuestMemory, reserveWasmHeap } from './guest-memory.js';
import { v86Internals, type V86Cpu } from './internals.js';
import { IntxLines, type IntxSource } from './intx-lines.js';
import { seabiosMemoryMap, type V86MemoryMap } from './memory-map.js';
import { joinV86States } from './device-state.js';

/** Bit 31 of the config address register enables a config cycle (PCI configuration mechanism #1). */
const CONFIG_ENABLE = 0x8000_0000;

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

interface Plugged extends PluggedFunction, IntxSource {
  configWrites: ConfigWrite[];
  configWritesTruncated: boolean;
}

/**
 * Config writes recorded per function. A boot to /init makes a few hundred; a guest making more is
 * not booting, and recording them all would let it grow the host's memory without bound.
 */
export const MAX_RECORDED_CONFIG_WRITES = 4096;

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
  /** Guest accesses being served (config, port, MMIO): inside one, the CPU is mid-instruction. */
  private readonly access = new GuestAccess();
  private readonly bars: BarRouter;
  private readonly intx: IntxLines;
  /** Each BAR placement the adapter could not route, in the order the guest made them: each function's first {@link MAX_REFUSED_BARS}. */
  readonly refusedBars: BarRefusedError[];
  /** MSI messages the function sent, which v86 cannot deliver. */
  droppedMsi = 0;

  /** @param emulator a v86 emulator after its "emulator-loaded" event, before its first run */
  constructor(emulator: V86, options: V86PciAdapterOptions = {}) {
    this.cpu = v86Internals(emulator);
    this.memoryMap = options.memoryMap ?? seabiosMemoryMap(this.cpu.memory_size[0]! >>> 0);
    reserveWasmHeap(this.cpu);
    this.bars = new BarRouter(this.cpu, this.access, options.warn ?? ((message) => console.warn(message)));
    this.refusedBars = this.bars.refusedBars;
    this.takeConfigPorts();
    this.intx = new IntxLines(this.cpu, this.access);
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
        if (dev !== undefined) this.intx.set(dev, level);
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
    return this.bars.onBarRefused(listener);
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
        this.access.enter();
        try {
          const value = t[0].fn.configRead(t[1], size);
          return size === 4 ? value | 0 : value;
        } finally {
          this.access.leave();
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

  /** Recompute where every function's BARs decode (at each config write: any may move a BAR). */
  private reroute(): void {
    this.bars.reroute(this.byDevfn.values());
  }

  /**
   * Make the interrupt lines agree with our functions after v86 restored a saved state: the state's
   * interrupt controller may hold a level that functions of the saving run asserted (SeaBIOS leaves
   * the virtio-blk it booted from with an interrupt pending), which fresh functions never lower, and
   * a level-triggered line stuck high is an interrupt storm once the guest unmasks it.
   */
  syncIntxAfterRestore(): void {
    this.intx.syncAfterRestore(this.byDevfn.values());
  }

  private configWrite(dev: Plugged, offset: number, size: AccessSize, value: number): void {
    if (dev.configWrites.length < MAX_RECORDED_CONFIG_WRITES) dev.configWrites.push([offset, size, value]);
    else dev.configWritesTruncated = true;
    this.access.enter();
    try {
      dev.fn.configWrite(offset, size, value);
    } finally {
      this.access.leave();
    }
    this.reroute();
  }
}

/** The function's 256 config bytes as the guest would read them now. */
export function configSnapshot(fn: PciFunction): number[] {
  const bytes: number[] = [];
  for (let off = 0; off < PCI_CONFIG_SPACE_SIZE; off++) bytes.push(fn.configRead(off, 1));
  return bytes;
}
