import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { PackedQueue } from '../../../../src/queue/packed/device-ring.js';
import { MockPackedQueue } from '../../../../src/testing.js';
import { EV } from '../../../helpers/packed-spec.js';

/** A chain of `descs` one-byte writable descriptors, made available, popped and used at once. */
function roundTrip(m: MockPackedQueue, q: PackedQueue, descs = 1): void {
  m.addChain({ writable: new Array<number>(descs).fill(1) });
  const c = q.pop();
  assert.ok(c);
  q.pushUsed(c.head, 1);
  m.readUsed();
}

/** The device event suppression structure as raw le16 fields (2.8.14). */
function deviceEvent(m: MockPackedQueue): { desc: number; flags: number } {
  return { desc: m.memory.read16(m.deviceAddr + EV.desc), flags: m.memory.read16(m.deviceAddr + EV.flags) };
}

test('driver event suppression ENABLE and DISABLE: an interrupt for new used descriptors unless disabled', () => {
  const m = new MockPackedQueue({ size: 4 });
  const q = m.deviceQueue();
  assert.equal(q.needsInterrupt(), false, 'nothing used yet');
  roundTrip(m, q); // the structure is zeroed: ENABLE
  assert.equal(q.needsInterrupt(), true);
  assert.equal(q.needsInterrupt(), false, 'nothing new since the last answer');
  m.setDriverEvent(EV.DISABLE);
  roundTrip(m, q);
  assert.equal(q.needsInterrupt(), false);
  m.setDriverEvent(EV.ENABLE);
  assert.equal(q.needsInterrupt(), false, 'the descriptor used while disabled was already answered');
  roundTrip(m, q);
  assert.equal(q.needsInterrupt(), true);
  // DESC is valid only with VIRTIO_F_EVENT_IDX; without it the device does not suppress.
  m.setDriverEvent(EV.DESC, 3, 0);
  roundTrip(m, q);
  assert.equal(q.needsInterrupt(), true);
  // Reserved bits above the two flag bits are ignored.
  m.setDriverEvent(EV.DISABLE | 0x100);
  roundTrip(m, q);
  assert.equal(q.needsInterrupt(), false);
});

test('EVENT_IDX: DESC fires when the used position passes the named offset and wrap counter', () => {
  const m = new MockPackedQueue({ size: 4 });
  const q = m.deviceQueue({ eventIdx: true });
  m.setDriverEvent(EV.DESC, 2, 1);
  roundTrip(m, q); // used descriptor at slot 0
  assert.equal(q.needsInterrupt(), false);
  roundTrip(m, q); // slot 1
  assert.equal(q.needsInterrupt(), false);
  roundTrip(m, q); // slot 2: the event
  assert.equal(q.needsInterrupt(), true);
  roundTrip(m, q); // slot 3: past it
  assert.equal(q.needsInterrupt(), false);
  // Now at slot 0 of wrap 0. An event at (1, wrap 0): a two-descriptor chain used at slot 0 skips
  // over slot 1, and that counts as passing it.
  m.setDriverEvent(EV.DESC, 1, 0);
  roundTrip(m, q, 2);
  assert.equal(q.usedWrapCounter, 0);
  assert.equal(q.needsInterrupt(), true);
  // An event of wrap 1 at offset 3 while the device is at (2, wrap 0): the next lap's slot 3, not this one's.
  m.setDriverEvent(EV.DESC, 3, 1);
  roundTrip(m, q); // slot 2
  roundTrip(m, q); // slot 3 of wrap 0
  assert.equal(q.needsInterrupt(), false);
  for (let slot = 0; slot < 3; slot++) {
    roundTrip(m, q);
    assert.equal(q.needsInterrupt(), false, `slot ${slot} of wrap 1`);
  }
  roundTrip(m, q); // slot 3 of wrap 1
  assert.equal(q.needsInterrupt(), true);
});

test('EVENT_IDX: several used descriptors across the wrap between two answers', () => {
  const m = new MockPackedQueue({ size: 4 });
  const q = m.deviceQueue({ eventIdx: true });
  m.setDriverEvent(EV.DISABLE);
  for (let i = 0; i < 3; i++) roundTrip(m, q);
  assert.equal(q.needsInterrupt(), false);
  // From (3, wrap 1) to (2, wrap 0): slots 3, 0, 1 are written.
  m.setDriverEvent(EV.DESC, 0, 0);
  for (let i = 0; i < 3; i++) roundTrip(m, q);
  assert.equal(q.needsInterrupt(), true, 'slot 0 of wrap 0 was passed');
  m.setDriverEvent(EV.DESC, 1, 0);
  for (let i = 0; i < 3; i++) roundTrip(m, q); // slots 2, 3 of wrap 0 and 0 of wrap 1
  assert.equal(q.needsInterrupt(), false, 'slot 1 of wrap 0 was behind the device');
  // A whole lap and more since the last answer passes every event.
  m.setDriverEvent(EV.DISABLE);
  q.needsInterrupt();
  m.setDriverEvent(EV.DESC, 3, 0);
  for (let i = 0; i < 9; i++) roundTrip(m, q);
  assert.equal(q.needsInterrupt(), true);
  // An offset outside the ring names no descriptor.
  m.setDriverEvent(EV.DESC, 4, 1);
  for (let i = 0; i < 9; i++) roundTrip(m, q);
  assert.equal(q.needsInterrupt(), false);
});

test('device event suppression: DISABLE and ENABLE, or DESC at the next available position with EVENT_IDX', () => {
  const plain = new MockPackedQueue({ size: 4 });
  const p = plain.deviceQueue();
  p.setNotification(false);
  assert.equal(deviceEvent(plain).flags, EV.DISABLE);
  p.setNotification(true);
  assert.equal(deviceEvent(plain).flags, EV.ENABLE);

  const m = new MockPackedQueue({ size: 3 });
  const q = m.deviceQueue({ eventIdx: true });
  q.setNotification(true);
  // desc: offset in bits 0-14, wrap counter in bit 15.
  assert.deepEqual(deviceEvent(m), { desc: 0 | (1 << 15), flags: EV.DESC });
  roundTrip(m, q, 2);
  assert.deepEqual(deviceEvent(m), { desc: 2 | (1 << 15), flags: EV.DESC }, 'pop keeps the event at the next position');
  roundTrip(m, q, 2); // slots 2 and 0: the device's counter toggles
  assert.deepEqual(deviceEvent(m), { desc: 1 | (0 << 15), flags: EV.DESC });
  q.setNotification(false);
  assert.equal(deviceEvent(m).flags, EV.DISABLE);
  roundTrip(m, q);
  assert.deepEqual(deviceEvent(m), { desc: 1, flags: EV.DISABLE }, 'not updated while disabled');
  q.setNotification(true);
  assert.deepEqual(deviceEvent(m), { desc: 2, flags: EV.DESC });
});
