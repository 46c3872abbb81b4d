/**
 * Shared memory regions on v86 (npm v86, pinned), no guest running: our function plugged with
 * V86PciAdapter.plugVirtio, whose BAR2 is 32-bit so that any guest places it below 4 GiB, reached
 * by our probe and window through v86's own config ports and physical memory accessors
 * (V86DriverBus), as a CPU would. BARs are programmed here, as firmware would. A 64-bit BAR2 placed
 * above 4 GiB is refused loudly (ERR_BAR_ABOVE_4G): v86 truncates such addresses to 32 bits.
 */

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { SharedMemory } from '../../../src/core/shared-memory.js';
import { bdf } from '../../../src/bus/pci-bus.js';
import { V86DriverBus } from '../../../src/platform/v86/v86-driver-bus.js';
import { FIRST_FREE_DEVFN, V86PciAdapter } from '../../../src/platform/v86/pci-adapter.js';
import { PCI_BASE_ADDRESS_0, PCI_COMMAND, PCI_COMMAND_MEMORY } from '../../../src/spec/pci.js';
import { probe } from '../../../src/transport/pci/probe.js';
import { SHARED_MEMORY_BAR } from '../../../src/transport/pci/shared-memory-cfg.js';
import { MODERN_BAR } from '../../../src/transport/pci/modern-device.js';
import { SharedMemoryWindow } from '../../../src/transport/pci/shared-memory-driver.js';
import { LoopbackDevice } from '../../helpers/loopback-device.js';

/** Addresses in v86's PCI hole (above its 32 MiB of RAM, below the IOAPIC), as firmware would pick. */
const SHM_BASE = 0xd000_0000;
const MODERN_BASE = 0xd100_0000;

let bus: V86DriverBus;
let adapter: V86PciAdapter;
const refusals: string[] = [];

before(async () => {
  bus = await V86DriverBus.create({ virtioConsole: false });
  adapter = new V86PciAdapter(bus.emulator, { warn: (message) => refusals.push(message) });
});

after(async () => {
  await bus?.close();
});

test('v86: a 32-bit BAR2 below 4 GiB; the probe finds the region and bytes go both ways through v86 memory accesses', async () => {
  const shm = new SharedMemory(4, 0x2_0000);
  adapter.plugVirtio(FIRST_FREE_DEVFN, 'shm', new LoopbackDevice({ sharedMemoryRegions: [shm] }));
  const fn = bdf(0, FIRST_FREE_DEVFN >> 3, 0);
  assert.equal(await bus.configRead(fn, PCI_BASE_ADDRESS_0 + 4 * SHARED_MEMORY_BAR, 4), 0x08, 'BAR2: 32-bit prefetchable memory');
  await bus.configWrite(fn, PCI_BASE_ADDRESS_0 + 4 * SHARED_MEMORY_BAR, 4, SHM_BASE);
  await bus.configWrite(fn, PCI_BASE_ADDRESS_0 + 4 * MODERN_BAR, 4, MODERN_BASE);
  await bus.configWrite(fn, PCI_COMMAND, 2, PCI_COMMAND_MEMORY);

  const result = await probe(bus, fn);
  assert.equal(result.kind, 'modern', result.explanation);
  const region = result.sharedMemory.get(4)!;
  assert.deepEqual({ address: region.address, length: region.length }, { address: SHM_BASE, length: 0x2_0000 });
  const window = new SharedMemoryWindow(bus, region);
  await window.writeBytes(0x1_fffc, new Uint8Array([0x11, 0x22, 0x33, 0x44]));
  assert.deepEqual([...shm.bytes.subarray(0x1_fffc)], [0x11, 0x22, 0x33, 0x44]);
  shm.bytes.set([0xab, 0xcd], 0x100);
  assert.equal(await window.read(0x100, 2), 0xcdab);
  assert.deepEqual(refusals, []);
});

test('v86: a 64-bit BAR2 the guest puts above 4 GiB is refused with ERR_BAR_ABOVE_4G, not truncated onto RAM', async () => {
  const devfn = FIRST_FREE_DEVFN + 8;
  adapter.plugVirtio(devfn, 'shm64', new LoopbackDevice({ sharedMemoryRegions: [new SharedMemory(1, 0x1000)] }), {
    sharedMemoryBar64: true,
  });
  const fn = bdf(0, devfn >> 3, 0);
  await bus.configWrite(fn, PCI_BASE_ADDRESS_0 + 4 * SHARED_MEMORY_BAR, 4, 0);
  await bus.configWrite(fn, PCI_BASE_ADDRESS_0 + 4 * SHARED_MEMORY_BAR + 4, 4, 1);
  await bus.configWrite(fn, PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
  assert.deepEqual(
    adapter.refusedBars.map((e) => [e.code, e.barIndex, e.base]),
    [['ERR_BAR_ABOVE_4G', SHARED_MEMORY_BAR, 2 ** 32]],
  );
  assert.equal(refusals.length, 1);
});
