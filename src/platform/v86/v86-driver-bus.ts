/**
 * The driver half's view of a v86 emulator's own PCI bus (npm v86, pinned), so that our probe, lspci
 * decode and drivers can inspect and drive v86's virtio devices (virtio-console, virtio-net,
 * virtio-balloon) with no guest running: the emulator is loaded and never started, and every access
 * is made the way the CPU would make it.
 * - Config space through the PCI configuration ports (mechanism #1: address to 0xCF8, data at
 *   0xCFC + lane). v86's devices come with their BARs programmed (fixed I/O ports), so there are no
 *   {@link BusResources}.
 * - Port and memory accesses through v86's port table and physical memory accessors.
 * - DMA memory is v86's guest RAM itself, zero-copy (V86GuestMemory), so it is coherent.
 * - INTx: v86's devices call pci.raise_irq/lower_irq; this bus wraps both to tell listeners, a
 *   microtask later (as the in-process machine does), and still lets v86 route the line.
 *   v86 has no MSI-X, so there is no MSI message.
 * Every v86 internal used is typed and checked in internals.ts.
 */

import { createRequire } from 'node:module';
import { V86 } from 'v86';
import type { Bdf, BusResources, InterruptEvent, PciBus } from '../../bus/pci-bus.js';
import type { DmaMemory } from '../../memory/dma.js';
import { InterruptListeners } from '../../bus/interrupt-listeners.js';
import { UsageError } from '../../errors.js';
import type { AccessSize } from '../../memory/access-size.js';
import { PCI_CONFIG_ADDRESS_PORT, PCI_CONFIG_DATA_PORT, PCI_CONFIG_SPACE_SIZE, PCI_VENDOR_ID } from '../../spec/pci.js';
import { RamDma } from '../../bus/ram-dma.js';
import { V86GuestMemory, reserveWasmHeap } from './guest-memory.js';
import { v86Internals, type V86Cpu, type V86Pci } from './internals.js';

/** Bit 31 of the configuration address enables a config cycle (PCI Local Bus 3.0, 3.2.2.3.2). */
const CONFIG_ENABLE = 0x8000_0000;
/** v86 is a 32-bit machine: physical addresses above this decode to nothing here. */
const PHYS_LIMIT = 2 ** 32;
const PORT_LIMIT = 0x10000;
/** Low RAM kept out of DMA: real-mode structures live there on a PC, and no buffer sits at 0. */
const DMA_BASE = 1 << 20;
const ALL_ONES: Record<AccessSize, number> = { 1: 0xff, 2: 0xffff, 4: 0xffff_ffff };

export interface V86DriverBusOptions {
  /** Guest RAM in MiB (default 32); DMA memory is all of it above 1 MiB. */
  readonly memoryMiB?: number;
  /** Enable v86's virtio-console (default true). */
  readonly virtioConsole?: boolean;
  /** Enable v86's virtio-net (default false). */
  readonly virtioNet?: boolean;
  /** Enable v86's virtio-balloon (default false). */
  readonly virtioBalloon?: boolean;
}

export class V86DriverBus implements PciBus {
  readonly name = 'v86 0.5.462 (its own devices)';
  readonly dma: DmaMemory;
  /** v86's BARs are programmed at construction: nothing to assign. */
  readonly resources: BusResources | undefined = undefined;
  private readonly cpu: V86Cpu;
  private readonly pci: V86Pci;
  private readonly listeners = new InterruptListeners();
  private closed = false;

  /**
   * Load a v86 emulator with the chosen virtio devices and no disk, BIOS or kernel; it is never
   * started. The bus owns it and destroys it on close.
   */
  static async create(options: V86DriverBusOptions = {}): Promise<V86DriverBus> {
    const emulator = new V86({
      wasm_path: createRequire(import.meta.url).resolve('v86/build/v86.wasm'),
      memory_size: (options.memoryMiB ?? 32) << 20,
      autostart: false,
      // 'none': the device without any host-side adapter (its bytes are bus events only).
      ...((options.virtioConsole ?? true) ? { virtio_console: { type: 'none' as const } } : {}),
      virtio_balloon: options.virtioBalloon ?? false,
      ...(options.virtioNet ? { net_device: { type: 'virtio' as const } } : {}),
      disable_keyboard: true,
      disable_mouse: true,
      disable_speaker: true,
    });
    await new Promise<void>((resolve) => emulator.add_listener('emulator-loaded', () => resolve()));
    try {
      return new V86DriverBus(emulator);
    } catch (err) {
      await emulator.destroy();
      throw err;
    }
  }

  /** @param emulator a loaded v86 emulator that is not running (its CPU would race the driver); close() destroys it. */
  constructor(readonly emulator: V86) {
    this.cpu = v86Internals(emulator);
    // Keeps v86's allocator from growing the wasm memory, which would detach our DMA views.
    reserveWasmHeap(this.cpu);
    this.pci = this.cpu.devices.pci;
    const memory = new V86GuestMemory(this.cpu);
    this.dma = new RamDma(memory, DMA_BASE, memory.end - DMA_BASE);
    this.hookIrqs();
  }

  /**
   * Wrap pci.raise_irq/lower_irq with own properties on v86's PCI object (v86's devices call them as
   * methods through cpu.devices.pci, e.g. VirtIO.raise_irq). Relies on: their argument being the
   * device's pci_id (devfn on bus 0).
   */
  private hookIrqs(): void {
    const pci = this.pci;
    const raise = pci.raise_irq;
    const lower = pci.lower_irq;
    pci.raise_irq = (pciId: number) => {
      raise.call(pci, pciId);
      this.emit(pciId, true);
    };
    pci.lower_irq = (pciId: number) => {
      lower.call(pci, pciId);
      this.emit(pciId, false);
    };
  }

  private emit(pciId: number, asserted: boolean): void {
    if (!this.listeners.has(pciId)) return;
    const event: InterruptEvent = { kind: 'intx', asserted };
    // Never re-enter the driver from inside its own register access.
    queueMicrotask(() => this.listeners.emit(pciId, event));
  }

  private checkOpen(): void {
    if (this.closed) throw new UsageError('v86 bus is closed');
  }

  /** Latch a config cycle for `fn` at the dword of `offset`; the data port lane is the low two bits. */
  private selectConfig(fn: Bdf, offset: number, size: AccessSize): number {
    this.checkOpen();
    if (!Number.isInteger(fn) || fn < 0 || fn > 0xffff) throw new UsageError(`bad function address ${fn}`);
    if (!Number.isInteger(offset) || offset < 0 || offset + size > PCI_CONFIG_SPACE_SIZE || offset % size !== 0)
      throw new UsageError(`bad config access [${offset}, +${size})`);
    this.cpu.io.port_write32(PCI_CONFIG_ADDRESS_PORT, CONFIG_ENABLE | (fn << 8) | (offset & 0xfc) | 0);
    return PCI_CONFIG_DATA_PORT + (offset & 3);
  }

  async configRead(fn: Bdf, offset: number, size: AccessSize): Promise<number> {
    return this.portRead(this.selectConfig(fn, offset, size), size);
  }

  async configWrite(fn: Bdf, offset: number, size: AccessSize, value: number): Promise<void> {
    // v86 answers config reads of an empty slot with all-ones but throws on writes to one (src/pci.js
    // pci_write8 dereferences the missing space): drop them, as hardware does.
    // Checked synchronously: accesses must be performed in the order issued (PciBus).
    if (this.portRead(this.selectConfig(fn, PCI_VENDOR_ID, 2), 2) === 0xffff) return;
    this.portWrite(this.selectConfig(fn, offset, size), size, value);
  }

  async memRead(addr: number, size: AccessSize): Promise<number> {
    this.checkOpen();
    if (!inRange(addr, size, PHYS_LIMIT)) return ALL_ONES[size];
    if (size === 1) return this.cpu.read8(addr);
    if (size === 2) return this.cpu.read16(addr);
    return this.cpu.read32s(addr) >>> 0;
  }

  async memWrite(addr: number, size: AccessSize, value: number): Promise<void> {
    this.checkOpen();
    if (!inRange(addr, size, PHYS_LIMIT)) return;
    if (size === 1) this.cpu.write8(addr, value & 0xff);
    else if (size === 2) this.cpu.write16(addr, value & 0xffff);
    else this.cpu.write32(addr, value | 0);
  }

  async ioRead(port: number, size: AccessSize): Promise<number> {
    this.checkOpen();
    if (!inRange(port, size, PORT_LIMIT)) return ALL_ONES[size];
    return this.portRead(port, size);
  }

  async ioWrite(port: number, size: AccessSize, value: number): Promise<void> {
    this.checkOpen();
    if (!inRange(port, size, PORT_LIMIT)) return;
    this.portWrite(port, size, value);
  }

  private portRead(port: number, size: AccessSize): number {
    const io = this.cpu.io;
    if (size === 1) return io.port_read8(port) & 0xff;
    if (size === 2) return io.port_read16(port) & 0xffff;
    return io.port_read32(port) >>> 0;
  }

  private portWrite(port: number, size: AccessSize, value: number): void {
    const io = this.cpu.io;
    if (size === 1) io.port_write8(port, value & 0xff);
    else if (size === 2) io.port_write16(port, value & 0xffff);
    else io.port_write32(port, value | 0);
  }

  /** INTx of a function on bus 0 (v86 has one bus); functions elsewhere never interrupt. */
  onInterrupt(fn: Bdf, listener: (event: InterruptEvent) => void): () => void {
    return this.listeners.add(fn, listener);
  }

  msiMessage(): undefined {
    return undefined;
  }

  /** Unhook the interrupt lines and destroy the emulator. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.listeners.clear();
    // The wrappers are own properties: deleting them uncovers v86's prototype methods again.
    delete (this.pci as Partial<V86Pci>).raise_irq;
    delete (this.pci as Partial<V86Pci>).lower_irq;
    await this.emulator.destroy();
  }
}

function inRange(addr: number, size: number, limit: number): boolean {
  return Number.isSafeInteger(addr) && addr >= 0 && addr + size <= limit;
}
