// The notification structure, device side (4.1.4.4, 4.1.5.2): what a write means with and without
// VIRTIO_F_NOTIFICATION_DATA and VIRTIO_F_NOTIF_CONFIG_DATA, and that hostile writes end in
// DEVICE_NEEDS_RESET, never in a crash or a notification of the wrong queue. Offsets and bits are
// literals (spec 4.1.4.3: queue_select 22, queue_notif_config_data 56; features 38, 39).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ModernHarness } from '../../helpers/modern-harness.js';
import { MockQueue } from '../../../src/testing/mock-queue.js';
import { QueueFaultError } from '../../../src/errors.js';
import type { AccessSize } from '../../../src/memory/access-size.js';

const V1 = 1n << 32n;
const NOTIFICATION_DATA = 1n << 38n;
const NOTIF_CONFIG_DATA = 1n << 39n;
const ACK_DRIVER_FEATURES_OK = 1 | 2 | 8;
const DRIVER_OK = 4;
const NEEDS_RESET = 0x40;
const QUEUE_SELECT = 22;
const QUEUE_NOTIF_CONFIG_DATA = 56;

/** A live device with queues 0..2 enabled, after negotiating `features`. */
function live(features: bigint): ModernHarness {
  const h = new ModernHarness({ queueMaxSizes: [8, 8, 8] }).enableBar();
  h.negotiate(V1 | features);
  for (let i = 0; i < 3; i++) h.setupQueue(i, new MockQueue({ size: 8, memory: h.memory, base: 0x1000 + i * 0x1000 }));
  h.setStatus(ACK_DRIVER_FEATURES_OK | DRIVER_OK);
  assert.equal(h.status & NEEDS_RESET, 0);
  return h;
}

function notifConfigData(h: ModernHarness, index: number): number {
  h.setCommon(QUEUE_SELECT, 2, index);
  return h.common(QUEUE_NOTIF_CONFIG_DATA, 2);
}

function assertNotificationFault(h: ModernHarness, queue: number, message: string): void {
  assert.equal(h.status & NEEDS_RESET, NEEDS_RESET, message);
  const fault = h.fn.core.fault;
  assert.ok(fault instanceof QueueFaultError && fault.code === 'ERR_QUEUE_NOTIFICATION' && fault.queueIndex === queue, message);
}

test('without either feature: a write of any width in a queue slot notifies that queue; its value is not looked at (as QEMU 7.2)', () => {
  const h = live(0n);
  for (const [offset, size] of [
    [4, 2],
    [5, 1],
    [8, 4],
    [10, 2],
  ] as [number, AccessSize][])
    h.notify(offset, size, 0xdead);
  assert.deepEqual(
    h.device.notifies.map((n) => [n.index, n.data]),
    [
      [1, undefined],
      [1, undefined],
      [2, undefined],
      [2, undefined],
    ],
  );
  assert.equal(notifConfigData(h, 1), 0, 'queue_notif_config_data does not exist without NOTIF_CONFIG_DATA');
});

test('NOTIFICATION_DATA: a 32-bit write { vqn, next_off, next_wrap } reaches the device with next (bits 16-31)', () => {
  const h = live(NOTIFICATION_DATA);
  h.notify(8, 4, 0x8003_0002); // queue 2, next avail idx 0x8003 (next_wrap set)
  h.notify(0, 4, 0x0000_0000);
  assert.deepEqual(h.device.notifies, [
    { index: 2, data: 0x8003 },
    { index: 0, data: 0 },
  ]);
});

for (const [what, offset, size, value] of [
  ['a 16-bit write (the driver MUST write 32 bits)', 4, 2, 1],
  ['an 8-bit write', 4, 1, 1],
  ['a 32-bit write naming another queue', 4, 4, 0x0001_0002],
  ['a 32-bit write straddling two slots (split into 16-bit pieces)', 6, 4, 0x0001_0001],
] as [string, number, AccessSize, number][]) {
  test(`NOTIFICATION_DATA: ${what} is a guest fault (ERR_QUEUE_NOTIFICATION, DEVICE_NEEDS_RESET)`, () => {
    const h = live(NOTIFICATION_DATA);
    h.notify(offset, size, value);
    assert.deepEqual(h.device.notifies, [], 'nothing reaches the device');
    assertNotificationFault(h, 1, what);
    h.notify(4, 4, 0x0001_0001);
    assert.deepEqual(h.device.notifies, [], 'a stopped device takes no notification');
  });
}

test('a malformed notification before DRIVER_OK is ignored like any notification then', () => {
  const h = new ModernHarness({ queueMaxSizes: [8, 8] }).enableBar();
  h.negotiate(V1 | NOTIFICATION_DATA);
  h.notify(4, 2, 7);
  assert.equal(h.status & NEEDS_RESET, 0);
  assert.equal(h.fn.core.fault, undefined);
});

test('NOTIF_CONFIG_DATA: queue_notif_config_data is each queue notify offset in bytes; the driver writes it, 16 bits', () => {
  const h = new ModernHarness({ queueMaxSizes: [8, 8, 8] }).enableBar();
  h.negotiate(V1);
  assert.equal(notifConfigData(h, 2), 0, 'not negotiated: the field reads 0');
  const l = live(NOTIF_CONFIG_DATA);
  assert.deepEqual(
    [0, 1, 2].map((i) => notifConfigData(l, i)),
    [0, 4, 8],
  );
  notifConfigData(l, 3);
  assert.equal(l.common(QUEUE_NOTIF_CONFIG_DATA, 2), 0, 'a queue that does not exist has none');
  l.setCommon(QUEUE_NOTIF_CONFIG_DATA, 2, 0x55);
  assert.equal(notifConfigData(l, 1), 4, 'read-only for the driver');
  l.notify(4, 2, 4);
  l.notify(8, 2, 8);
  assert.deepEqual(l.device.notifies, [
    { index: 1, data: undefined },
    { index: 2, data: undefined },
  ]);
  l.notify(8, 2, 2); // the index where the identifier belongs
  assertNotificationFault(l, 2, 'the queue index instead of queue_notif_config_data');
});

test('both features: the 32-bit value carries queue_notif_config_data in bits 0-15', () => {
  const h = live(NOTIFICATION_DATA | NOTIF_CONFIG_DATA);
  h.notify(4, 4, 0x0005_0004);
  assert.deepEqual(h.device.notifies, [{ index: 1, data: 5 }]);
  h.notify(4, 4, 0x0005_0001);
  assertNotificationFault(h, 1, 'the index instead of the identifier');
});
