import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ModernDriverTransport, notifyAddress } from '../../../src/transport/pci/modern-driver.js';
import { probe, type ModernLayout } from '../../../src/transport/pci/probe.js';
import { bdf } from '../../../src/bus/pci-bus.js';
import { DeviceFaultError, UsageError } from '../../../src/errors.js';
import { featureSet, VIRTIO_F_NOTIFICATION_DATA, VIRTIO_F_NOTIF_CONFIG_DATA, VIRTIO_F_VERSION_1 } from '../../../src/spec/features.js';
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
  await t.setDriverFeatures(featureSet(VIRTIO_F_VERSION_1));
  await t.setupQueue(1, { size: 8, descAddr: 0x10_0000, driverAddr: 0x10_1000, deviceAddr: 0x10_2000 });
  bus.log.length = 0;
  await t.notify(1, 0x8007);
  assert.deepEqual(writes(bus), [[0x3000 + 5 * 4, 2, 1]], 'without NOTIFICATION_DATA: the index alone, 16 bits');
  assert.equal(bus.accesses('memWrite')[0]!.bar, 4);
  await assert.rejects(t.notify(0, 0), UsageError, 'a queue never set up');

  // 4.1.5.2: le32 { vqn : 16; next_off : 15; next_wrap : 1 }.
  await t.setDriverFeatures(featureSet(VIRTIO_F_VERSION_1, VIRTIO_F_NOTIFICATION_DATA));
  await t.setupQueue(1, { size: 8, descAddr: 0x10_0000, driverAddr: 0x10_1000, deviceAddr: 0x10_2000 });
  bus.log.length = 0;
  await t.notify(1, 0x8007);
  assert.deepEqual(writes(bus), [[0x3000 + 5 * 4, 4, 0x8007_0001]]);
});

test('NOTIF_CONFIG_DATA: the driver reads queue_notif_config_data at set-up and writes it instead of the index', async () => {
  const { bus, bar4, t } = await setUp();
  bar4.queueNotifyOff.set(2, 2);
  bar4.queueNotifyData.set(2, 0xbeef);
  await t.setDriverFeatures(featureSet(VIRTIO_F_VERSION_1, VIRTIO_F_NOTIF_CONFIG_DATA));
  await t.setupQueue(2, { size: 8, descAddr: 0x10_0000, driverAddr: 0x10_1000, deviceAddr: 0x10_2000 });
  assert.ok(
    bus.accesses('memRead').some((a) => a.offset === 56 && a.size === 2),
    'queue_notif_config_data (offset 56) read at set-up',
  );
  bus.log.length = 0;
  await t.notify(2, 3);
  assert.deepEqual(writes(bus), [[0x3000 + 2 * 4, 2, 0xbeef]]);

  await t.setDriverFeatures(featureSet(VIRTIO_F_VERSION_1, VIRTIO_F_NOTIF_CONFIG_DATA, VIRTIO_F_NOTIFICATION_DATA));
  await t.setupQueue(2, { size: 8, descAddr: 0x10_0000, driverAddr: 0x10_1000, deviceAddr: 0x10_2000 });
  bus.log.length = 0;
  await t.notify(2, 3);
  assert.deepEqual(writes(bus), [[0x3000 + 2 * 4, 4, 0x0003_beef]]);
});

test('NOTIFICATION_DATA: a notify address without room for 4 bytes, or not 4-byte aligned, fails set-up', async () => {
  const { bus, bar4, layout } = await setUp();
  // A device with multiplier 2 breaks 4.1.4.4 for NOTIFICATION_DATA (a multiple of 4 is required).
  const t = new ModernDriverTransport(bus, { ...layout, notify: { ...layout.notify, notifyOffMultiplier: 2 } });
  const ring = { size: 8, descAddr: 0x10_0000, driverAddr: 0x10_1000, deviceAddr: 0x10_2000 };
  await t.setDriverFeatures(featureSet(VIRTIO_F_VERSION_1, VIRTIO_F_NOTIFICATION_DATA));
  const queueFault = (e: unknown): boolean => e instanceof DeviceFaultError && e.code === 'ERR_DEVICE_QUEUE';
  bar4.queueNotifyOff.set(1, 1);
  await assert.rejects(t.setupQueue(1, ring), (e: unknown) => queueFault(e) && /not 4-byte aligned/.test((e as Error).message));
  bar4.queueNotifyOff.set(1, layout.notify.length / 2 - 1);
  await assert.rejects(t.setupQueue(1, ring), (e: unknown) => queueFault(e) && /no room for a 4-byte/.test((e as Error).message));
  // Without the feature the same slot holds the 2-byte notification.
  await t.setDriverFeatures(featureSet(VIRTIO_F_VERSION_1));
  await t.setupQueue(1, ring);
});

test('resetQueue writes queue_reset = 1 and polls it until 0; a queue_reset stuck at 1 times out', async () => {
  const { bus, bar4, t, layout } = await setUp();
  bar4.queueResetReads = 3;
  // A generous bound for the reset that completes (a loaded machine), the short one for the stuck one.
  await new ModernDriverTransport(bus, layout, { resetTimeoutMs: 5000 }).resetQueue(3);
  const resetReads = bus.accesses('memRead').filter((a) => a.offset === 58);
  assert.equal(resetReads.length, 4, 'three reads of 1, then 0');
  assert.ok(writes(bus).some(([o, sz, v]) => o === 58 && sz === 2 && v === 1));
  assert.deepEqual(
    bus
      .accesses('memWrite')
      .filter((a) => a.offset === 22)
      .map((a) => a.value),
    [3, 3, 3, 3, 3, 3],
    'queue_select written before the reset and before each read',
  );
  bar4.queueResetReads = Infinity;
  await assert.rejects(t.resetQueue(3), (e: unknown) => e instanceof DeviceFaultError && e.code === 'ERR_DEVICE_TIMEOUT');
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
