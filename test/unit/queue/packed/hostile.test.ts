import { test } from 'node:test';
import assert from 'node:assert/strict';
import { QueueFaultError, type QueueFaultCode } from '../../../../src/errors.js';
import type { PackedQueue } from '../../../../src/queue/packed/device-ring.js';
import { MockPackedQueue, type PackedDescFields } from '../../../../src/testing.js';
import { PD, EV, availBits } from '../../../helpers/packed-spec.js';
import { PhantomHighMemory } from '../../../helpers/phantom-high-memory.js';

function faults(fn: () => unknown, code: QueueFaultCode): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof QueueFaultError, `expected QueueFaultError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    return true;
  });
}

/**
 * A hostile chain published at the driver's next position must be answered with `code`, twice (no
 * state moved: the chain stays unpopped), and once the same slots hold a valid one-descriptor
 * chain it pops normally.
 */
function faultThenRecover(
  m: MockPackedQueue,
  q: PackedQueue,
  descs: readonly PackedDescFields[],
  code: QueueFaultCode,
  /** Ids the device holds, which the repair must not use. */
  held: readonly number[] = [],
): void {
  const before = { avail: q.nextAvailIdx, wrap: q.availWrapCounter, held: q.inFlightChains };
  const at = m.publish(descs);
  faults(() => q.pop(), code);
  faults(() => q.pop(), code);
  assert.deepEqual({ avail: q.nextAvailIdx, wrap: q.availWrapCounter, held: q.inFlightChains }, before);
  // Repair: the driver rewrites the slot as a valid one-descriptor chain with a free id.
  const id = Array.from({ length: m.size }, (_, i) => i).find((i) => !held.includes(i))!;
  m.setDesc(at, { addr: m.alloc(8), len: 8, id, flags: PD.WRITE | availBits(before.wrap) });
  const c = q.pop();
  assert.ok(c, 'the repaired chain pops');
  assert.equal(c.head, id);
  q.pushUsed(id, 0);
  // Back in step: the driver's position follows the device's (the rest of the hostile chain's slots are skipped).
  m.nextAvail = q.nextAvailIdx;
  m.availWrap = q.availWrapCounter;
}

function ring(size = 8, indirect = true): { m: MockPackedQueue; q: PackedQueue } {
  const m = new MockPackedQueue({ size });
  return { m, q: m.deviceQueue({ indirect }) };
}

test('a chain continuing into a descriptor not marked available is ERR_QUEUE_DESC_NOT_AVAILABLE', () => {
  const { m, q } = ring();
  // NEXT into a slot the driver never wrote (zeroed).
  m.publish([{ addr: m.alloc(4), len: 4, id: 0, flags: PD.NEXT }]);
  faults(() => q.pop(), 'ERR_QUEUE_DESC_NOT_AVAILABLE');
  assert.equal(q.nextAvailIdx, 0);
  // The second descriptor with AVAIL and USED both set (a used descriptor's pattern).
  m.setDesc(1, { addr: m.alloc(4), len: 4, id: 1, flags: PD.AVAIL | PD.USED });
  faults(() => q.pop(), 'ERR_QUEUE_DESC_NOT_AVAILABLE');
  // The second with the other wrap counter's pattern.
  m.setDesc(1, { addr: m.alloc(4), len: 4, id: 1, flags: availBits(0) });
  faults(() => q.pop(), 'ERR_QUEUE_DESC_NOT_AVAILABLE');
  // Made available properly, the chain pops with the id of its last descriptor.
  m.setDesc(1, { addr: m.alloc(4), len: 4, id: 5, flags: availBits(1) });
  const c = q.pop();
  assert.equal(c?.head, 5);
  assert.equal(c.count, 2);
});

test('across the wrap, a chain continuing into slot 0 needs the toggled wrap counter there', () => {
  const { m, q } = ring(4);
  for (let i = 0; i < 3; i++) {
    m.addChain({ writable: [1] });
    q.pushUsed(q.pop()!.head, 1);
  }
  m.readUsed();
  // Slot 3 (wrap 1) with NEXT, then slot 0 which still holds a used descriptor of wrap 1.
  m.publish([{ addr: m.alloc(4), len: 4, id: 0, flags: PD.NEXT }]);
  faults(() => q.pop(), 'ERR_QUEUE_DESC_NOT_AVAILABLE');
  // Slot 0 with wrap 1's available pattern: still wrong, the counter toggled at the end of the ring.
  m.setDesc(0, { addr: m.alloc(4), len: 4, id: 2, flags: availBits(1) });
  faults(() => q.pop(), 'ERR_QUEUE_DESC_NOT_AVAILABLE');
  m.setDesc(0, { addr: m.alloc(4), len: 4, id: 2, flags: availBits(0) });
  const c = q.pop();
  assert.equal(c?.head, 2);
  assert.equal(q.nextAvailIdx, 1);
  assert.equal(q.availWrapCounter, 0);
});

test('a chain running into slots the device holds is ERR_QUEUE_CHAIN_PAST_AVAIL', () => {
  const { m, q } = ring(4);
  const held = m.addChain({ writable: [4] });
  assert.equal(q.pop()?.head, held); // slot 0 now belongs to the device
  // Slots 1, 2, 3 with NEXT: the chain would go on into slot 0.
  const three = [0, 1, 2].map((i) => ({ addr: m.alloc(4), len: 4, id: i + 1, flags: PD.NEXT }));
  faultThenRecover(m, q, three, 'ERR_QUEUE_CHAIN_PAST_AVAIL', [held]);
  // Every slot held: a descriptor made to look available at the device's position is the same fault.
  const { m: m2, q: q2 } = ring(2);
  m2.addChain({ writable: [1] });
  m2.addChain({ writable: [1] });
  q2.pop();
  q2.pop();
  m2.setDesc(0, { addr: m2.alloc(4), len: 4, id: 1, flags: availBits(0) });
  faults(() => q2.pop(), 'ERR_QUEUE_CHAIN_PAST_AVAIL');
});

test('a chain longer than the queue, direct or through an indirect table, is refused', () => {
  const { m, q } = ring(4);
  // Four descriptors in a ring of four, all with NEXT: the fifth would be the first again.
  const four = [0, 1, 2, 3].map(() => ({ addr: m.alloc(4), len: 4, id: 0, flags: PD.NEXT }));
  faultThenRecover(m, q, four, 'ERR_QUEUE_CHAIN_TOO_LONG');
  // An indirect table of 5 entries in a queue of 4 (2.8.17, 2.8.19).
  const table = m.alloc(5 * PD.size, 16);
  for (let i = 0; i < 5; i++) m.writeDesc(table, i, { addr: m.alloc(1), len: 1, id: 0, flags: 0 });
  faultThenRecover(m, q, [{ addr: table, len: 5 * PD.size, id: 1, flags: PD.INDIRECT }], 'ERR_QUEUE_INDIRECT_LENGTH');
  // Exactly the queue size is allowed, direct and indirect.
  const full = m.publish([0, 1, 2, 3].map((i) => ({ addr: m.alloc(1), len: 1, id: 3, flags: i < 3 ? PD.NEXT : 0 })));
  assert.equal(q.pop()?.count, 4);
  assert.equal(q.nextAvailIdx, full);
  q.pushUsed(3, 0);
  m.publish([{ addr: table, len: 4 * PD.size, id: 2, flags: PD.INDIRECT }]);
  assert.equal(q.pop()?.count, 4);
});

test('a chain of more than 2^32 bytes is ERR_QUEUE_CHAIN_TOO_LONG; exactly 2^32 is allowed', () => {
  const m = new MockPackedQueue({ size: 4, memory: new PhantomHighMemory() });
  const q = m.deviceQueue();
  const high = PhantomHighMemory.HIGH;
  m.publish([
    { addr: high, len: 0xffff_ffff, id: 0, flags: PD.NEXT },
    { addr: high, len: 1, id: 1, flags: 0 },
  ]);
  const c = q.pop();
  assert.equal(c?.readableBytes, 2 ** 32);
  q.pushUsed(1, 0);
  faultThenRecover(
    m,
    q,
    [
      { addr: high, len: 0xffff_ffff, id: 0, flags: PD.NEXT },
      { addr: high, len: 2, id: 1, flags: 0 },
    ],
    'ERR_QUEUE_CHAIN_TOO_LONG',
  );
});

test('a buffer id >= queue size is ERR_QUEUE_BUFFER_ID; one in flight is ERR_QUEUE_BUFFER_ID_IN_USE', () => {
  const { m, q } = ring(8);
  faultThenRecover(m, q, [{ addr: m.alloc(4), len: 4, id: 8, flags: 0 }], 'ERR_QUEUE_BUFFER_ID');
  faultThenRecover(m, q, [{ addr: m.alloc(4), len: 4, id: 0xffff, flags: 0 }], 'ERR_QUEUE_BUFFER_ID');
  // Only the last descriptor's id counts: an out-of-range id in the first is ignored (2.8.6).
  m.publish([
    { addr: m.alloc(4), len: 4, id: 0xffff, flags: PD.NEXT },
    { addr: m.alloc(4), len: 4, id: 6, flags: 0 },
  ]);
  assert.equal(q.pop()?.head, 6);
  // Id 6 again while in flight.
  faultThenRecover(m, q, [{ addr: m.alloc(4), len: 4, id: 6, flags: 0 }], 'ERR_QUEUE_BUFFER_ID_IN_USE', [6]);
  q.pushUsed(6, 0);
  m.publish([{ addr: m.alloc(4), len: 4, id: 6, flags: 0 }]);
  assert.equal(q.pop()?.head, 6, 'once used, the id may come again');
});

test('indirect misuse: NEXT with INDIRECT, INDIRECT in a NEXT list, nested tables, bad lengths, unnegotiated', () => {
  const { m, q } = ring(8);
  const table = (entries: number, flags = 0): number => {
    const t = m.alloc(entries * PD.size, 16);
    for (let i = 0; i < entries; i++) m.writeDesc(t, i, { addr: m.alloc(2), len: 2, id: 0, flags });
    return t;
  };
  faultThenRecover(
    m,
    q,
    [
      { addr: table(2), len: 32, id: 0, flags: PD.INDIRECT | PD.NEXT },
      { addr: m.alloc(2), len: 2, id: 1, flags: 0 },
    ],
    'ERR_QUEUE_INDIRECT_WITH_NEXT',
  );
  faultThenRecover(
    m,
    q,
    [
      { addr: m.alloc(2), len: 2, id: 0, flags: PD.NEXT },
      { addr: table(2), len: 32, id: 1, flags: PD.INDIRECT },
    ],
    'ERR_QUEUE_INDIRECT_WITH_NEXT',
  );
  const nested = table(2);
  m.writeDesc(nested, 1, { addr: table(1), len: 16, id: 0, flags: PD.INDIRECT });
  faultThenRecover(m, q, [{ addr: nested, len: 32, id: 0, flags: PD.INDIRECT }], 'ERR_QUEUE_NESTED_INDIRECT');
  for (const len of [0, 8, 24, 33])
    faultThenRecover(m, q, [{ addr: table(3), len, id: 0, flags: PD.INDIRECT }], 'ERR_QUEUE_INDIRECT_LENGTH');
  const { m: m2, q: q2 } = ring(8, false);
  const t2 = m2.alloc(16, 16);
  m2.writeDesc(t2, 0, { addr: m2.alloc(2), len: 2, id: 0, flags: 0 });
  faultThenRecover(m2, q2, [{ addr: t2, len: 16, id: 0, flags: PD.INDIRECT }], 'ERR_QUEUE_INDIRECT_UNNEGOTIATED');
});

test('buffers outside guest memory or wrapping 2^64 are ERR_QUEUE_BUFFER_ADDRESS, in the ring and in a table', () => {
  const { m, q } = ring(8);
  const end = m.memory.end;
  for (const [addr, len] of [
    [0xffff_ffff_ffff_fff0n, 0x20], // wraps 2^64
    [0xffff_ffff_ffff_ffffn, 1],
    [BigInt(end - 4), 8], // runs past the end
    [BigInt(end), 1],
    [2n ** 40n, 1],
  ] as const) {
    faultThenRecover(m, q, [{ addr, len, id: 0, flags: 0 }], 'ERR_QUEUE_BUFFER_ADDRESS');
    const t = m.alloc(32, 16);
    m.writeDesc(t, 0, { addr: m.alloc(2), len: 2, id: 0, flags: 0 });
    m.writeDesc(t, 1, { addr, len, id: 0, flags: PD.WRITE });
    faultThenRecover(m, q, [{ addr: t, len: 32, id: 0, flags: PD.INDIRECT }], 'ERR_QUEUE_BUFFER_ADDRESS');
  }
  // The indirect table itself outside memory.
  faultThenRecover(m, q, [{ addr: end - 16, len: 32, id: 0, flags: PD.INDIRECT }], 'ERR_QUEUE_BUFFER_ADDRESS');
  // A zero-length buffer is accepted, at an address inside memory.
  m.publish([{ addr: m.alloc(1), len: 0, id: 4, flags: 0 }]);
  assert.equal(q.pop()?.len(0), 0);
});

test('a device-readable buffer after a device-writable one is ERR_QUEUE_WRITE_BEFORE_READ', () => {
  const { m, q } = ring(8);
  faultThenRecover(
    m,
    q,
    [
      { addr: m.alloc(2), len: 2, id: 0, flags: PD.WRITE | PD.NEXT },
      { addr: m.alloc(2), len: 2, id: 1, flags: 0 },
    ],
    'ERR_QUEUE_WRITE_BEFORE_READ',
  );
  const t = m.alloc(32, 16);
  m.writeDesc(t, 0, { addr: m.alloc(2), len: 2, id: 0, flags: PD.WRITE });
  m.writeDesc(t, 1, { addr: m.alloc(2), len: 2, id: 0, flags: 0 });
  faultThenRecover(m, q, [{ addr: t, len: 32, id: 0, flags: PD.INDIRECT }], 'ERR_QUEUE_WRITE_BEFORE_READ');
});

test('the reserved value 3 in the driver event suppression flags is ERR_QUEUE_EVENT_FLAGS', () => {
  const { m, q } = ring(4);
  m.addChain({ writable: [1] });
  q.pushUsed(q.pop()!.head, 1);
  m.setDriverEvent(EV.RESERVED);
  faults(() => q.needsInterrupt(), 'ERR_QUEUE_EVENT_FLAGS');
});
