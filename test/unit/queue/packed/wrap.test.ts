import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { DescriptorChain } from '../../../../src/queue/types.js';
import { MockPackedQueue } from '../../../../src/testing.js';
import { readRingDesc, usedDesc } from '../../../helpers/packed-spec.js';

/** The queue sizes the device models use (blk, net, console, rng: 64..1024), the smallest, and sizes that are no power of two. */
const SIZES = [1, 2, 3, 7, 64, 100, 128, 256, 1024];

/** A seeded generator for the test's own choices (chain shapes, completion order). */
function rng(seed: number): (n: number) => number {
  let s = seed;
  return (n) => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return (s >>> 8) % n;
  };
}

for (const size of SIZES) {
  test(`size ${size}: chains of 1..3 descriptors and indirect ones over 4 laps, completed out of order`, () => {
    const m = new MockPackedQueue({ size, seed: size, memSize: 1 << 21 });
    const q = m.deviceQueue({ indirect: true });
    const pick = rng(size * 31 + 7);
    const laps = 4;
    /** Chains the driver made available, in ring order; chains the device holds. */
    const expected: { id: number; readable: Uint8Array[]; writable: number[] }[] = [];
    const held: DescriptorChain[] = [];
    /** What the device returned, in completion order, and the bytes it wrote. */
    const returned: { id: number; len: number; fill: number }[] = [];
    let slotsUsed = 0;
    let serial = 0;
    while (slotsUsed < laps * size) {
      // The driver adds what fits: up to 3 buffers, or an indirect table of up to 4.
      for (;;) {
        const indirect = pick(4) === 0;
        const nbuf = 1 + pick(Math.min(indirect ? 4 : 3, size));
        const slots = indirect ? 1 : nbuf;
        if (slots > m.numFree || pick(5) === 0) break;
        const nread = pick(nbuf + 1);
        const readable = Array.from({ length: nread }, () => Uint8Array.from({ length: 1 + pick(6) }, () => serial++ & 0xff));
        const writable = Array.from({ length: nbuf - nread }, () => 1 + pick(6));
        const id = m.addChain({ readable, writable, indirect });
        expected.push({ id, readable, writable });
        slotsUsed += slots;
      }
      // The device pops all of it, checking each chain against what the driver made available.
      for (let c = q.pop(); c; c = q.pop()) {
        const want = expected.shift();
        assert.ok(want, 'no chain beyond those made available');
        assert.equal(c.head, want.id);
        assert.equal(c.readable, want.readable.length);
        assert.equal(c.count, want.readable.length + want.writable.length);
        want.readable.forEach((bytes, i) => assert.deepEqual([...c.view(i)], [...bytes]));
        held.push(c);
      }
      assert.equal(expected.length, 0);
      // It completes some of the held chains, in random order, writing a fill into part of each.
      for (let k = pick(held.length + 1); k > 0; k--) {
        const c = held.splice(pick(held.length), 1)[0]!;
        const len = pick(c.writableBytes + 1);
        const fill = (c.head * 7 + len) & 0xff;
        let left = len;
        for (let i = c.readable; i < c.count && left > 0; i++) {
          const n = Math.min(left, c.len(i));
          c.view(i).fill(fill, 0, n);
          left -= n;
        }
        const usedAt = q.nextUsedIdx;
        const wrap = q.usedWrapCounter;
        q.pushUsed(c.head, len);
        const d = readRingDesc(m.memory, m.descAddr, usedAt);
        assert.deepEqual({ id: d.id, len: d.len, flags: d.flags }, usedDesc(c.head, len, wrap));
        returned.push({ id: c.head, len, fill });
      }
      // The driver reads the used descriptors: the same ones, in completion order, with the bytes written.
      const got = m.readUsed();
      const want = returned.splice(0, returned.length);
      assert.deepEqual(
        got,
        want.map(({ id, len }) => ({ id, len })),
      );
      for (const u of want) assert.deepEqual([...m.readWritten(u.id, u.len)], new Array<number>(u.len).fill(u.fill));
    }
    // Drain, then both sides agree on positions and wrap counters after the laps.
    const last = held.splice(0);
    for (const c of last) q.pushUsed(c.head, 0);
    assert.deepEqual(
      m.readUsed().map((u) => u.id),
      last.map((c) => c.head),
    );
    assert.equal(q.inFlightChains, 0);
    assert.deepEqual(
      [q.nextAvailIdx, q.availWrapCounter, q.nextUsedIdx, q.usedWrapCounter],
      [m.nextAvail, m.availWrap, m.nextUsed, m.usedWrap],
    );
    assert.equal(q.nextAvailIdx, q.nextUsedIdx);
    assert.equal(m.numFree, size);
    assert.equal(q.pop(), null, 'nothing left, and no stale descriptor of an earlier lap looks available');
    // Each side toggled its wrap counter once per lap (2.8.1).
    assert.equal(q.availWrapCounter, 1 ^ (Math.floor(slotsUsed / size) & 1));
    assert.equal(q.nextAvailIdx, slotsUsed % size);
  });
}
