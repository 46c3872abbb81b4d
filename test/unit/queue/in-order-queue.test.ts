import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MockQueue } from '../../../src/testing/mock-queue.js';
import { MockPackedQueue } from '../../../src/testing/mock-packed-queue.js';
import type { MockRing } from '../../../src/testing/mock-ring.js';
import { readRingDesc, usedDesc } from '../../helpers/packed-spec.js';
import { SeededRandom } from '../../helpers/seeded-random.js';
import { QueueFaultError, UsageError, type QueueFaultCode } from '../../../src/errors.js';
import { InOrderQueue } from '../../../src/queue/in-order-queue.js';
import type { DescriptorChain, InOrderRing } from '../../../src/queue/types.js';
import { VIRTQ_AVAIL_F_NO_INTERRUPT } from '../../../src/spec/ring.js';

function faults(fn: () => unknown, code: QueueFaultCode): void {
  assert.throws(fn, (e: unknown) => e instanceof QueueFaultError && e.code === code);
}

function popAll(q: InOrderQueue): DescriptorChain[] {
  const out: DescriptorChain[] = [];
  for (let c = q.pop(); c; c = q.pop()) out.push(c);
  return out;
}

/** The raw used ring: used.idx and the element at each slot (id, len), as the device wrote them. */
function usedRing(m: MockQueue, slots: number): { idx: number; elems: [number, number][] } {
  const elems: [number, number][] = [];
  for (let s = 0; s < slots; s++) elems.push([m.memory.read32(m.usedAddr + 4 + s * 8), m.memory.read32(m.usedAddr + 8 + s * 8)]);
  return { idx: m.usedIdx, elems };
}

test('completions out of order reach the used ring in order; chains used completely share one used element (2.7.9)', () => {
  const m = new MockQueue({ size: 8 });
  const q = m.inOrderQueue();
  const heads = [4, 8, 2, 16].map((n) => m.addChain({ readable: [Uint8Array.of(1)], writable: [n] }));
  const [a, b, c, d] = popAll(q);
  assert.deepEqual(
    [a, b, c, d].map((x) => x!.head),
    heads,
  );
  // The mock takes descriptors in shuffled order: the device needs no ring-order ids.
  assert.notDeepEqual(heads, [0, 1, 2, 3]);

  q.pushUsed(c!.head, 2); // complete, but b and a come first
  q.pushUsed(b!.head, 8);
  assert.equal(m.usedIdx, 0, 'nothing is used before the oldest chain is');
  assert.equal(q.needsInterrupt(), false);
  assert.equal(q.inFlightChains, 4);

  q.pushUsed(a!.head, 4);
  // a, b, c were all used completely: one element, c's, in a's slot (0); used.idx moves by 3.
  assert.deepEqual(usedRing(m, 4), {
    idx: 3,
    elems: [
      [heads[2], 2],
      [0, 0],
      [0, 0],
      [0, 0],
    ],
  });
  assert.equal(q.needsInterrupt(), true);
  assert.equal(q.inFlightChains, 1);

  q.pushUsed(d!.head, 5); // partial: its own element, at slot 3
  assert.deepEqual(usedRing(m, 4).elems[3], [heads[3], 5]);
  assert.equal(m.usedIdx, 4);
  assert.deepEqual(m.readUsedBatches(), [
    { id: heads[2], len: 2, batch: 3 },
    { id: heads[3], len: 5, batch: 1 },
  ]);
});

test('a partly written chain is never folded into a batch: the driver would take it as written completely', () => {
  const m = new MockQueue({ size: 8 });
  const q = m.inOrderQueue();
  const heads = [0, 1, 2, 3].map(() => m.addChain({ writable: [6] }));
  const chains = popAll(q);
  q.pushUsed(chains[1]!.head, 6); // complete
  q.pushUsed(chains[2]!.head, 3); // partial, ends a batch
  q.pushUsed(chains[3]!.head, 6); // complete, but nothing after it is ready
  q.pushUsed(chains[0]!.head, 1); // partial: stands alone
  assert.deepEqual(m.readUsedBatches(), [
    { id: heads[0], len: 1, batch: 1 },
    { id: heads[2], len: 3, batch: 2 },
    { id: heads[3], len: 6, batch: 1 },
  ]);
  // Chains without writable buffers are complete with len 0 and batch too.
  const tx = [0, 1, 2].map(() => m.addChain({ readable: [Uint8Array.of(9)] }));
  const txChains = popAll(q);
  for (const chain of [...txChains].reverse()) q.pushUsed(chain.head, 0);
  assert.deepEqual(m.readUsedBatches(), [{ id: tx[2], len: 0, batch: 3 }]);
});

test('device model misuse: a head not in flight or returned twice is ERR_QUEUE_USED_OVERFLOW, a len beyond the chain a UsageError', () => {
  const m = new MockQueue({ size: 4 });
  const q = m.inOrderQueue();
  m.addChain({ writable: [4] });
  m.addChain({ writable: [4] });
  const [a, b] = popAll(q);
  faults(() => q.pushUsed(99, 0), 'ERR_QUEUE_USED_OVERFLOW');
  assert.throws(() => q.pushUsed(b!.head, 5), UsageError);
  q.pushUsed(b!.head, 4);
  faults(() => q.pushUsed(b!.head, 4), 'ERR_QUEUE_USED_OVERFLOW'); // held for order, still not twice
  q.pushUsed(a!.head, 4);
  faults(() => q.pushUsed(a!.head, 4), 'ERR_QUEUE_USED_OVERFLOW');
  assert.deepEqual(m.readUsedBatches(), [{ id: b!.head, len: 4, batch: 2 }]);
});

test('hostile guest under IN_ORDER: a head made available twice is the ring fault, and the queue goes on afterwards', () => {
  const m = new MockQueue({ size: 4 });
  const q = m.inOrderQueue();
  const head = m.addChain({ writable: [4] });
  const chain = q.pop()!;
  m.pushAvail(head); // the same head again while in flight
  faults(() => q.pop(), 'ERR_QUEUE_HEAD_IN_USE');
  assert.equal(q.inFlightChains, 1, 'the refused chain was not taken');
  q.pushUsed(chain.head, 4);
  // Used now, the head may come again: the same slot pops it.
  const again = q.pop()!;
  assert.equal(again.head, head);
  q.pushUsed(again.head, 4);
  assert.deepEqual(m.readUsedBatches(), [
    { id: head, len: 4, batch: 1 },
    { id: head, len: 4, batch: 1 },
  ]);
  // Avail idx leaping past the queue size is refused as without IN_ORDER.
  m.setAvailIdx(m.availIdx + 5);
  faults(() => q.pop(), 'ERR_QUEUE_AVAIL_INDEX');
});

test('a ring that breaks its bounds: a head twice or more chains than the queue size is ERR_QUEUE_HEAD_IN_USE, a head outside the queue ERR_QUEUE_HEAD_INDEX', () => {
  const chain = (head: number): DescriptorChain => ({
    head,
    count: 1,
    readable: 0,
    readableBytes: 0,
    writableBytes: 0,
    addr: () => 0,
    len: () => 0,
    view: () => new Uint8Array(0),
  });
  const make = (heads: number[]): InOrderQueue => {
    const ring: InOrderRing = {
      index: 0,
      size: 2,
      pop: () => (heads.length > 0 ? chain(heads.shift()!) : null),
      pushUsed: () => undefined,
      skipUsed: () => undefined,
      needsInterrupt: () => false,
      setNotification: () => undefined,
      hasAvailable: () => heads.length > 0,
      position: () => ({ avail: 0, used: 0, inFlight: 0 }),
      snapshot: () => ({ type: 'struct', fields: new Map() }),
      restore: () => [],
    };
    return new InOrderQueue(ring);
  };
  const twice = make([1, 1]);
  twice.pop();
  faults(() => twice.pop(), 'ERR_QUEUE_HEAD_IN_USE');
  faults(() => make([2]).pop(), 'ERR_QUEUE_HEAD_INDEX');
  faults(() => make([-1]).pop(), 'ERR_QUEUE_HEAD_INDEX');
  const many = make([0, 1, 0]);
  many.pop();
  many.pop();
  faults(() => many.pop(), 'ERR_QUEUE_HEAD_IN_USE');
});

test('used buffer notifications see the batch: used_event inside a batch interrupts, NO_INTERRUPT suppresses', () => {
  const m = new MockQueue({ size: 8 });
  const q = m.inOrderQueue({ eventIdx: true });
  for (let i = 0; i < 4; i++) m.addChain({ writable: [2] });
  const chains = popAll(q);
  m.setUsedEvent(1); // interrupt once used.idx passes 1
  q.pushUsed(chains[1]!.head, 2);
  assert.equal(q.needsInterrupt(), false, 'held: nothing moved');
  q.pushUsed(chains[0]!.head, 2); // used.idx 0 -> 2 in one step: passes 1
  assert.equal(m.usedIdx, 2);
  assert.equal(q.needsInterrupt(), true);
  m.setUsedEvent(5);
  q.pushUsed(chains[2]!.head, 2);
  assert.equal(q.needsInterrupt(), false, 'used_event 5 not reached by 3');

  const flags = new MockQueue({ size: 4 });
  const f = flags.inOrderQueue();
  flags.addChain({ writable: [1] });
  flags.setAvailFlags(VIRTQ_AVAIL_F_NO_INTERRUPT);
  f.pushUsed(f.pop()!.head, 1);
  assert.equal(f.needsInterrupt(), false);
  assert.equal(f.hasAvailable(), false);
});

test("packed ring (2.8.8): one used descriptor for a batch, over the batch's first descriptor, naming its last (which may be partly written); the ring skips every descriptor of the batch", () => {
  const m = new MockPackedQueue({ size: 8 });
  const ring = m.deviceQueue();
  const q = new InOrderQueue(ring);
  // Three chains of 2, 3 and 1 descriptors: ring slots 0-1, 2-4, 5.
  const ids = [
    m.addChain({ readable: [Uint8Array.of(1)], writable: [4] }),
    m.addChain({ readable: [Uint8Array.of(2)], writable: [2, 2] }),
    m.addChain({ writable: [3] }),
  ];
  const chains = popAll(q);
  q.pushUsed(chains[2]!.head, 1); // partial, and waits
  q.pushUsed(chains[1]!.head, 4); // complete, waits for the first
  assert.deepEqual(readRingDesc(m.memory, m.descAddr, 0).flags & 0x8080, 0x80, "slot 0 still the driver's");
  q.pushUsed(chains[0]!.head, 4);
  // 0 and 1 complete, 2 partial: one descriptor naming 2 (its len, 1) over slot 0; the rest untouched.
  const d0 = readRingDesc(m.memory, m.descAddr, 0);
  assert.deepEqual({ id: d0.id, len: d0.len, flags: d0.flags }, usedDesc(ids[2]!, 1, 1));
  for (const slot of [1, 2, 3, 4, 5]) assert.equal(readRingDesc(m.memory, m.descAddr, slot).flags & 0x8000, 0, `slot ${slot} not used`);
  assert.equal(ring.nextUsedIdx, 6);
  assert.equal(ring.inFlightChains, 0);
  assert.deepEqual(m.readUsedBatches(), [{ id: ids[2], len: 1, batch: 3 }]);
});

for (const format of ['split', 'packed'] as const) {
  test(`${format} ring, random completion orders: always in order, every batch checked against what the device reported`, () => {
    const m: MockRing = format === 'split' ? new MockQueue({ size: 16, seed: 7 }) : new MockPackedQueue({ size: 13, seed: 7 });
    const q = m.inOrderQueue();
    const random = new SeededRandom(12345);
    let used = 0;
    const expected: { id: number; len: number }[] = [];
    while (used < 3000) {
      const n = 1 + random.below(8);
      for (let i = 0; i < n && m.numFree > 0; i++) m.addChain({ writable: [4] });
      const chains = popAll(q);
      const lens = chains.map(() => (random.below(3) === 0 ? random.below(4) : 4));
      chains.forEach((c, i) => expected.push({ id: c.head, len: lens[i]! }));
      for (const i of random.permutation(chains.length)) q.pushUsed(chains[i]!.head, lens[i]!);
      for (const batch of m.readUsedBatches()) {
        const run = expected.splice(0, batch.batch);
        assert.deepEqual({ id: batch.id, len: batch.len }, run[run.length - 1]);
        // Every chain the element skipped was written completely.
        for (const skipped of run.slice(0, -1)) assert.equal(skipped.len, 4);
        used += batch.batch;
      }
      assert.equal(expected.length, 0);
    }
    assert.equal(q.inFlightChains, 0);
  });
}
