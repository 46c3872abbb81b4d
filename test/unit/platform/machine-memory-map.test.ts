/**
 * The in-process machine with a firmware-style memory map: RAM below a hole at 0x9fc00-0xfffff and
 * backed memory past RAM's end, as a PC BIOS states it. A device's buffer that touches a hole or
 * runs past RAM is a guest fault (DEVICE_NEEDS_RESET) before a byte moves; the driver's DMA memory
 * and the bus respect the map too.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RngDevice } from '../../../src/device/rng/rng-device.js';
import { assignBars } from '../../../src/bus/bars.js';
import { GuestMemoryError, UsageError } from '../../../src/errors.js';
import { ArrayGuestMemory } from '../../../src/memory/guest-memory.js';
import { Machine } from '../../../src/platform/machine.js';
import { bit, VIRTIO_F_VERSION_1 } from '../../../src/spec/features.js';
import { VIRTQ_DESC_F_WRITE } from '../../../src/spec/ring.js';
import {
  VIRTIO_CONFIG_S_ACKNOWLEDGE,
  VIRTIO_CONFIG_S_DEVICE_NEEDS_RESET,
  VIRTIO_CONFIG_S_DRIVER,
  VIRTIO_CONFIG_S_DRIVER_OK,
  VIRTIO_CONFIG_S_FEATURES_OK,
} from '../../../src/spec/status.js';
import { ModernDriverTransport } from '../../../src/transport/pci/modern-driver.js';
import { probe } from '../../../src/transport/pci/probe.js';
import { MockQueue } from '../../../src/testing/mock-queue.js';

/** 4 MiB backed; RAM is [0, 0x9fc00) and [1 MiB, 3 MiB): the rest is firmware's or past RAM's end. */
const RAM_SIZE = 4 << 20;
const LOW_RAM = { base: 0, size: 0x9_fc00 };
const HIGH_RAM = { base: 0x10_0000, size: 0x20_0000 };
const RAM_END = HIGH_RAM.base + HIGH_RAM.size;
const ramMap = [LOW_RAM, HIGH_RAM];

function backing(m: Machine): Uint8Array {
  assert.ok(m.memory instanceof ArrayGuestMemory);
  return m.memory.bytes;
}

test('the map bounds every accessor of machine memory, the bus and the DMA window', async () => {
  const m = new Machine({ ramSize: RAM_SIZE, ramMap });
  assert.equal(m.memory.end, RAM_END);
  m.memory.write32(LOW_RAM.size - 4, 0x1234_5678);
  m.memory.write32(RAM_END - 4, 0x9abc_def0);
  assert.throws(() => m.memory.write32(LOW_RAM.size - 2, 0), GuestMemoryError, 'straddles the EBDA');
  assert.throws(() => m.memory.view(0xc_0000, 16), GuestMemoryError, 'inside the ROM hole');
  assert.throws(() => m.memory.write(RAM_END - 8, new Uint8Array(16)), GuestMemoryError, 'runs past RAM');
  assert.throws(() => m.memory.read8(RAM_END), GuestMemoryError, 'exactly at RAM end');
  assert.equal(await m.bus.memRead(0xa_0000, 4), 0xffff_ffff, 'a hole reads as all-ones');
  await m.bus.memWrite(RAM_END, 4, 0x5555_5555);
  assert.ok(
    backing(m)
      .subarray(RAM_END)
      .every((b) => b === 0),
    'a bus write past RAM was dropped',
  );
  const buf = m.bus.dma.alloc(0x1000, 0x1000);
  assert.ok(
    buf.addr >= HIGH_RAM.base && buf.addr + 0x1000 <= RAM_END,
    `DMA buffer at 0x${buf.addr.toString(16)} comes from the largest RAM range`,
  );
});

test('a map that does not fit the RAM is a usage error', () => {
  assert.throws(() => new Machine({ ramSize: RAM_SIZE, ramMap: [{ base: 0, size: RAM_SIZE + 1 }] }), UsageError);
  assert.throws(() => new Machine({ ramSize: RAM_SIZE, ramMap: [LOW_RAM, { base: 0x9_0000, size: 0x2_0000 }] }), UsageError, 'overlap');
  assert.throws(
    () => new Machine({ ramSize: RAM_SIZE, ramMap: [{ base: 0x1_0000_0000, size: 0x1000 }] }),
    UsageError,
    'high range without high RAM',
  );
});

/**
 * An rng device on the machine, its queue 0 driven by hand with rings in RAM and one device-writable
 * buffer [addr, +len) offered: the device status afterwards and how many buffers came back used.
 */
async function offerBuffer(m: Machine, addr: number, len: number): Promise<{ status: number; used: number }> {
  const { bdf } = m.plugVirtio(new RngDevice());
  await assignBars(m.bus, bdf);
  const found = await probe(m.bus, bdf);
  if (found.kind !== 'modern') throw new Error('expected the modern interface');
  const t = new ModernDriverTransport(m.bus, found.layout);
  await t.reset();
  await t.setStatus(VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
  await t.setDriverFeatures(bit(VIRTIO_F_VERSION_1));
  await t.setStatus(VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK);
  const q = new MockQueue({ size: 8, memory: m.memory, base: HIGH_RAM.base });
  await t.setupQueue(0, { size: q.size, descAddr: q.descAddr, driverAddr: q.availAddr, deviceAddr: q.usedAddr });
  await t.enableQueue(0);
  await t.setStatus(VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK);
  q.setDesc(0, { addr, len, flags: VIRTQ_DESC_F_WRITE, next: 0 });
  q.pushAvail(0);
  await t.notify(0, q.availIdx);
  return { status: await t.getStatus(), used: q.readUsed().length };
}

for (const [what, addr, len] of [
  ['inside the hole above low RAM', 0xc_0000, 64],
  ['from low RAM into the EBDA', LOW_RAM.size - 32, 64],
  ['from RAM past its end', RAM_END - 0x1000, 0x2000],
  ['exactly at RAM end', RAM_END, 64],
] as const) {
  test(`an rng buffer ${what}: DEVICE_NEEDS_RESET, and no byte outside RAM changes`, async () => {
    const m = new Machine({ ramSize: RAM_SIZE, ramMap });
    const { status, used } = await offerBuffer(m, addr, len);
    assert.ok((status & VIRTIO_CONFIG_S_DEVICE_NEEDS_RESET) !== 0, `status 0x${status.toString(16)}`);
    assert.equal(used, 0, 'no buffer was returned');
    const bytes = backing(m);
    assert.ok(
      bytes.subarray(LOW_RAM.size, HIGH_RAM.base).every((b) => b === 0),
      'the hole is untouched',
    );
    assert.ok(
      bytes.subarray(RAM_END).every((b) => b === 0),
      'the memory past RAM is untouched',
    );
  });
}

test('without a map all backed memory is RAM: the same buffer is served', async () => {
  const { status, used } = await offerBuffer(new Machine({ ramSize: RAM_SIZE }), RAM_END - 0x1000, 0x2000);
  assert.equal(status & VIRTIO_CONFIG_S_DEVICE_NEEDS_RESET, 0);
  assert.equal(used, 1);
});
