/**
 * The v86 internals the adapter relies on (src/platform/v86/internals.ts) exist in the pinned v86 and
 * behave as the adapter assumes, checked on a loaded emulator without booting a guest: config cycles
 * and BAR accesses go through v86's own port dispatch (io.port_*) and the wasm CPU's memory
 * accessors (cpu.read16/write16..., the path guest instructions take), so a v86 that lacks one fails
 * by name and one that changed behaviour fails on the behaviour.
 */

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { after, before, test } from 'node:test';
import { V86 } from 'v86';
import { findGuestAssets } from '../../../src/platform/v86/assets.js';
import { missingV86Internals, v86Internals, type V86Cpu } from '../../../src/platform/v86/internals.js';
import { MAX_REFUSED_BARS } from '../../../src/platform/v86/bar-routing.js';
import { MAX_RECORDED_CONFIG_WRITES, V86PciAdapter } from '../../../src/platform/v86/pci-adapter.js';
import { BarRefusedError } from '../../../src/errors.js';
import { RngDevice } from '../../../src/device/rng/rng-device.js';
import { MODERN_BAR, MODERN_COMMON_OFFSET } from '../../../src/transport/pci/modern-device.js';
import type { VirtioDeviceHost } from '../../../src/core/virtio-device.js';
import { VIRTIO_PCI_COMMON_CFGGENERATION, VIRTIO_PCI_COMMON_STATUS } from '../../../src/spec/virtio-pci.js';
import { VIRTIO_CONFIG_S_ACKNOWLEDGE } from '../../../src/spec/status.js';
import {
  PCI_BASE_ADDRESS_0,
  PCI_COMMAND,
  PCI_COMMAND_IO,
  PCI_COMMAND_MEMORY,
  PCI_CONFIG_ADDRESS_PORT,
  PCI_CONFIG_DATA_PORT,
  PCI_VENDOR_ID,
} from '../../../src/spec/pci.js';
import {
  PROBE_DEVICE_ID,
  PROBE_IO_BAR,
  PROBE_MEMORY_BAR,
  PROBE_MEMORY_SIZE,
  PROBE_VENDOR_ID,
  ProbeFunction,
} from '../../helpers/probe-function.js';

const PROBE_A = 13 << 3;
const PROBE_B = 14 << 3;
const VIRTIO_64 = 15 << 3;
const VIRTIO_32 = 16 << 3;
const VIRTIO_GEN = 17 << 3;
const GEN_BASE = 0xfc00_0000;
/** v86's operand-size prefix bit (src/rust/prefix.rs PREFIX_MASK_OPSIZE). */
const OPERAND_SIZE_PREFIX = 0x20;
const MEM_BASE = 0xfe00_0000;
const IO_BASE = 0xc000;
const CONFIG_ENABLE = 0x8000_0000;

let emulator: V86;
let adapter: V86PciAdapter;
let cpu: V86Cpu;
let a: ProbeFunction;
let b: ProbeFunction;
const irqCalls: string[] = [];
const warnings: string[] = [];
const refused: BarRefusedError[] = [];

/** An entropy device whose host the test can reach (to change config_generation as the device). */
class HostCapture extends RngDevice {
  seen: VirtioDeviceHost | undefined;
  override attach(host: VirtioDeviceHost): void {
    super.attach(host);
    this.seen = host;
  }
}

function image(path: string): { buffer: ArrayBuffer } {
  const bytes = readFileSync(path);
  const buffer = new ArrayBuffer(bytes.byteLength);
  new Uint8Array(buffer).set(bytes);
  return { buffer };
}

function configAddress(devfn: number, reg: number): number {
  return (CONFIG_ENABLE | (devfn << 8) | reg) >>> 0;
}
function configRead32(devfn: number, reg: number): number {
  cpu.io.port_write32(PCI_CONFIG_ADDRESS_PORT, configAddress(devfn, reg) | 0);
  return cpu.io.port_read32(PCI_CONFIG_DATA_PORT) >>> 0;
}
function configWrite32(devfn: number, reg: number, value: number): void {
  cpu.io.port_write32(PCI_CONFIG_ADDRESS_PORT, configAddress(devfn, reg) | 0);
  cpu.io.port_write32(PCI_CONFIG_DATA_PORT, value | 0);
}

before(async () => {
  const assets = findGuestAssets();
  emulator = new V86({
    wasm_path: createRequire(import.meta.url).resolve('v86/build/v86.wasm'),
    bios: image(assets.bios),
    memory_size: 64 << 20,
    autostart: false,
  });
  await new Promise<void>((resolve) => emulator.add_listener('emulator-loaded', () => resolve()));
  cpu = v86Internals(emulator);
  const pci = cpu.devices.pci;
  const raise = pci.raise_irq.bind(pci);
  const lower = pci.lower_irq.bind(pci);
  pci.raise_irq = (id) => (irqCalls.push(`raise ${id}`), raise(id));
  pci.lower_irq = (id) => (irqCalls.push(`lower ${id}`), lower(id));
  adapter = new V86PciAdapter(emulator, { warn: (message) => warnings.push(message) });
  adapter.onBarRefused((error) => refused.push(error));
  a = adapter.plug(PROBE_A, 'probe-a', (host) => new ProbeFunction(host));
  b = adapter.plug(PROBE_B, 'probe-b', (host) => new ProbeFunction(host));
  adapter.plugVirtio(VIRTIO_64, 'rng-64', new RngDevice(), { modernBar64: true });
  adapter.plugVirtio(VIRTIO_32, 'rng-32', new RngDevice());
});

after(async () => {
  await emulator?.destroy();
});

test('the pinned v86 has every internal the adapter relies on', () => {
  assert.deepEqual(missingV86Internals(emulator), []);
});

test('config cycles to our devfn reach the function live; others still reach v86', () => {
  assert.equal(configRead32(PROBE_A, PCI_VENDOR_ID), (PROBE_DEVICE_ID << 16) | PROBE_VENDOR_ID);
  // v86's own host bridge at 00:00.0 (Intel 82441FX, 8086:1237) still answers through v86.
  assert.equal(configRead32(0, PCI_VENDOR_ID), 0x1237_8086);
  // A BAR write is seen by the function: sizing reads back its size mask, live (v86's copy would not).
  configWrite32(PROBE_A, PCI_BASE_ADDRESS_0, 0xffff_ffff);
  assert.equal(configRead32(PROBE_A, PCI_BASE_ADDRESS_0), 0xffff_f000);
  configWrite32(PROBE_A, PCI_BASE_ADDRESS_0, MEM_BASE);
  configWrite32(PROBE_A, PCI_BASE_ADDRESS_0 + 4, IO_BASE);
  configWrite32(PROBE_A, PCI_COMMAND, PCI_COMMAND_MEMORY | PCI_COMMAND_IO);
  assert.equal(configRead32(PROBE_A, PCI_BASE_ADDRESS_0), MEM_BASE);
  assert.equal(configRead32(PROBE_A, PCI_BASE_ADDRESS_0 + 4), IO_BASE | 1);
  const decoded = a.decodedBars().map((bar) => [bar.index, bar.base]);
  assert.deepEqual(decoded, [
    [PROBE_MEMORY_BAR, MEM_BASE],
    [PROBE_IO_BAR, IO_BASE],
  ]);
});

/**
 * Runs `read` as a read by an instruction the interpreter executes in 32-bit code, with (`word`) or
 * without the operand-size prefix: the CPU state v86's interpreter keeps while it runs one.
 */
function interpreted<T>(word: boolean, read: () => T): T {
  const is32 = cpu.is_32 as Int32Array;
  const prefixes = cpu.prefixes as Int32Array;
  const saved: [number, number] = [is32[0]!, prefixes[0]!];
  is32[0] = 1;
  prefixes[0] = word ? OPERAND_SIZE_PREFIX : 0;
  try {
    return read();
  } finally {
    is32[0] = saved[0];
    prefixes[0] = saved[1];
  }
}

test('MMIO through the wasm CPU: whole 8/16/32-bit writes; reads at the width the instruction used', () => {
  a.accesses.length = 0;
  cpu.write16(MEM_BASE + 0x10, 0xbeef);
  cpu.write32(MEM_BASE + 0x20, 0x1234_5678);
  cpu.write8(MEM_BASE + 0x31, 0x5a);
  assert.deepEqual(
    a.accesses.map((x) => [x.write, x.offset, x.size, x.value]),
    [
      [true, 0x10, 2, 0xbeef],
      [true, 0x20, 4, 0x1234_5678],
      [true, 0x31, 1, 0x5a],
    ],
  );
  a.accesses.length = 0;
  // v86 hands a 16-bit read over as two byte reads; an interpreted movw (0x66 prefix) and compiled
  // code's 16-bit slow path each reach the function as one 16-bit read.
  assert.equal(
    interpreted(true, () => cpu.read16(MEM_BASE + 0x10)),
    0xbeef,
  );
  cpu.jit_imports.safe_read16_slow_jit(MEM_BASE + 0x10, 0); // paging is off: the address is physical
  assert.equal(cpu.read32s(MEM_BASE + 0x20) >>> 0, 0x1234_5678);
  // Byte reads of consecutive bytes stay byte reads, each at its own offset.
  assert.deepEqual(
    interpreted(false, () => [cpu.read8(MEM_BASE + 0x20), cpu.read8(MEM_BASE + 0x21)]),
    [0x78, 0x56],
  );
  assert.equal(cpu.read8(MEM_BASE + 0x31), 0x5a);
  assert.deepEqual(
    a.accesses.map((x) => [x.offset, x.size]),
    [
      [0x10, 2],
      [0x10, 2],
      [0x20, 4],
      [0x20, 1],
      [0x21, 1],
      [0x31, 1],
    ],
  );
  // Above the BAR's 4 KiB, in the same 128 KiB block: no function decodes it, reads float high.
  assert.equal(cpu.read32s(MEM_BASE + 0x1000) >>> 0, 0xffff_ffff);
});

test('a byte read at an even address is read once, at byte width (a read-to-clear register such as the ISR)', () => {
  a.accesses.length = 0;
  cpu.write8(MEM_BASE + 0x40, 0x01);
  a.accesses.length = 0;
  assert.equal(
    interpreted(false, () => cpu.read8(MEM_BASE + 0x40)),
    0x01,
  );
  assert.deepEqual(
    a.accesses.map((x) => [x.write, x.offset, x.size]),
    [[false, 0x40, 1]],
  );
});

test("config_generation read after device_status is the device's current one, not a byte of an earlier read", () => {
  const device = new HostCapture();
  adapter.plugVirtio(VIRTIO_GEN, 'rng-gen', device);
  configWrite32(VIRTIO_GEN, PCI_BASE_ADDRESS_0 + 4 * MODERN_BAR, GEN_BASE);
  configWrite32(VIRTIO_GEN, PCI_COMMAND, PCI_COMMAND_MEMORY);
  const status = GEN_BASE + MODERN_COMMON_OFFSET + VIRTIO_PCI_COMMON_STATUS;
  const generation = GEN_BASE + MODERN_COMMON_OFFSET + VIRTIO_PCI_COMMON_CFGGENERATION;
  cpu.write8(status, VIRTIO_CONFIG_S_ACKNOWLEDGE);
  device.seen!.configChangedByDriver!();
  const [before, after] = interpreted(false, () => {
    const first = cpu.read8(generation);
    // Linux's vp_get_status then vp_generation: two 8-bit reads, and the device changes in between.
    assert.equal(cpu.read8(status), VIRTIO_CONFIG_S_ACKNOWLEDGE);
    device.seen!.configChangedByDriver!();
    return [first, cpu.read8(generation)];
  });
  assert.deepEqual([before, after], [1, 2]);
});

test('I/O BAR: native widths, and the ports follow a BAR move', () => {
  a.accesses.length = 0;
  cpu.io.port_write16(IO_BASE + 4, 0x1234);
  assert.equal(cpu.io.port_read32(IO_BASE + 4) >>> 0, 0x1234);
  assert.deepEqual(
    a.accesses.map((x) => [x.write, x.offset, x.size]),
    [
      [true, 4, 2],
      [false, 4, 4],
    ],
  );
  configWrite32(PROBE_A, PCI_BASE_ADDRESS_0 + 4, IO_BASE + 0x100);
  assert.equal(cpu.io.port_read16(IO_BASE + 4), 0xffff, 'the old ports no longer decode');
  assert.equal(cpu.io.port_read16(IO_BASE + 0x104), 0x1234);
});

test('a BAR over RAM or another device is refused, not mapped', () => {
  configWrite32(PROBE_B, PCI_BASE_ADDRESS_0, 0x0010_0000); // guest RAM
  configWrite32(PROBE_B, PCI_BASE_ADDRESS_0 + 4, 0x3e0); // ports 0x3e0-0x3ff: COM1 is at 0x3f8
  configWrite32(PROBE_B, PCI_COMMAND, PCI_COMMAND_MEMORY | PCI_COMMAND_IO);
  assert.deepEqual(
    adapter.refusedBars.map((e) => [e.code, e.functionName, e.barIndex, e.base]),
    [
      ['ERR_BAR_CONFLICT', 'probe-b', 0, 0x0010_0000],
      ['ERR_BAR_CONFLICT', 'probe-b', 1, 0x3e0],
    ],
  );
  assert.deepEqual(refused, adapter.refusedBars, 'each refusal reached the listener once');
  assert.equal(warnings.length, 2, warnings.join('\n'));
  const ram = emulator.read_memory(0x0010_0000, 4);
  cpu.write32(0x0010_0000, 0x0bad_f00d);
  assert.deepEqual([...emulator.read_memory(0x0010_0000, 4)], [0x0d, 0xf0, 0xad, 0x0b], 'RAM, not the function');
  emulator.write_memory(ram, 0x0010_0000);
  assert.equal(b.accesses.length, 0);
});

test('what the adapter keeps of guest config writes stays bounded: recorded writes, refused-BAR lines', () => {
  const probe = adapter.functions.find((f) => f.devfn === PROBE_B)!;
  // A guest moving a BAR over RAM again and again, to a new address each time (8000 of them, all in RAM).
  for (let i = 1; i <= 20_000; i++)
    configWrite32(PROBE_B, PCI_BASE_ADDRESS_0 + 4 * PROBE_MEMORY_BAR, 0x0010_0000 + (i % 8000) * PROBE_MEMORY_SIZE);
  assert.equal(probe.configWrites.length, MAX_RECORDED_CONFIG_WRITES);
  assert.equal(probe.configWritesTruncated, true, 'the writes left out are known to be missing');
  assert.equal(adapter.refusedBars.filter((e) => e.functionName === 'probe-b').length, MAX_REFUSED_BARS);
  assert.match(adapter.refusedBars.at(-1)!.message, /^probe-b BAR0 \(memory 0x/);
  configWrite32(PROBE_B, PCI_BASE_ADDRESS_0 + 4 * PROBE_MEMORY_BAR, 0x0010_0000);
  assert.equal(b.accesses.length, 0);
});

test('guest memory is v86 RAM without copies, and survives the wasm memory growing', () => {
  const mem = adapter.functions[0]!.memory;
  mem.write32(0x2000, 0xcafe_babe);
  assert.deepEqual([...emulator.read_memory(0x2000, 4)], [0xbe, 0xba, 0xfe, 0xca]);
  emulator.write_memory(new Uint8Array([1, 2, 3, 4]), 0x3000);
  assert.deepEqual([...mem.view(0x3000, 4)], [1, 2, 3, 4]);
  cpu.wasm_memory.grow(1);
  assert.equal(mem.read32(0x2000), 0xcafe_babe);
  assert.equal(mem.growths, 1);
  assert.equal(mem.contains(mem.end - 4, 4), true);
  // The CPU has not run, so paging is off: the firmware's zone continues past the OS's RAM end, up
  // to v86's memory size (memory-map.ts), where the range check holds.
  const top = cpu.memory_size[0]!;
  assert.equal(mem.contains(mem.end - 3, 4), true);
  assert.equal(mem.contains(top - 4, 4), true);
  assert.equal(mem.contains(top - 3, 4), false);
});

test('INTx: a line shared by two functions stays raised until both lower it', () => {
  // Slots 13 and 14 with pin INTA use PIRQ registers 0 and 1; make both route to IRQ 11.
  cpu.devices.pci.isa_bridge_space8.fill(11, 0x60, 0x64);
  irqCalls.length = 0;
  a.setIntx(true);
  b.setIntx(true);
  a.setIntx(false);
  assert.deepEqual(irqCalls, [`raise ${PROBE_A}`]);
  b.setIntx(false);
  assert.deepEqual(irqCalls, [`raise ${PROBE_A}`, `lower ${PROBE_B}`]);
});

test("a 64-bit BAR above 4 GiB is refused loudly (typed event, warning); plugVirtio's 32-bit BAR cannot get there", () => {
  refused.length = 0;
  warnings.length = 0;
  const bar4 = PCI_BASE_ADDRESS_0 + 4 * MODERN_BAR;
  for (const devfn of [VIRTIO_64, VIRTIO_32]) {
    configWrite32(devfn, bar4, 0xfd00_0000);
    configWrite32(devfn, bar4 + 4, 1); // the high dword of a 64-bit BAR
    configWrite32(devfn, PCI_COMMAND, PCI_COMMAND_MEMORY);
  }
  assert.deepEqual(
    refused.map((e) => [e instanceof BarRefusedError, e.code, e.functionName, e.barIndex, e.kind, e.base, e.size]),
    [[true, 'ERR_BAR_ABOVE_4G', 'rng-64', MODERN_BAR, 'memory', 0x1_fd00_0000, 0x4000]],
  );
  assert.equal(warnings.length, 1);
  assert.match(
    warnings[0]!,
    /rng-64 BAR4 \(memory 0x1fd000000\+0x4000\): above 4 GiB, which v86 cannot reach.*modernBar64: false.*ERR_BAR_ABOVE_4G/,
  );
  // The 32-bit BAR ignored the high dword: it decodes at 0xfd000000, and v86's CPU reaches it there
  // (device_feature_select reads back what was written).
  cpu.write32(0xfd00_0000, 1);
  assert.equal(cpu.read32s(0xfd00_0000), 1);
  // Configuring the same placement again reports nothing new.
  configWrite32(VIRTIO_64, PCI_COMMAND, PCI_COMMAND_MEMORY);
  assert.equal(refused.length, 1);
  assert.equal(warnings.length, 1);
});
