import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MockQueue, WRITABLE_FILL } from '../../../src/testing/mock-queue.js';
import { QueueFaultError, UsageError, type QueueFaultCode } from '../../../src/errors.js';
import { ArrayGuestMemory, RegionGuestMemory, type GuestMemory } from '../../../src/memory/guest-memory.js';
import { SplitQueue } from '../../../src/queue/split/device-ring.js';
import type { DescriptorChain } from '../../../src/queue/types.js';
import { PhantomHighMemory } from '../../helpers/phantom-high-memory.js';
import {
  VIRTQ_DESC_F_INDIRECT,
  VIRTQ_DESC_F_NEXT,
  VIRTQ_DESC_F_WRITE,
  VIRTQ_AVAIL_F_NO_INTERRUPT,
  VIRTQ_USED_F_NO_NOTIFY,
} from '../../../src/spec/ring.js';

const NEXT = VIRTQ_DESC_F_NEXT;
const WRITE = VIRTQ_DESC_F_WRITE;
const INDIRECT = VIRTQ_DESC_F_INDIRECT;

function faults(fn: () => unknown, code: QueueFaultCode, queueIndex = 0): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof QueueFaultError, `expected QueueFaultError, got ${String(e)}`);
    assert.equal(e.code, code);
    assert.equal(e.queueIndex, queueIndex);
    return true;
  });
}

function popped(q: SplitQueue): DescriptorChain {
  const chain = q.pop();
  assert.ok(chain, 'a chain is available');
  return chain;
}

const bytes = (...values: number[]): Uint8Array => Uint8Array.from(values);

/**
 * A hostile ring: the mock's own descriptors are overwritten by hand, the head published, and the
 * queue must answer `code`, leave last_avail_idx where it was, then (once `repair` puts a valid
 * chain at the same head) pop it normally: nothing was left half-done.
 */
function faultThenRecover(q: SplitQueue, code: QueueFaultCode, repair: () => void): void {
  const before = q.lastAvailIdx;
  faults(() => q.pop(), code);
  faults(() => q.pop(), code); // the same answer again: no state moved
  assert.equal(q.lastAvailIdx, before);
  assert.equal(q.inFlightChains, 0);
  repair();
  const chain = popped(q);
  q.pushUsed(chain.head, 0);
  assert.equal(q.lastAvailIdx, (before + 1) & 0xffff);
}

/** A valid one-buffer chain at descriptor `id` (the repair for faultThenRecover). */
function validAt(m: MockQueue, id: number): void {
  m.setDesc(id, { addr: m.alloc(8), len: 8, flags: 0, next: 0 });
}

test('ring addresses are validated once: alignment 16/2/4, inside memory, size a power of two <= 32768', () => {
  const memory = new ArrayGuestMemory(1 << 20);
  const ok = { index: 3, size: 16, memory, desc: 0x1000, driver: 0x2000, device: 0x3000, eventIdx: false, indirect: false };
  assert.ok(new SplitQueue(ok));
  // Minimum alignments exactly (2.7): 16, 2, 4.
  assert.ok(new SplitQueue({ ...ok, desc: 0x1010, driver: 0x2002, device: 0x3004 }));
  faults(() => new SplitQueue({ ...ok, desc: 0x1008 }), 'ERR_QUEUE_RING_ADDRESS', 3);
  faults(() => new SplitQueue({ ...ok, driver: 0x2001 }), 'ERR_QUEUE_RING_ADDRESS', 3);
  faults(() => new SplitQueue({ ...ok, device: 0x3002 }), 'ERR_QUEUE_RING_ADDRESS', 3);
  // The used ring of size 16 is 6 + 8*16 = 134 bytes: the last byte must be inside memory.
  assert.ok(new SplitQueue({ ...ok, device: (1 << 20) - 136 }));
  faults(() => new SplitQueue({ ...ok, device: (1 << 20) - 132 }), 'ERR_QUEUE_RING_ADDRESS', 3);
  faults(() => new SplitQueue({ ...ok, desc: 2 ** 32 }), 'ERR_QUEUE_RING_ADDRESS', 3);
  for (const size of [0, 3, 48, 65536, 1.5]) faults(() => new SplitQueue({ ...ok, size }), 'ERR_QUEUE_RING_ADDRESS', 3);
  assert.ok(new SplitQueue({ ...ok, memory: new ArrayGuestMemory(1 << 20), size: 32768, desc: 0, driver: 0x80000, device: 0x90000 }));
});

test('a chain: readable then writable buffers, lengths, zero-copy views, used element at the spec offsets', () => {
  const m = new MockQueue({ size: 8 });
  const q = m.deviceQueue();
  assert.equal(q.pop(), null);
  assert.equal(q.hasAvailable(), false);
  const head = m.addChain({ readable: [bytes(1, 2, 3), bytes(4, 5)], writable: [4, 6] });
  assert.equal(q.hasAvailable(), true);
  const c = popped(q);
  assert.equal(c.head, head);
  assert.equal(c.count, 4);
  assert.equal(c.readable, 2);
  assert.equal(c.readableBytes, 5);
  assert.equal(c.writableBytes, 10);
  const { readable, writable } = m.buffers(head);
  assert.deepEqual(
    [0, 1, 2, 3].map((i) => [c.addr(i), c.len(i)]),
    [...readable, ...writable].map((s) => [s.addr, s.len]),
  );
  assert.deepEqual([...c.view(0)], [1, 2, 3]);
  assert.deepEqual([...c.view(1)], [4, 5]);
  c.view(2).set([9, 8, 7, 6]); // zero-copy: lands in guest memory
  assert.throws(() => c.addr(4), UsageError);
  assert.throws(() => c.view(-1), UsageError);
  q.pushUsed(head, 4);
  // struct virtq_used: flags @0, idx @2, ring[0] @4 = { le32 id; le32 len; }.
  assert.equal(m.memory.read16(m.usedAddr + 2), 1);
  assert.equal(m.memory.read32(m.usedAddr + 4), head);
  assert.equal(m.memory.read32(m.usedAddr + 8), 4);
  assert.deepEqual(m.readUsed(), [{ id: head, len: 4 }]);
  assert.deepEqual([...m.readWritten(head, 5)], [9, 8, 7, 6, WRITABLE_FILL]);
  assert.equal(q.pop(), null);
  assert.equal(q.usedIdx, 1);
  assert.equal(q.lastAvailIdx, 1);
});

test('pushUsed: a head not in flight is ERR_QUEUE_USED_OVERFLOW, a len beyond the writable bytes a UsageError', () => {
  const m = new MockQueue({ size: 4 });
  const q = m.deviceQueue();
  faults(() => q.pushUsed(0, 0), 'ERR_QUEUE_USED_OVERFLOW');
  const head = m.addChain({ writable: [8] });
  const c = popped(q);
  assert.throws(() => q.pushUsed(c.head, 9), UsageError);
  assert.throws(() => q.pushUsed(c.head, -1), UsageError);
  q.pushUsed(head, 8);
  faults(() => q.pushUsed(head, 0), 'ERR_QUEUE_USED_OVERFLOW');
  faults(() => q.pushUsed(99, 0), 'ERR_QUEUE_USED_OVERFLOW');
  assert.equal(q.usedIdx, 1);
});

test('chains stay valid while held (async devices) and complete out of order; a head that comes back reuses its object', () => {
  const m = new MockQueue({ size: 8, seed: 7 });
  const q = m.deviceQueue();
  const heads = [0, 1, 2].map((i) => m.addChain({ readable: [bytes(i, i, i)], writable: [1] }));
  const chains = [popped(q), popped(q), popped(q)];
  assert.equal(q.inFlightChains, 3);
  assert.deepEqual(
    chains.map((c) => c.head),
    heads,
  );
  q.pushUsed(chains[1]!.head, 1);
  m.addChain({ readable: [bytes(7)], writable: [1] });
  const fourth = popped(q);
  assert.ok(fourth !== chains[0] && fourth !== chains[2], 'an object in flight is never handed out again');
  // The chains still held are untouched by the later pops.
  assert.deepEqual([...chains[0]!.view(0)], [0, 0, 0]);
  assert.deepEqual([...chains[2]!.view(0)], [2, 2, 2]);
  q.pushUsed(chains[2]!.head, 0);
  q.pushUsed(chains[0]!.head, 1);
  q.pushUsed(fourth.head, 1);
  assert.deepEqual(
    m.readUsed().map((u) => u.id),
    [heads[1], heads[2], heads[0], fourth.head],
  );
  // No allocation per pop: once a head is popped again, its chain object is the one it had before.
  const byHead = new Map<number, DescriptorChain>([chains[0]!, chains[1]!, chains[2]!, fourth].map((c) => [c.head, c]));
  let reused = 0;
  for (let k = 0; k < 16; k++) {
    m.addChain({ writable: [1] });
    const c = popped(q);
    const before = byHead.get(c.head);
    if (before !== undefined) {
      assert.equal(c, before, `head ${c.head} came back with a new object`);
      reused++;
    }
    byHead.set(c.head, c);
    q.pushUsed(c.head, 0);
    m.readUsed(); // frees the chain's descriptor for a later one
  }
  assert.ok(reused > 0, 'no head came back in 16 chains');
});

test('the same head made available twice while in flight is ERR_QUEUE_HEAD_IN_USE', () => {
  const m = new MockQueue({ size: 8 });
  const q = m.deviceQueue();
  const head = m.addChain({ writable: [4] });
  popped(q);
  m.pushAvail(head);
  faults(() => q.pop(), 'ERR_QUEUE_HEAD_IN_USE');
  q.pushUsed(head, 0);
  assert.equal(popped(q).head, head, 'once used, the head may come again');
});

test('indirect chains, and direct descriptors followed by an indirect one (2.7.5.3.2)', () => {
  const m = new MockQueue({ size: 8, seed: 3 });
  const q = m.deviceQueue({ indirect: true });
  const head = m.addChain({ readable: [bytes(1), bytes(2, 2)], writable: [3, 4], indirect: true });
  const c = popped(q);
  assert.equal(c.head, head);
  assert.equal(c.count, 4);
  assert.equal(c.readable, 2);
  assert.equal(c.writableBytes, 7);
  assert.deepEqual([...c.view(1)], [2, 2]);
  q.pushUsed(head, 7);

  // Descriptor 5 (readable) -> 6 (refers to a table; its WRITE flag is to be ignored) -> table [readable, writable].
  const table = m.alloc(32, 16);
  const a = m.alloc(2);
  const b = m.alloc(3);
  const w = m.alloc(4);
  m.writeDesc(table, 0, { addr: b, len: 3, flags: NEXT, next: 1 });
  m.writeDesc(table, 1, { addr: w, len: 4, flags: WRITE, next: 0 });
  m.setDesc(5, { addr: a, len: 2, flags: NEXT, next: 6 });
  m.setDesc(6, { addr: table, len: 32, flags: INDIRECT | WRITE, next: 0 });
  m.pushAvail(5);
  const mixed = popped(q);
  assert.deepEqual(
    [0, 1, 2].map((i) => [mixed.addr(i), mixed.len(i)]),
    [
      [a, 2],
      [b, 3],
      [w, 4],
    ],
  );
  assert.equal(mixed.readable, 2);
  assert.equal(mixed.writableBytes, 4);
});

test('long chains grow the chain storage; a chain of exactly queue size buffers is accepted', () => {
  const m = new MockQueue({ size: 16 });
  const q = m.deviceQueue({ indirect: true });
  const lens = Array.from({ length: 16 }, (_, i) => i + 1);
  m.addChain({ writable: lens });
  const c = popped(q);
  assert.equal(c.count, 16);
  assert.deepEqual(
    Array.from({ length: 16 }, (_, i) => c.len(i)),
    lens,
  );
  q.pushUsed(c.head, 0);
  m.readUsed();
  m.addChain({ readable: lens.map((n) => new Uint8Array(n)), indirect: true });
  assert.equal(popped(q).count, 16);
});

test("a head's chains alternate between the queue's shared slots (up to 4 buffers) and arrays of their own, every held chain intact", () => {
  const m = new MockQueue({ size: 16, seed: 11 });
  const q = m.deviceQueue({ indirect: true });
  // Chains of 1 to 7 buffers, two held at a time, so that heads come back with a length on the
  // other side of the slots' 4 than before, and one chain is read after the other was popped.
  const held: { chain: DescriptorChain; lens: number[] }[] = [];
  for (let k = 0; k < 40; k++) {
    const n = 1 + ((k * 3) % 7);
    const lens = Array.from({ length: n }, (_, i) => 100 * k + i + 1);
    m.addChain({ writable: lens, indirect: k % 5 === 4 });
    held.push({ chain: popped(q), lens });
    for (const h of held)
      assert.deepEqual(
        Array.from({ length: h.chain.count }, (_, i) => h.chain.len(i)),
        h.lens,
        `chain of ${h.lens.length} buffers after pop ${k}`,
      );
    if (held.length === 2) {
      const done = held.shift()!;
      q.pushUsed(done.chain.head, 0);
      m.readUsed();
    }
  }
});

test('zero-length buffers are accepted at mapped addresses (the spec does not forbid them)', () => {
  const m = new MockQueue({ size: 4 });
  const q = m.deviceQueue();
  const head = m.addChain({ readable: [new Uint8Array(0)], writable: [0] });
  const c = popped(q);
  assert.equal(c.count, 2);
  assert.equal(c.view(0).byteLength, 0);
  q.pushUsed(head, 0);
  m.setDesc(0, { addr: m.memory.end, len: 0, flags: 0, next: 0 });
  m.pushAvail(0);
  assert.equal(popped(q).len(0), 0, 'an empty buffer at the end of memory is in range');
  m.setDesc(1, { addr: m.memory.end + 1, len: 0, flags: 0, next: 0 });
  m.pushAvail(1);
  faults(() => q.pop(), 'ERR_QUEUE_BUFFER_ADDRESS');
});

test('loops: a descriptor chain that comes back on itself ends as ERR_QUEUE_CHAIN_TOO_LONG', () => {
  const m = new MockQueue({ size: 8 });
  const q = m.deviceQueue({ indirect: true });
  m.setDesc(0, { addr: m.alloc(4), len: 4, flags: NEXT, next: 1 });
  m.setDesc(1, { addr: m.alloc(4), len: 4, flags: NEXT, next: 0 });
  m.pushAvail(0);
  faultThenRecover(q, 'ERR_QUEUE_CHAIN_TOO_LONG', () => validAt(m, 0));
  // A descriptor naming itself.
  m.setDesc(2, { addr: m.alloc(4), len: 4, flags: NEXT, next: 2 });
  m.pushAvail(2);
  faultThenRecover(q, 'ERR_QUEUE_CHAIN_TOO_LONG', () => validAt(m, 2));
  // A loop inside an indirect table.
  const table = m.alloc(48, 16);
  for (let i = 0; i < 3; i++) m.writeDesc(table, i, { addr: m.alloc(4), len: 4, flags: NEXT, next: (i + 1) % 3 });
  m.setDesc(3, { addr: table, len: 48, flags: INDIRECT, next: 0 });
  m.pushAvail(3);
  faultThenRecover(q, 'ERR_QUEUE_CHAIN_TOO_LONG', () => validAt(m, 3));
});

test('too long: more buffers than the queue size, or more than 2^32 bytes, is ERR_QUEUE_CHAIN_TOO_LONG', () => {
  const m = new MockQueue({ size: 8 });
  const q = m.deviceQueue({ indirect: true });
  // A direct readable buffer, then an indirect table of 8: 9 buffers in a queue of 8.
  const table = m.alloc(8 * 16, 16);
  for (let i = 0; i < 8; i++) m.writeDesc(table, i, { addr: m.alloc(1), len: 1, flags: i < 7 ? NEXT : 0, next: i + 1 });
  m.setDesc(0, { addr: m.alloc(1), len: 1, flags: NEXT, next: 1 });
  m.setDesc(1, { addr: table, len: 8 * 16, flags: INDIRECT, next: 0 });
  m.pushAvail(0);
  faultThenRecover(q, 'ERR_QUEUE_CHAIN_TOO_LONG', () => validAt(m, 0));

  // 2.7.4: at most 2^32 bytes in a chain. Needs memory holding > 4 GiB of buffers: a phantom
  // region the queue never touches (contains() only) above the real one.
  const phantom = new PhantomHighMemory();
  const ring = new MockQueue({ size: 4, memory: phantom });
  const big = ring.deviceQueue();
  ring.setDesc(0, { addr: PhantomHighMemory.HIGH, len: 0xffff_ffff, flags: NEXT, next: 1 });
  ring.setDesc(1, { addr: PhantomHighMemory.HIGH, len: 1, flags: 0, next: 0 });
  ring.pushAvail(0);
  const exactly = popped(big);
  assert.equal(exactly.readableBytes, 2 ** 32, 'exactly 2^32 bytes is allowed');
  big.pushUsed(0, 0);
  ring.setDesc(1, { addr: PhantomHighMemory.HIGH, len: 2, flags: 0, next: 0 });
  ring.pushAvail(0);
  faults(() => big.pop(), 'ERR_QUEUE_CHAIN_TOO_LONG');
});

test('next outside the table is ERR_QUEUE_DESC_INDEX, in the ring and in an indirect table', () => {
  const m = new MockQueue({ size: 8 });
  const q = m.deviceQueue({ indirect: true });
  m.setDesc(4, { addr: m.alloc(4), len: 4, flags: NEXT, next: 8 });
  m.pushAvail(4);
  faultThenRecover(q, 'ERR_QUEUE_DESC_INDEX', () => validAt(m, 4));
  const table = m.alloc(32, 16);
  m.writeDesc(table, 0, { addr: m.alloc(4), len: 4, flags: NEXT, next: 2 }); // the table has 2 entries
  m.setDesc(5, { addr: table, len: 32, flags: INDIRECT, next: 0 });
  m.pushAvail(5);
  faultThenRecover(q, 'ERR_QUEUE_DESC_INDEX', () => validAt(m, 5));
});

test('a head outside the table is ERR_QUEUE_HEAD_INDEX', () => {
  const m = new MockQueue({ size: 8 });
  const q = m.deviceQueue();
  m.pushAvail(8);
  faultThenRecover(q, 'ERR_QUEUE_HEAD_INDEX', () => {
    validAt(m, 7);
    m.setAvailRing(0, 7);
  });
  m.pushAvail(0xffff);
  faults(() => q.pop(), 'ERR_QUEUE_HEAD_INDEX');
});

test('avail idx more than queue size ahead of used idx, or moving backwards, is ERR_QUEUE_AVAIL_INDEX', () => {
  const m = new MockQueue({ size: 8 });
  const q = m.deviceQueue();
  m.setAvailIdx(9);
  faults(() => q.hasAvailable(), 'ERR_QUEUE_AVAIL_INDEX');
  faults(() => q.pop(), 'ERR_QUEUE_AVAIL_INDEX');
  m.setAvailIdx(0xffff); // "-1": far ahead, or backwards
  faults(() => q.pop(), 'ERR_QUEUE_AVAIL_INDEX');
  // Exactly size outstanding is fine; popping them all and completing none keeps the limit.
  for (let i = 0; i < 8; i++) validAt(m, i);
  m.setAvailIdx(0);
  for (let i = 0; i < 8; i++) m.pushAvail(i);
  for (let i = 0; i < 8; i++) popped(q);
  m.setAvailIdx(9);
  faults(() => q.pop(), 'ERR_QUEUE_AVAIL_INDEX');
  q.pushUsed(0, 0);
  m.setAvailRing(0, 0);
  assert.equal(popped(q).head, 0, 'one used, one more may be outstanding');
  // Backwards past last_avail_idx.
  m.setAvailIdx(5);
  faults(() => q.hasAvailable(), 'ERR_QUEUE_AVAIL_INDEX');
});

test('indirect faults: nested, bad length, with NEXT, not negotiated, table outside memory', () => {
  const m = new MockQueue({ size: 8 });
  const q = m.deviceQueue({ indirect: true });
  const inner = m.alloc(16, 16);
  m.writeDesc(inner, 0, { addr: m.alloc(4), len: 4, flags: 0, next: 0 });
  const outer = m.alloc(16, 16);
  m.writeDesc(outer, 0, { addr: inner, len: 16, flags: INDIRECT, next: 0 });
  m.setDesc(0, { addr: outer, len: 16, flags: INDIRECT, next: 0 });
  m.pushAvail(0);
  faultThenRecover(q, 'ERR_QUEUE_NESTED_INDIRECT', () => validAt(m, 0));

  for (const len of [0, 24, 8, 9 * 16]) {
    m.setDesc(1, { addr: m.alloc(len, 16), len, flags: INDIRECT, next: 0 });
    m.pushAvail(1);
    faultThenRecover(q, 'ERR_QUEUE_INDIRECT_LENGTH', () => validAt(m, 1));
  }

  m.setDesc(2, { addr: inner, len: 16, flags: INDIRECT | NEXT, next: 3 });
  validAt(m, 3);
  m.pushAvail(2);
  faultThenRecover(q, 'ERR_QUEUE_INDIRECT_WITH_NEXT', () => validAt(m, 2));

  m.setDesc(4, { addr: m.memory.end - 16, len: 32, flags: INDIRECT, next: 0 });
  m.pushAvail(4);
  faultThenRecover(q, 'ERR_QUEUE_BUFFER_ADDRESS', () => validAt(m, 4));

  const plain = new MockQueue({ size: 8 });
  const noIndirect = plain.deviceQueue({ indirect: false });
  plain.setDesc(0, { addr: inner, len: 16, flags: INDIRECT, next: 0 });
  plain.pushAvail(0);
  faultThenRecover(noIndirect, 'ERR_QUEUE_INDIRECT_UNNEGOTIATED', () => validAt(plain, 0));
});

test('buffer addresses: outside memory, straddling its end, wrapping 2^64, never truncated to 32 bits', () => {
  const m = new MockQueue({ size: 8, memSize: 1 << 20 });
  const q = m.deviceQueue();
  const end = m.memory.end;
  const cases: { addr: number | bigint; len: number }[] = [
    { addr: end, len: 1 }, // just past the end
    { addr: end - 8, len: 16 }, // straddling the end
    { addr: 0x1_0000_0100, len: 16 }, // 4 GiB + 0x100: the low alias 0x100 is valid memory
    { addr: 0xffff_ffff_ffff_fff0n, len: 0x20 }, // wraps 2^64 to 0x10
    { addr: 0xffff_ffff_ffff_ffffn, len: 1 },
    { addr: 0x8000_0000_0000_0000n, len: 0 },
    { addr: 0, len: 0xffff_ffff }, // a 4 GiB buffer
  ];
  for (const { addr, len } of cases) {
    m.setDesc(0, { addr, len, flags: WRITE, next: 0 });
    m.pushAvail(0);
    faultThenRecover(q, 'ERR_QUEUE_BUFFER_ADDRESS', () => validAt(m, 0));
  }
  // The bad buffer later in a chain, after a good one.
  m.setDesc(1, { addr: m.alloc(4), len: 4, flags: NEXT, next: 2 });
  m.setDesc(2, { addr: end - 1, len: 2, flags: WRITE, next: 0 });
  m.pushAvail(1);
  faultThenRecover(q, 'ERR_QUEUE_BUFFER_ADDRESS', () => validAt(m, 1));
});

test('a device-readable buffer after a device-writable one is ERR_QUEUE_WRITE_BEFORE_READ', () => {
  const m = new MockQueue({ size: 8 });
  const q = m.deviceQueue({ indirect: true });
  m.setDesc(0, { addr: m.alloc(4), len: 4, flags: WRITE | NEXT, next: 1 });
  m.setDesc(1, { addr: m.alloc(4), len: 4, flags: 0, next: 0 });
  m.pushAvail(0);
  faultThenRecover(q, 'ERR_QUEUE_WRITE_BEFORE_READ', () => validAt(m, 0));
  // Across the switch into an indirect table: writable direct, then a readable table entry.
  const table = m.alloc(16, 16);
  m.writeDesc(table, 0, { addr: m.alloc(4), len: 4, flags: 0, next: 0 });
  m.setDesc(2, { addr: m.alloc(4), len: 4, flags: WRITE | NEXT, next: 3 });
  m.setDesc(3, { addr: table, len: 16, flags: INDIRECT, next: 0 });
  m.pushAvail(2);
  faultThenRecover(q, 'ERR_QUEUE_WRITE_BEFORE_READ', () => validAt(m, 2));
});

test('16-bit indices wrap: avail and used idx cross 0xffff -> 0 with the ring slots following', () => {
  const m = new MockQueue({ size: 4, memSize: 1 << 16 });
  const q = m.deviceQueue();
  for (let i = 0; i < 0xfffd; i++) {
    m.addChain({ readable: [bytes(1)] });
    q.pushUsed(popped(q).head, 0);
    m.readUsed();
  }
  assert.equal(q.usedIdx, 0xfffd);
  assert.equal(q.lastAvailIdx, 0xfffd);
  const heads = [0, 1, 2, 3].map(() => m.addChain({ writable: [2] }));
  assert.equal(m.availIdx, 1, 'avail idx wrapped');
  // Four outstanding across the wrap (0xfffd..0x0000) is the limit; a fifth is a fault.
  m.setAvailIdx(2);
  faults(() => q.pop(), 'ERR_QUEUE_AVAIL_INDEX');
  m.setAvailIdx(1);
  const chains = heads.map(() => popped(q));
  assert.deepEqual(
    chains.map((c) => c.head),
    heads,
  );
  for (const c of chains) q.pushUsed(c.head, c.writableBytes);
  assert.equal(q.usedIdx, 1);
  assert.equal(q.lastAvailIdx, 1);
  // used idx 0xfffd, 0xfffe, 0xffff, 0x0000 go to slots 1, 2, 3, 0 (idx mod 4).
  assert.equal(m.memory.read32(m.usedAddr + 4 + 8 * 1), heads[0]);
  assert.equal(m.memory.read32(m.usedAddr + 4 + 8 * 0), heads[3]);
  assert.deepEqual(
    m.readUsed(),
    heads.map((id) => ({ id, len: 2 })),
  );
  assert.equal(q.pop(), null);
});

test('used buffer notifications: VIRTQ_AVAIL_F_NO_INTERRUPT without EVENT_IDX', () => {
  const m = new MockQueue({ size: 8 });
  const q = m.deviceQueue();
  assert.equal(q.needsInterrupt(), false, 'nothing used yet');
  m.addChain({ writable: [1] });
  q.pushUsed(popped(q).head, 1);
  assert.equal(q.needsInterrupt(), true);
  assert.equal(q.needsInterrupt(), false, 'nothing new since the last call');
  m.setAvailFlags(VIRTQ_AVAIL_F_NO_INTERRUPT);
  m.readUsed();
  m.addChain({ writable: [1] });
  q.pushUsed(popped(q).head, 1);
  assert.equal(q.needsInterrupt(), false);
  m.setUsedEvent(0xffff); // ignored without EVENT_IDX
  m.setAvailFlags(0);
  m.readUsed();
  m.addChain({ writable: [1] });
  q.pushUsed(popped(q).head, 1);
  assert.equal(q.needsInterrupt(), true);
});

test('used buffer notifications with EVENT_IDX: interrupt when used idx passes used_event, flags ignored', () => {
  const m = new MockQueue({ size: 8 });
  const q = m.deviceQueue({ eventIdx: true });
  m.setAvailFlags(VIRTQ_AVAIL_F_NO_INTERRUPT); // 2.7.7.2: the device ignores the flag with EVENT_IDX
  m.setUsedEvent(2); // interrupt once the entry at used index 2 is written (idx reaches 3)
  const use = (n: number): void => {
    for (let i = 0; i < n; i++) m.addChain({ writable: [1] });
    for (let i = 0; i < n; i++) q.pushUsed(popped(q).head, 0);
    m.readUsed();
  };
  use(1); // idx 0 -> 1
  assert.equal(q.needsInterrupt(), false);
  use(1); // 1 -> 2
  assert.equal(q.needsInterrupt(), false);
  use(2); // 2 -> 4 crosses 2
  assert.equal(q.needsInterrupt(), true);
  use(1);
  assert.equal(q.needsInterrupt(), false, 'already signalled for 2');
  m.setUsedEvent(5); // exactly the entry just written: 5 -> 6
  use(1);
  assert.equal(q.needsInterrupt(), true);
});

test('available buffer notifications: VIRTQ_USED_F_NO_NOTIFY, or avail_event with EVENT_IDX', () => {
  const m = new MockQueue({ size: 8 });
  const q = m.deviceQueue();
  assert.equal(m.usedFlags, 0);
  q.setNotification(false);
  assert.equal(m.usedFlags, VIRTQ_USED_F_NO_NOTIFY);
  q.setNotification(true);
  assert.equal(m.usedFlags, 0);

  const e = new MockQueue({ size: 8 });
  const eq = e.deviceQueue({ eventIdx: true });
  e.addChain({ writable: [1] });
  e.addChain({ writable: [1] });
  popped(eq);
  assert.equal(e.availEvent, 2, 'reading avail idx 2 asks for a notification when entry 2 is added');
  eq.setNotification(false);
  assert.equal(e.usedFlags, 0, '2.7.10: flags stay 0 with EVENT_IDX');
  e.addChain({ writable: [1] });
  popped(eq);
  popped(eq);
  assert.equal(e.availEvent, 2, 'not updated while notifications are off');
  eq.setNotification(true);
  assert.equal(e.availEvent, 3);
  assert.equal(e.usedFlags, 0);
});

test('addresses above 4 GiB and memory made of regions', () => {
  const high = new MockQueue({ size: 8, base: 0x1_0000_0000 });
  const q = high.deviceQueue({ indirect: true });
  const head = high.addChain({ readable: [bytes(5, 6)], writable: [3], indirect: true });
  const c = popped(q);
  assert.ok(c.addr(0) > 0x1_0000_0000);
  assert.deepEqual([...c.view(0)], [5, 6]);
  q.pushUsed(head, 3);
  high.setDesc(0, { addr: 0x100, len: 4, flags: 0, next: 0 }); // the low alias: not memory here
  high.pushAvail(0);
  faults(() => q.pop(), 'ERR_QUEUE_BUFFER_ADDRESS');

  // Low RAM, a middle region and high RAM with gaps between.
  const low = new ArrayGuestMemory(0x10000, 0);
  const middle = new ArrayGuestMemory(0x10000, 0x100000);
  const top = new ArrayGuestMemory(1 << 20, 0x1_0000_0000);
  const memory: GuestMemory = new RegionGuestMemory([top, middle, low]);
  const r = new MockQueue({ size: 8, memory, base: 0x1_0000_0000 });
  const rq = r.deviceQueue();
  const accepted = [
    { addr: 0x10, len: 0x100 },
    { addr: 0x100010, len: 0x100 },
    { addr: 0x1_0000_0010, len: 0x100 },
  ];
  const rejected = [
    { addr: 0xfff0, len: 0x20 }, // straddles the end of low RAM
    { addr: 0x20000, len: 1 }, // in the gap
    { addr: 0x10fff0, len: 0x20 }, // straddles the end of the middle region
  ];
  for (const b of accepted) {
    r.setDesc(0, { ...b, flags: 0, next: 0 });
    r.pushAvail(0);
    const got = popped(rq);
    assert.equal(got.addr(0), b.addr);
    rq.pushUsed(0, 0);
  }
  for (const b of rejected) {
    r.setDesc(0, { ...b, flags: 0, next: 0 });
    r.pushAvail(0);
    faultThenRecover(rq, 'ERR_QUEUE_BUFFER_ADDRESS', () => r.setDesc(0, { addr: 0x10, len: 1, flags: 0, next: 0 }));
  }
});

test('the mock scatters buffers: not contiguous, descriptors not sequential', () => {
  const m = new MockQueue({ size: 16, seed: 42 });
  const head = m.addChain({ readable: [bytes(1, 2), bytes(3, 4)], writable: [2, 2] });
  const spans = [...m.buffers(head).readable, ...m.buffers(head).writable];
  const touching = spans.slice(1).filter((s, i) => s.addr === spans[i]!.addr + spans[i]!.len).length;
  assert.ok(touching < 3, 'some gap between the buffers');
  const c = popped(m.deviceQueue());
  assert.equal(c.count, 4);
});
