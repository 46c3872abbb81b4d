// The notification value of VIRTIO_F_NOTIFICATION_DATA (2.9, 4.1.5.2: le32 { vqn : 16; next_off : 15;
// next_wrap : 1 }) and which `next` values each ring format allows.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { notificationNext, notificationValue, notificationVqn } from '../../../src/queue/notification-data.js';
import { PACKED_RING, SPLIT_RING } from '../../../src/queue/ring-format.js';

test('the value: vqn in bits 0-15, next in bits 16-31, unsigned; each field taken apart again', () => {
  assert.equal(notificationValue(2, 0x8003), 0x8003_0002);
  assert.equal(notificationValue(0xffff, 0xffff), 0xffff_ffff);
  assert.equal(notificationValue(0x1_0005, 0x1_0007), 0x0007_0005, 'fields are 16 bits wide');
  for (const value of [0, 1, 0x8000_0000, 0x1234_5678, 0xffff_ffff]) {
    assert.equal(notificationValue(notificationVqn(value), notificationNext(value)), value);
  }
  assert.equal(notificationNext(0x8003_0002), 0x8003);
  assert.equal(notificationVqn(0x8003_0002), 2);
});

test('split ring: every 16-bit next is possible (a late notification may name an index the device passed)', () => {
  for (const next of [0, 1, 8, 0x7fff, 0x8000, 0xffff]) assert.equal(SPLIT_RING.isNotificationNext(next, 8), true);
});

test('packed ring: next_off (bits 0-14 of next) must lie inside the descriptor ring; the wrap bit may be either', () => {
  assert.equal(PACKED_RING.isNotificationNext(0, 8), true);
  assert.equal(PACKED_RING.isNotificationNext(7, 8), true);
  assert.equal(PACKED_RING.isNotificationNext(0x8007, 8), true);
  assert.equal(PACKED_RING.isNotificationNext(8, 8), false);
  assert.equal(PACKED_RING.isNotificationNext(0x8008, 8), false);
  assert.equal(PACKED_RING.isNotificationNext(0x7fff, 0x8000), true);
  assert.equal(PACKED_RING.isNotificationNext(100, 100), false, 'any size, not only powers of 2');
});
