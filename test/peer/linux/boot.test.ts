/**
 * Linux boots in v86 to /init with our functions on its bus, and the adapter carries the guest's own
 * accesses to them: the kernel enumerates the probe function at its slot with the BARs the BIOS
 * programmed, and physical reads and writes of its BARs (devmem, /dev/port) arrive at the function
 * with the widths the guest used.
 */

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { PROBE_DEVICE_ID, PROBE_IO_BAR, PROBE_MEMORY_BAR, PROBE_VENDOR_ID } from '../../helpers/probe-function.js';
import { SLOT, bootTestMachine, pciName, resultOf, type TestMachine } from '../../helpers/linux-machine.js';

let m: TestMachine;
let memBase: number;
let ioBase: number;

before(async () => {
  m = await bootTestMachine();
});

after(async () => {
  await m?.guest.destroy();
});

const hex = (n: number) => `0x${n.toString(16)}`;

test('the kernel enumerates the probe function with the BARs programmed into it', async (t) => {
  t.diagnostic(`${m.guest.restored ? 'restored' : 'booted'} to VT-READY in ${Math.round(m.guest.bootMs)} ms`);
  const out = await m.guest.command('pci');
  assert.equal(out.rc, 0);
  const dev = resultOf(out.results, 'pcidev', { slot: pciName(SLOT.probe) });
  assert.equal(Number(dev.fields['vendor']), PROBE_VENDOR_ID);
  assert.equal(Number(dev.fields['device']), PROBE_DEVICE_ID);
  const bars = new Map(m.probe.decodedBars().map((b) => [b.index, b]));
  memBase = bars.get(PROBE_MEMORY_BAR)!.base;
  ioBase = bars.get(PROBE_IO_BAR)!.base;
  // sysfs "resource" lines: start-end:flags, as the kernel read them from the function.
  assert.match(
    dev.fields[`bar${PROBE_MEMORY_BAR}`] ?? '',
    new RegExp(`^0x0*${memBase.toString(16)}-0x0*${(memBase + 4095).toString(16)}:`),
  );
  assert.match(dev.fields[`bar${PROBE_IO_BAR}`] ?? '', new RegExp(`^0x0*${ioBase.toString(16)}-0x0*${(ioBase + 31).toString(16)}:`));
  assert.deepEqual(m.guest.adapter.refusedBars, []);
});

test('guest MMIO reaches the function with the width the guest used', async () => {
  m.probe.accesses.length = 0;
  assert.equal((await m.guest.command(`poke ${hex(memBase + 0x10)} 16 0xbeef`)).rc, 0);
  assert.deepEqual(
    m.probe.accesses.filter((a) => a.write).map((a) => [a.offset, a.size, a.value]),
    [[0x10, 2, 0xbeef]],
  );
  new DataView(m.probe.memory.buffer).setUint32(0x20, 0xdead_beef, true);
  const word = await m.guest.command(`peek ${hex(memBase + 0x20)} 32`);
  assert.equal(Number(resultOf(word.results, 'peek').fields['value']), 0xdead_beef);
  const half = await m.guest.command(`peek ${hex(memBase + 0x10)} 16`);
  assert.equal(Number(resultOf(half.results, 'peek').fields['value']), 0xbeef);
  const byte = await m.guest.command(`peek ${hex(memBase + 0x23)} 8`);
  assert.equal(Number(resultOf(byte.results, 'peek').fields['value']), 0xde);
});

test('guest port I/O reaches the function', async () => {
  assert.equal((await m.guest.command(`outb ${ioBase + 3} 0x5a`)).rc, 0);
  assert.equal(m.probe.io[3], 0x5a);
  m.probe.io[7] = 0xc3;
  const out = await m.guest.command(`inb ${ioBase + 7}`);
  assert.equal(Number(resultOf(out.results, 'inb').fields['value']), 0xc3);
});
