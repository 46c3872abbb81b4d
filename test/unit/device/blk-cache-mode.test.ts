/**
 * virtio-blk cache mode through every interface: the mode a driver learns (5.2.5: `writeback` with
 * CONFIG_WCE, else writeback exactly when FLUSH was negotiated) is the mode the device applies to the
 * writes that follow. A driver that saw writethrough sends no FLUSH, so every write it completes must
 * already be stable; one that saw writeback flushes when it needs to.
 *
 * The driver here reads `writeback` where Linux does: after writing its features and before
 * DRIVER_OK (after FEATURES_OK on the modern interface; the legacy one has no FEATURES_OK, 5.2.5.2).
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Machine } from '../../../src/platform/machine.js';
import { BlkDevice } from '../../../src/device/blk/blk-device.js';
import { MemoryBlockBackend } from '../../../src/device/blk/memory-backend.js';
import { VirtioDriver } from '../../../src/driver/virtio-driver.js';
import type { DriverQueue } from '../../../src/driver/driver-queue.js';
import type { VirtioPciMode } from '../../../src/transport/pci/virtio-pci-function.js';

// Numbers straight from spec 5.2 (not our constants).
const F_FLUSH = 1n << 9n;
const F_CONFIG_WCE = 1n << 11n;
const WRITEBACK = 32;
const T_OUT = 1;
const T_FLUSH = 4;
const S_OK = 0;

const INTERFACES: { name: string; mode: VirtioPciMode; forceLegacy: boolean }[] = [
  { name: 'modern-only', mode: 'modern', forceLegacy: false },
  { name: 'transitional, modern interface', mode: 'transitional', forceLegacy: false },
  { name: 'transitional, legacy interface', mode: 'transitional', forceLegacy: true },
  { name: 'legacy-only', mode: 'legacy', forceLegacy: false },
];

const FEATURES: { name: string; features: bigint }[] = [
  { name: 'FLUSH and CONFIG_WCE', features: F_FLUSH | F_CONFIG_WCE },
  { name: 'FLUSH only', features: F_FLUSH },
  { name: 'CONFIG_WCE only', features: F_CONFIG_WCE },
  { name: 'neither', features: 0n },
];

/** One request (header, optional data, status byte) through queue 0; returns the status. */
async function request(m: Machine, queue: DriverQueue, type: number, data?: Uint8Array): Promise<number> {
  const dma = m.bus.dma;
  const header = dma.alloc(16, 16);
  new DataView(header.bytes.buffer, header.bytes.byteOffset, 16).setUint32(0, type, true);
  const out = [{ addr: header.addr, len: 16 }];
  if (data) {
    const buf = dma.alloc(data.byteLength, 16);
    buf.bytes.set(data);
    out.push({ addr: buf.addr, len: data.byteLength });
  }
  const status = dma.alloc(1, 1);
  status.bytes[0] = 0xff;
  queue.submit(out, [{ addr: status.addr, len: 1 }], type);
  await queue.kick();
  const used = await queue.waitUsed();
  assert.equal(used.length, 1);
  return status.bytes[0];
}

for (const i of INTERFACES) {
  for (const f of FEATURES) {
    for (const writeback of [true, false]) {
      test(`cache mode, ${i.name}, ${f.name}, device default ${writeback ? 'writeback' : 'writethrough'}: the device applies the mode the driver saw`, async (t) => {
        const m = new Machine({ ramSize: 8 << 20 });
        const backend = new MemoryBlockBackend(64 * 512);
        const fn = m.plugVirtio(new BlkDevice({ backend, writeback }), { mode: i.mode, msixVectors: 0 });
        const driver = await VirtioDriver.open(m.bus, fn.bdf, { forceLegacy: i.forceLegacy, deviceType: 2 });
        t.after(() => driver.close());
        assert.equal(driver.transport.kind, i.forceLegacy || i.mode === 'legacy' ? 'legacy' : 'modern');
        const features = await driver.negotiate(f.features);
        assert.equal(features & (F_FLUSH | F_CONFIG_WCE), f.features);

        // 5.2.5 driver side: the field with CONFIG_WCE, else FLUSH tells.
        const field = await driver.readConfig(WRITEBACK, 1);
        const sawWriteback = f.features & F_CONFIG_WCE ? field === 1 : (f.features & F_FLUSH) !== 0n;
        const queue = await driver.setupQueue(0);
        await driver.driverOk();
        if (f.features & F_CONFIG_WCE)
          assert.equal(await driver.readConfig(WRITEBACK, 1), field, 'DRIVER_OK left the cache mode the driver read');

        assert.equal(await request(m, queue, T_OUT, new Uint8Array(512).fill(0x5a)), S_OK);
        assert.equal(backend.bytes[0], 0x5a);
        // Writethrough: stable at completion, so flushed by the device before it completed.
        assert.equal(
          backend.flushes,
          sawWriteback ? 0 : 1,
          sawWriteback ? 'writeback: the driver flushes, not the device' : 'writethrough: the write was flushed before completion',
        );
        if (sawWriteback && f.features & F_FLUSH) {
          // What the driver does for fsync (a driver that left FLUSH out cannot).
          assert.equal(await request(m, queue, T_FLUSH), S_OK);
          assert.equal(backend.flushes, 1);
        }
      });
    }
  }
}

test('legacy interface: writeback reads the same from reset through DRIVER_OK, whatever the features (5.2.5.2)', async () => {
  for (const writeback of [true, false]) {
    const m = new Machine({ ramSize: 8 << 20 });
    const fn = m.plugVirtio(new BlkDevice({ backend: new MemoryBlockBackend(512), writeback }), { mode: 'transitional', msixVectors: 0 });
    const driver = await VirtioDriver.open(m.bus, fn.bdf, { forceLegacy: true, deviceType: 2 });
    const expected = writeback ? 1 : 0;
    assert.equal(await driver.readConfig(WRITEBACK, 1), expected, 'before any feature is written');
    await driver.negotiate(F_FLUSH | F_CONFIG_WCE);
    assert.equal(await driver.readConfig(WRITEBACK, 1), expected, 'features written: no change (5.2.5.2)');
    await driver.setupQueue(0);
    await driver.driverOk();
    assert.equal(await driver.readConfig(WRITEBACK, 1), expected, 'DRIVER_OK with CONFIG_WCE: no change (5.2.5.2)');
    await driver.close();
  }
});
