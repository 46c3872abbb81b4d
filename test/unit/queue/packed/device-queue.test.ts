import { test } from 'node:test';
import assert from 'node:assert/strict';
import { QueueFaultError, UsageError, type QueueFaultCode } from '../../../../src/errors.js';
import { ArrayGuestMemory } from '../../../../src/memory/guest-memory.js';
import { PackedQueue } from '../../../../src/queue/packed/device-ring.js';
import { deviceRing } from '../../../../src/queue/rings.js';
import { SplitQueue } from '../../../../src/queue/split/device-ring.js';
import type { DescriptorChain } from '../../../../src/queue/types.js';
import { bit } from '../../../../src/spec/features.js';
import { MockPackedQueue, WRITABLE_FILL } from '../../../../src/testing.js';
import { PD, availBits, readRingDesc, usedDesc } from '../../../helpers/packed-spec.js';

function faults(fn: () => unknown, code: QueueFaultCode, queueIndex = 0): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof QueueFaultError, `expected QueueFaultError, got ${String(e)}`);
    assert.equal(e.code, code);
    assert.equal(e.queueIndex, queueIndex);
    return true;
  });
}

function popped(q: PackedQueue): DescriptorChain {
  const chain = q.pop();
  assert.ok(chain, 'a chain is available');
  return chain;
}

const bytes = (...values: number[]): Uint8Array => Uint8Array.from(values);

test('ring areas are validated once: alignment 16/4/4, inside memory, any size 1..32768', () => {
  const memory = new ArrayGuestMemory(1 << 20);
  const ok = { index: 2, size: 16, memory, desc: 0x1000, driver: 0x2000, device: 0x3000, eventIdx: false, indirect: false };
  assert.ok(new PackedQueue(ok));
  // 2.8.10.1: descriptor ring 16, both event suppression structures 4.
  assert.ok(new PackedQueue({ ...ok, desc: 0x1010, driver: 0x2004, device: 0x3004 }));
  faults(() => new PackedQueue({ ...ok, desc: 0x1008 }), 'ERR_QUEUE_RING_ADDRESS', 2);
  faults(() => new PackedQueue({ ...ok, driver: 0x2002 }), 'ERR_QUEUE_RING_ADDRESS', 2);
  faults(() => new PackedQueue({ ...ok, device: 0x3001 }), 'ERR_QUEUE_RING_ADDRESS', 2);
  // The ring of 16 is 256 bytes; each structure 4: the last byte must be inside memory.
  assert.ok(new PackedQueue({ ...ok, desc: (1 << 20) - 256, driver: (1 << 20) - 4 }));
  faults(() => new PackedQueue({ ...ok, desc: (1 << 20) - 240 }), 'ERR_QUEUE_RING_ADDRESS', 2);
  faults(() => new PackedQueue({ ...ok, device: 1 << 20 }), 'ERR_QUEUE_RING_ADDRESS', 2);
  // 2.8.10.1: "The Queue Size value does not have to be a power of 2."
  for (const size of [1, 3, 7, 100, 32767, 32768]) assert.equal(new PackedQueue({ ...ok, size, desc: 0x10000 }).size, size);
  for (const size of [0, 32769, 1.5, -4]) faults(() => new PackedQueue({ ...ok, size }), 'ERR_QUEUE_RING_ADDRESS', 2);
});

test('the seam builds a PackedQueue with VIRTIO_F_RING_PACKED (bit 34) and a SplitQueue without', () => {
  const memory = new ArrayGuestMemory(1 << 16);
  const areas = { desc: 0x1000, driver: 0x2000, device: 0x3000 };
  assert.ok(deviceRing({ index: 0, size: 8, memory, areas, features: bit(34) }) instanceof PackedQueue);
  assert.ok(deviceRing({ index: 0, size: 8, memory, areas, features: 0n }) instanceof SplitQueue);
  // A size the split ring refuses is a packed queue's right.
  assert.equal(deviceRing({ index: 0, size: 7, memory, areas, features: bit(34) }).size, 7);
});

test('a chain of several descriptors: buffers in order, id from the last one, used descriptor at the spec offsets', () => {
  const m = new MockPackedQueue({ size: 8 });
  const q = m.deviceQueue();
  assert.equal(q.pop(), null);
  assert.equal(q.hasAvailable(), false);
  const id = m.addChain({ readable: [bytes(1, 2, 3), bytes(4, 5)], writable: [4, 6] });
  // The mock puts the id in the last descriptor only (2.8.6); the first carries another.
  assert.equal(readRingDesc(m.memory, m.descAddr, 3).id, id);
  assert.notEqual(readRingDesc(m.memory, m.descAddr, 0).id, id);
  assert.equal(q.hasAvailable(), true);
  const c = popped(q);
  assert.equal(c.head, id);
  assert.equal(c.count, 4);
  assert.equal(c.readable, 2);
  assert.equal(c.readableBytes, 5);
  assert.equal(c.writableBytes, 10);
  const { readable, writable } = m.buffers(id);
  assert.deepEqual(
    [0, 1, 2, 3].map((i) => [c.addr(i), c.len(i)]),
    [...readable, ...writable].map((s) => [s.addr, s.len]),
  );
  assert.deepEqual([...c.view(1)], [4, 5]);
  c.view(2).set([9, 8, 7, 6]); // zero-copy: lands in guest memory
  assert.throws(() => c.len(4), UsageError);
  assert.equal(q.nextAvailIdx, 4);
  assert.equal(q.pop(), null);
  q.pushUsed(id, 4);
  // One used descriptor, in the slot of the chain's first descriptor; the device skips 4 slots.
  const slot0 = readRingDesc(m.memory, m.descAddr, 0);
  assert.deepEqual({ id: slot0.id, len: slot0.len, flags: slot0.flags }, usedDesc(id, 4, 1));
  assert.equal(readRingDesc(m.memory, m.descAddr, 1).flags & (PD.AVAIL | PD.USED), availBits(1), 'slot 1 untouched');
  assert.equal(q.nextUsedIdx, 4);
  assert.deepEqual(m.readUsed(), [{ id, len: 4 }]);
  assert.deepEqual([...m.readWritten(id, 5)], [9, 8, 7, 6, WRITABLE_FILL]);
});

test('a one-descriptor chain, a zero used len (WRITE clear in the used descriptor), and pushUsed misuse', () => {
  const m = new MockPackedQueue({ size: 4 });
  const q = m.deviceQueue();
  faults(() => q.pushUsed(0, 0), 'ERR_QUEUE_USED_OVERFLOW');
  const id = m.addChain({ readable: [bytes(7)] });
  const c = popped(q);
  assert.equal(c.count, 1);
  assert.throws(() => q.pushUsed(id, 1), UsageError, 'no writable bytes');
  q.pushUsed(id, 0);
  const d = readRingDesc(m.memory, m.descAddr, 0);
  assert.deepEqual({ id: d.id, len: d.len, flags: d.flags }, usedDesc(id, 0, 1));
  assert.equal(d.flags & PD.WRITE, 0);
  faults(() => q.pushUsed(id, 0), 'ERR_QUEUE_USED_OVERFLOW');
  faults(() => q.pushUsed(4, 0), 'ERR_QUEUE_USED_OVERFLOW');
  assert.deepEqual(m.readUsed(), [{ id, len: 0 }]);
});

test('a descriptor is taken only once its flags say available for the wrap counter', () => {
  const m = new MockPackedQueue({ size: 4 });
  const q = m.deviceQueue();
  const a = m.alloc(8);
  // Everything but the flags written: not yet available (the zeroed ring, 2.8.13).
  m.setDesc(0, { addr: a, len: 8, id: 2, flags: 0 });
  assert.equal(q.hasAvailable(), false);
  assert.equal(q.pop(), null);
  // AVAIL and USED both set: a used descriptor's pattern, not an available one.
  m.setDesc(0, { addr: a, len: 8, id: 2, flags: PD.AVAIL | PD.USED });
  assert.equal(q.pop(), null);
  // The pattern of wrap counter 0 while the device's is 1.
  m.setDesc(0, { addr: a, len: 8, id: 2, flags: PD.USED });
  assert.equal(q.pop(), null);
  m.setDesc(0, { addr: a, len: 8, id: 2, flags: PD.AVAIL });
  assert.equal(popped(q).head, 2);
  assert.equal(q.nextAvailIdx, 1);
});

test('indirect chains: one descriptor refers to a table of readable then writable buffers (2.8.7)', () => {
  const m = new MockPackedQueue({ size: 4, seed: 3 });
  const q = m.deviceQueue({ indirect: true });
  const id = m.addChain({ readable: [bytes(1), bytes(2, 2)], writable: [3, 4], indirect: true });
  const c = popped(q);
  assert.equal(c.head, id);
  assert.equal(c.count, 4);
  assert.equal(c.readable, 2);
  assert.equal(c.writableBytes, 7);
  assert.deepEqual([...c.view(1)], [2, 2]);
  assert.equal(q.nextAvailIdx, 1, 'an indirect chain takes one ring slot');
  q.pushUsed(id, 7);
  assert.deepEqual(m.readUsed(), [{ id, len: 7 }]);

  // WRITE on the INDIRECT descriptor is ignored; flags other than WRITE in the table are ignored
  // too (NEXT here), and the table's length, not NEXT, says how many entries it has.
  const table = m.alloc(32, 16);
  const r = m.alloc(2);
  const w = m.alloc(5);
  m.writeDesc(table, 0, { addr: r, len: 2, id: 0, flags: PD.NEXT });
  m.writeDesc(table, 1, { addr: w, len: 5, id: 0, flags: PD.WRITE });
  m.publish([{ addr: table, len: 32, id: 3, flags: PD.INDIRECT | PD.WRITE }]);
  const t = popped(q);
  assert.equal(t.head, 3);
  assert.deepEqual(
    [0, 1].map((i) => [t.addr(i), t.len(i)]),
    [
      [r, 2],
      [w, 5],
    ],
  );
  assert.equal(t.readable, 1);
});

test('chains complete out of order: used descriptors go in completion order at the used position, ids come back', () => {
  const m = new MockPackedQueue({ size: 8, seed: 5 });
  const q = m.deviceQueue();
  const ids = [m.addChain({ writable: [4] }), m.addChain({ readable: [bytes(1)], writable: [2] }), m.addChain({ writable: [1] })];
  const chains = ids.map(() => popped(q));
  assert.deepEqual(
    chains.map((c) => c.head),
    ids,
  );
  assert.equal(q.inFlightChains, 3);
  // Complete the 3rd, then the 1st, then the 2nd: slots 0, 1 (skip of the 3rd: 1) and 2 (skip 1).
  q.pushUsed(ids[2]!, 1);
  q.pushUsed(ids[0]!, 3);
  const at = (slot: number) => {
    const d = readRingDesc(m.memory, m.descAddr, slot);
    return { id: d.id, len: d.len, flags: d.flags };
  };
  assert.deepEqual(at(0), usedDesc(ids[2]!, 1, 1));
  assert.deepEqual(at(1), usedDesc(ids[0]!, 3, 1));
  assert.equal(q.nextUsedIdx, 2);
  // The 2nd chain took two slots: its used descriptor at slot 2 makes the device skip 2 and 3.
  q.pushUsed(ids[1]!, 2);
  assert.deepEqual(at(2), usedDesc(ids[1]!, 2, 1));
  assert.equal(q.nextUsedIdx, 4);
  assert.deepEqual(m.readUsed(), [
    { id: ids[2], len: 1 },
    { id: ids[0], len: 3 },
    { id: ids[1], len: 2 },
  ]);
  assert.equal(q.inFlightChains, 0);
  // The ids come back in another order; a held chain keeps its object while others are reused.
  const held = m.addChain({ readable: [bytes(9, 9)] });
  const h = popped(q);
  const seen = new Set<DescriptorChain>();
  for (let k = 0; k < 20; k++) {
    m.addChain({ writable: [1] });
    const c = popped(q);
    assert.notEqual(c, h, 'an object in flight is never handed out again');
    seen.add(c);
    q.pushUsed(c.head, 1);
    m.readUsed();
  }
  assert.ok(seen.size <= q.size, 'chain objects are reused, one per id');
  assert.deepEqual([...h.view(0)], [9, 9]);
  q.pushUsed(held, 0);
  assert.deepEqual(m.readUsed(), [{ id: held, len: 0 }]);
});
