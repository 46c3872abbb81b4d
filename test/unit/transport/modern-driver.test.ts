import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ModernDriverTransport, notifyAddress } from '../../../src/transport/pci/modern-driver.js';
import { probe, type ModernLayout } from '../../../src/transport/pci/probe.js';
import { bdf } from '../../../src/bus/pci-bus.js';
import { DeviceFaultError, UsageError } from '../../../src/errors.js';
import { qemuLikeVirtio } from '../../../src/testing/config-space-builder.js';
import { FakePciBus } from '../../../src/testing/fake-pci-bus.js';
import { ScriptedBar4 } from '../../helpers/scripted-modern-bar.js';

const FN = bdf(0, 4, 0);
/** The fake bus puts the first 64-bit BAR (BAR4 here) at its mem64 window base. */
const BAR4 = 0x80_0000_0000;

async function setUp(): Promise<{ bus: FakePciBus; bar4: ScriptedBar4; t: ModernDriverTransport; layout: ModernLayout }> {
  const bus = new FakePciBus();
  const bar4 = new ScriptedBar4();
  bus.add(FN, qemuLikeVirtio({ deviceId: 0x1041 }).build(), new Map([[4, bar4]]));
  const result = await probe(bus, FN);
  assert.equal(result.kind, 'modern');
  if (result.kind !== 'modern') throw new Error('unreachable');
  assert.equal(result.layout.common.address, BAR4);
  bus.log.length = 0;
  return { bus, bar4, t: new ModernDriverTransport(bus, result.layout, { resetTimeoutMs: 40 }), layout: result.layout };
}

/** BAR4 writes as [offset, size, value]. */
function writes(bus: FakePciBus): [number, number, number][] {
  return bus.accesses('memWrite').map((a) => [a.offset, a.size, a.value]);
}

test('notifyAddress: cap address + queue_notify_off * notify_off_multiplier, inside the notify structure', () => {
  const notify = { address: 0xfe00_3000, length: 0x1000, notifyOffMultiplier: 4 } as ModernLayout['notify'];
  assert.equal(notifyAddress(notify, 0, 2), 0xfe00_3000);
  assert.equal(notifyAddress(notify, 3, 2), 0xfe00_300c);
  assert.equal(notifyAddress(notify, 0x3ff, 2), 0xfe00_3ffc);
  assert.equal(notifyAddress(notify, 0x3ff, 4), 0xfe00_3ffc, 'a 4-byte notification at the last slot still fits');
  assert.equal(notifyAddress(notify, 0x400, 2), undefined, 'one slot past the end');
  assert.equal(notifyAddress({ ...notify, notifyOffMultiplier: 0 }, 0xffff, 2), 0xfe00_3000, 'multiplier 0: one address for all');
  assert.equal(notifyAddress({ ...notify, notifyOffMultiplier: 0x1000, length: 0x10_0000 }, 0xffff, 2), undefined);
});

test('queue set-up writes queue_select, queue_size and each 64-bit address as lo then hi (offsets 32..55)', async () => {
  const { bus, t } = await setUp();
  await t.setupQueue(2, { size: 128, descAddr: 0x1_2345_6000, driverAddr: 0x2_0000_0800, deviceAddr: 0xfff0_1000 });
  assert.deepEqual(writes(bus), [
    [22, 2, 2], // queue_select
    [24, 2, 128], // queue_size
    [32, 4, 0x2345_6000], // queue_desc lo
    [36, 4, 1], // queue_desc hi: the high half is kept
    [40, 4, 0x0000_0800], // queue_driver lo
    [44, 4, 2],
    [48, 4, 0xfff0_1000], // queue_device lo
    [52, 4, 0],
  ]);
  assert.deepEqual(
    bus.accesses('memRead').map((a) => [a.offset, a.size]),
    [
      [24, 2],
      [30, 2],
    ],
    'then queue_size read back, and queue_notify_off',
  );
  await t.enableQueue(2);
  assert.deepEqual(
    writes(bus).slice(-2),
    [
      [22, 2, 2],
      [28, 2, 1],
    ],
    'queue_enable = 1 for the selected queue',
  );
});

test('notify writes the 16-bit queue index at the computed address; with NOTIFICATION_DATA a 32-bit value', async () => {
  const { bus, bar4, t } = await setUp();
  bar4.queueNotifyOff.set(1, 5);
  await t.setupQueue(1, { size: 8, descAddr: 0x10_0000, driverAddr: 0x10_1000, deviceAddr: 0x10_2000 });
  bus.log.length = 0;
  await t.notify(1);
  await t.notify(1, 0x0007_0001);
  assert.deepEqual(writes(bus), [
    [0x3000 + 5 * 4, 2, 1],
    [0x3000 + 5 * 4, 4, 0x0007_0001],
  ]);
  assert.equal(bus.accesses('memWrite')[0]!.bar, 4);
  await assert.rejects(t.notify(0), UsageError, 'a queue never set up');
});

test('a queue_notify_off outside the notify structure fails set-up with ERR_DEVICE_QUEUE', async () => {
  const { bar4, t } = await setUp();
  bar4.queueNotifyOff.set(0, 0x400); // 0x400 * 4 = 0x1000: the structure's length
  await assert.rejects(
    t.setupQueue(0, { size: 8, descAddr: 0x10_0000, driverAddr: 0x10_1000, deviceAddr: 0x10_2000 }),
    (e: unknown) => e instanceof DeviceFaultError && e.code === 'ERR_DEVICE_QUEUE',
  );
});

test('features: every select window read through device_feature_select / device_feature, written likewise', async () => {
  const { bus, bar4, t } = await setUp();
  bar4.deviceFeatureWords = [0x3000_0001, 0x0000_0001, 0x0000_0010, 0];
  assert.equal(await t.deviceFeatures(), (1n << 0n) | (1n << 28n) | (1n << 29n) | (1n << 32n) | (1n << 68n));
  assert.deepEqual(writes(bus), [
    [0, 4, 0],
    [0, 4, 1],
    [0, 4, 2],
    [0, 4, 3],
  ]);
  assert.deepEqual(
    bus.accesses('memRead').map((a) => [a.offset, a.size]),
    [
      [4, 4],
      [4, 4],
      [4, 4],
      [4, 4],
    ],
  );
  bus.log.length = 0;
  await t.setDriverFeatures((1n << 32n) | (1n << 68n) | 0x8000_0000n);
  assert.deepEqual(writes(bus), [
    [8, 4, 0],
    [12, 4, 0x8000_0000],
    [8, 4, 1],
    [12, 4, 1],
    [8, 4, 2],
    [12, 4, 0x10],
    [8, 4, 3],
    [12, 4, 0],
  ]);
  await assert.rejects(t.setDriverFeatures(1n << 128n), UsageError);
});

test('status, generation, ISR, device config and vectors use their fields at their widths', async () => {
  const { bus, bar4, t } = await setUp();
  await t.setStatus(0x0b);
  assert.equal(await t.getStatus(), 0x0b);
  bar4.regs.set(21, 7);
  assert.equal(await t.configGeneration(), 7);
  await t.readIsr();
  await t.readConfig(0xffc, 4);
  await t.writeConfig(2, 2, 0xbeef);
  assert.equal(await t.setConfigVector(1), 1);
  assert.equal(await t.setQueueVector(3, 2), 2);
  bar4.refuseVectors = true;
  assert.equal(await t.setConfigVector(1), 0xffff, 'read back: VIRTIO_MSI_NO_VECTOR when refused');
  assert.deepEqual(
    bus.log.filter((a) => a.op === 'memRead' || a.op === 'memWrite').map((a) => [a.op, a.offset, a.size]),
    [
      ['memWrite', 20, 1],
      ['memRead', 20, 1],
      ['memRead', 21, 1],
      ['memRead', 0x1000, 1],
      ['memRead', 0x2ffc, 4],
      ['memWrite', 0x2002, 2],
      ['memWrite', 16, 2],
      ['memRead', 16, 2],
      ['memWrite', 22, 2],
      ['memWrite', 26, 2],
      ['memRead', 26, 2],
      ['memWrite', 16, 2],
      ['memRead', 16, 2],
    ],
  );
  assert.equal(t.deviceConfigSize, 0x1000);
  // Past the structure the device gives: its fault, and no access is made; a malformed offset: the caller's.
  bus.log.length = 0;
  await assert.rejects(t.readConfig(0xffe, 4), (e: unknown) => e instanceof DeviceFaultError && e.code === 'ERR_DEVICE_CONFIG');
  await assert.rejects(t.writeConfig(0x1000, 1, 0), (e: unknown) => e instanceof DeviceFaultError && e.code === 'ERR_DEVICE_CONFIG');
  await assert.rejects(t.readConfig(-1, 1), UsageError);
  assert.deepEqual(bus.log, []);
});

test('reset writes 0 and waits, bounded, for device_status to read 0', async () => {
  const { bus, bar4, t } = await setUp();
  await t.reset();
  assert.deepEqual(writes(bus), [[20, 1, 0]]);
  bar4.stuckStatus = 0x0f;
  const start = Date.now();
  await assert.rejects(t.reset(), (e: unknown) => e instanceof DeviceFaultError && e.code === 'ERR_DEVICE_TIMEOUT');
  assert.ok(Date.now() - start >= 35);
});
