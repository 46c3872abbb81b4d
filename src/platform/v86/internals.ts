/**
 * The v86 internals virtio-ts relies on. None are in v86.d.ts: they are read from the source of the
 * pinned version (npm v86 0.5.462: src/cpu.js, src/io.js, src/pci.js, src/rust/cpu/memory.rs), typed
 * here, and checked by {@link v86Internals} so that a v86 without one of them fails loudly at start
 * (test/peer/linux/v86-internals.test.ts runs the same check). Nothing else in virtio-ts touches them.
 */

import type { V86 } from 'v86';
import { BusError } from '../../errors.js';

/**
 * One entry of v86's port table (src/io.js `create_empty_entry`): readers get the port number,
 * writers only the value; both are called with `this` bound to `device`.
 */
export interface V86PortEntry {
  read8(port: number): number;
  read16(port: number): number;
  read32(port: number): number;
  write8(value: number): void;
  write16(value: number): void;
  write32(value: number): void;
  device: object | undefined;
}

export type MmioRead = (addr: number) => number;
export type MmioWrite = (addr: number, value: number) => void;

/**
 * A JIT memory slow path (src/rust/cpu/cpu.rs safe_read*_slow_jit): (virtual address, the
 * instruction's offset in its page | wasm table index << 16) => the TLB entry to read through, or 1
 * on a fault.
 */
export type JitSlowRead = (addr: number, eip: number) => number;

/**
 * v86's LOOP_COUNTER (src/rust/cpu/cpu.rs): do_many_cycles_native returns once the instruction
 * counter has grown by this much since its run began.
 */
export const V86_LOOP_COUNTER = 100_003;

/** src/io.js `IO`: the port table and the 128 KiB-block memory map. */
export interface V86Io {
  /** 65536 entries, one per port. */
  readonly ports: V86PortEntry[];
  /** Installs handlers for one port (missing widths fail loudly in v86's debug build). */
  register_read(
    port: number,
    device: object,
    r8?: (port: number) => number,
    r16?: (port: number) => number,
    r32?: (port: number) => number,
  ): void;
  register_write(
    port: number,
    device: object,
    w8?: (value: number) => void,
    w16?: (value: number) => void,
    w32?: (value: number) => void,
  ): void;
  /** Maps [addr, addr + size) (both 128 KiB aligned) to handlers; addresses arrive as signed int32. */
  mmap_register(addr: number, size: number, r8: MmioRead, w8: MmioWrite, r32?: MmioRead, w32?: MmioWrite): void;
  /** The handlers of a port nobody registered (shared prototype functions, so comparable). */
  readonly empty_port_read8: (port: number) => number;
  readonly empty_port_write: (value: number) => void;
  /** A port access as the CPU makes it (through the port table); 32-bit reads may be negative. */
  port_read8(port: number): number;
  port_read16(port: number): number;
  port_read32(port: number): number;
  port_write8(port: number, value: number): void;
  port_write16(port: number, value: number): void;
  port_write32(port: number, value: number): void;
}

/** What src/pci.js `register_device` takes. */
export interface V86PciDevice {
  readonly name: string;
  /** devfn on bus 0 (slot << 3 | function). */
  readonly pci_id: number;
  /** At least 64 bytes; v86 keeps its own copy in `device_spaces[pci_id]`. */
  readonly pci_space: number[];
  /** I/O BARs listed here are moved by v86 on BAR writes; ours are empty (we route BARs ourselves). */
  readonly pci_bars: { size: number }[];
}

/** src/pci.js `PCI`. */
export interface V86Pci {
  register_device(device: V86PciDevice): Int32Array;
  /** Raise/lower the line v86 routes the device's INTx pin to (via the ISA bridge PIRQ registers). */
  raise_irq(pciId: number): void;
  lower_irq(pciId: number): void;
  /** The config address latched by writes to port 0xCF8 (bit 31 enable, bus, devfn, register). */
  readonly pci_addr32: Int32Array;
  /** The PIIX3 ISA bridge's config bytes: 0x60..0x63 are the PIRQ routing registers raise_irq reads. */
  readonly isa_bridge_space8: Uint8Array;
}

/** src/cpu.js `CPU`, the parts we use. */
export interface V86Cpu {
  readonly io: V86Io;
  readonly devices: { readonly pci: V86Pci };
  /** The wasm memory guest RAM lives in; it grows (detaching old views) while the JIT runs. */
  readonly wasm_memory: WebAssembly.Memory;
  /** A Proxy over the guest RAM view (src/lib.js `view`); only byteOffset is read from it. */
  readonly mem8: { readonly byteOffset: number };
  /** Guest RAM size in bytes, element 0. */
  readonly memory_size: ArrayLike<number>;
  /** Per-128 KiB-block MMIO read handlers (index addr >>> 17); unmapped blocks share one function. */
  readonly memory_map_read8: (MmioRead | undefined)[];
  /**
   * The wasm import for 16-bit MMIO writes (src/cpu.js). Rust's write16 calls it for mapped
   * addresses; by default it splits into two 8-bit writes. Called as a method, so an own property
   * on the instance overrides it. (16-bit MMIO reads have no such hook: two 8-bit reads, low first;
   * see mmio-word-reads.ts.)
   */
  mmap_write16: (addr: number, value: number) => void;
  /** Wasm export (src/rust/cpu/memory.rs): drop compiled code for [start, end) after a DMA write. */
  readonly jit_dirty_cache: (start: number, end: number) => void;
  /**
   * EFLAGS (element 0; a view of wasm memory, writable). Bit 9, IF, decides whether v86's device_raise_irq and
   * device_lower_irq deliver a pending interrupt at once: they call handle_irqs, which does so even
   * in the middle of the instruction whose port or MMIO access is being served
   * (src/rust/cpu/cpu.rs pic_call_irq: "XXX: What if called after instruction").
   */
  readonly flags: { [index: number]: number };
  /**
   * Instructions run so far (element 0; a view of wasm memory). Compiled code and the interpreter add
   * to it when they return to the CPU loop (do_many_cycles_native), which ends its run once the count
   * has grown by its LOOP_COUNTER since the run began; main_loop then calls run_hardware_timers and
   * handle_irqs, the place v86 takes interrupts between instructions (src/rust/cpu/cpu.rs).
   */
  readonly instruction_counter: { [index: number]: number };
  /**
   * Wasm export (src/rust/cpu/cpu.rs): deliver the highest pending interrupt if EFLAGS.IF is set.
   * Between instructions only (outside main_loop).
   */
  readonly handle_irqs: () => void;
  /**
   * What main_loop calls after each run of do_many_cycles_native, before handle_irqs (src/cpu.js; the
   * wasm import calls it as a method, so an own property on the instance overrides it): v86's timers;
   * returns the milliseconds until the next one.
   */
  run_hardware_timers: (acpiEnabled: boolean, now: number) => number;
  /**
   * The running instruction's prefixes (element 0; a view of wasm memory), kept by the interpreter
   * while it executes one (src/rust/prefix.rs masks) and 0 between instructions.
   */
  readonly prefixes: ArrayLike<number>;
  /** Element 0 is non-zero while the CPU runs 32-bit code (the code segment's default operand size). */
  readonly is_32: ArrayLike<number>;
  /**
   * What each compiled (JIT) module imports, by name, when it is instantiated (src/cpu.js
   * create_jit_imports): the wasm exports, among them the memory slow paths through which compiled
   * code reaches MMIO. Only the 16-bit read ones are typed.
   */
  readonly jit_imports: { safe_read16_slow_jit: JitSlowRead; safe_read_write16_slow_jit: JitSlowRead };
  /** Control registers CR0-CR7 (a view of wasm memory); CR0 bit 31 (PG) says whether paging is on. */
  readonly cr: ArrayLike<number>;
  /**
   * Physical memory accesses as the CPU makes them (src/cpu.js): RAM, or the handlers io.mmap_register
   * installed for the 128 KiB block. read32s returns a signed value.
   */
  read8(addr: number): number;
  read16(addr: number): number;
  read32s(addr: number): number;
  write8(addr: number, value: number): void;
  write16(addr: number, value: number): void;
  write32(addr: number, value: number): void;
  /** The CPU's state array for save_state (src/cpu.js; every device's nested in it), and its restore: device-state.ts wraps both. */
  get_state(): unknown[];
  set_state(state: unknown[]): void;
  /** The wasm instance: its exports include the allocator v86's Rust code uses (v86_malloc/v86_free). */
  readonly wm: { readonly exports: { v86_malloc(size: number): number; v86_free(ptr: number): void } };
}

/** The emulator's inner machine, `emulator.v86` (src/main.js `v86`). */
interface V86Machine {
  readonly cpu: V86Cpu;
}

/** Member paths checked by {@link v86Internals}, with the type each must have. */
const REQUIRED: readonly (readonly [path: string, type: 'function' | 'object' | 'number'])[] = [
  ['v86.cpu.io.ports', 'object'],
  ['v86.cpu.io.register_read', 'function'],
  ['v86.cpu.io.register_write', 'function'],
  ['v86.cpu.io.mmap_register', 'function'],
  ['v86.cpu.io.empty_port_read8', 'function'],
  ['v86.cpu.io.empty_port_write', 'function'],
  ['v86.cpu.io.port_read8', 'function'],
  ['v86.cpu.io.port_read16', 'function'],
  ['v86.cpu.io.port_read32', 'function'],
  ['v86.cpu.io.port_write8', 'function'],
  ['v86.cpu.io.port_write16', 'function'],
  ['v86.cpu.io.port_write32', 'function'],
  ['v86.cpu.read8', 'function'],
  ['v86.cpu.read16', 'function'],
  ['v86.cpu.read32s', 'function'],
  ['v86.cpu.write8', 'function'],
  ['v86.cpu.write16', 'function'],
  ['v86.cpu.write32', 'function'],
  ['v86.cpu.get_state', 'function'],
  ['v86.cpu.set_state', 'function'],
  ['v86.cpu.devices.pci.register_device', 'function'],
  ['v86.cpu.devices.pci.raise_irq', 'function'],
  ['v86.cpu.devices.pci.lower_irq', 'function'],
  ['v86.cpu.devices.pci.pci_addr32', 'object'],
  ['v86.cpu.devices.pci.isa_bridge_space8', 'object'],
  ['v86.cpu.wasm_memory', 'object'],
  ['v86.cpu.mem8.byteOffset', 'number'],
  ['v86.cpu.memory_size', 'object'],
  ['v86.cpu.memory_map_read8', 'object'],
  ['v86.cpu.mmap_write16', 'function'],
  ['v86.cpu.jit_dirty_cache', 'function'],
  ['v86.cpu.flags', 'object'],
  ['v86.cpu.instruction_counter', 'object'],
  ['v86.cpu.handle_irqs', 'function'],
  ['v86.cpu.run_hardware_timers', 'function'],
  ['v86.cpu.cr', 'object'],
  ['v86.cpu.prefixes', 'object'],
  ['v86.cpu.is_32', 'object'],
  ['v86.cpu.jit_imports.safe_read16_slow_jit', 'function'],
  ['v86.cpu.jit_imports.safe_read_write16_slow_jit', 'function'],
  ['v86.cpu.wm.exports.v86_malloc', 'function'],
  ['v86.cpu.wm.exports.v86_free', 'function'],
];

/** Which of the required internals `emulator` lacks (empty when all are there). */
export function missingV86Internals(emulator: V86): string[] {
  const missing: string[] = [];
  for (const [path, type] of REQUIRED) {
    let value: unknown = emulator;
    for (const key of path.split('.')) {
      value =
        value !== null && (typeof value === 'object' || typeof value === 'function') ? (value as Record<string, unknown>)[key] : undefined;
    }
    if (typeof value !== type) missing.push(`${path} (${type})`);
  }
  const ports = (emulator as unknown as { v86?: V86Machine }).v86?.cpu?.io?.ports;
  if (Array.isArray(ports) && ports.length !== 0x10000) missing.push('v86.cpu.io.ports (65536 entries)');
  return missing;
}

/**
 * The internals of a loaded emulator (after its "emulator-loaded" event). Throws a BusError naming
 * every missing member when this v86 is not the one virtio-ts was written against.
 */
export function v86Internals(emulator: V86): V86Cpu {
  const missing = missingV86Internals(emulator);
  if (missing.length > 0) {
    throw new BusError(`this v86 lacks internals virtio-ts relies on (written for npm v86 0.5.462): ${missing.join(', ')}`);
  }
  return (emulator as unknown as { v86: V86Machine }).v86.cpu;
}
