import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VirtioDriver } from '../../../src/driver/virtio-driver.js';
import { bdf } from '../../../src/bus/pci-bus.js';
import { featureSet, VIRTIO_F_VERSION_1 } from '../../../src/spec/features.js';
import { qemuLikeVirtio } from '../../../src/testing/config-space-builder.js';
import { FakePciBus } from '../../../src/testing/fake-pci-bus.js';
import { ScriptedBar4 } from '../../helpers/scripted-modern-bar.js';

const FN = bdf(0, 7, 0);

test('a transitional device driven through capabilities: not one access to the legacy BAR0 (or any I/O port)', async () => {
  const bus = new FakePciBus();
  const bar4 = new ScriptedBar4();
  bar4.deviceFeatureWords = [0, 1];
  bar4.numQueues = 1;
  bar4.queueSize.set(0, 16);
  bus.add(FN, qemuLikeVirtio({ deviceId: 0x1005, revision: 0, subsystemId: 4 }, { legacyBar0: true }).build(), new Map([[4, bar4]]));
  const drv = await VirtioDriver.open(bus, FN);
  assert.equal(drv.probe.kind, 'modern');
  assert.equal(await drv.negotiate(0n), featureSet(VIRTIO_F_VERSION_1));
  const q = await drv.setupQueue(0);
  await drv.driverOk();
  const buf = bus.dma.alloc(8, 8);
  q.submit([{ addr: buf.addr, len: 8 }], [], 0);
  await q.kick();
  await drv.readConfig(0, 4);
  await drv.close();
  const io = bus.log.filter((a) => a.op === 'ioRead' || a.op === 'ioWrite');
  assert.deepEqual(io, []);
  const mem = bus.log.filter((a) => a.op === 'memRead' || a.op === 'memWrite');
  assert.ok(mem.length > 20);
  assert.deepEqual([...new Set(mem.map((a) => a.bar))], [4], 'every memory access lands in the capabilities BAR');
});
