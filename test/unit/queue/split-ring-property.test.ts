import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { QueueFullError } from '../../../src/errors.js';
import { ArrayGuestMemory } from '../../../src/memory/guest-memory.js';
import { RamDma } from '../../../src/bus/ram-dma.js';
import { SplitQueue } from '../../../src/queue/split/device-ring.js';
import { SplitQueueDriver } from '../../../src/queue/split/driver-ring.js';
import type { DmaSpan } from '../../../src/memory/dma.js';
import type { DescriptorChain } from '../../../src/queue/types.js';

type Op =
  | { readonly kind: 'add'; readonly outs: readonly number[]; readonly ins: readonly number[] }
  | { readonly kind: 'publish' }
  | { readonly kind: 'pop'; readonly n: number }
  | { readonly kind: 'complete'; readonly pick: number; readonly fraction: number }
  | { readonly kind: 'reap' };

const lens = fc.array(fc.integer({ min: 0, max: 64 }), { maxLength: 5 });
const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('add' as const), outs: lens, ins: lens }) },
  { weight: 2, arbitrary: fc.constant({ kind: 'publish' as const }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('pop' as const), n: fc.integer({ min: 1, max: 8 }) }) },
  {
    weight: 3,
    arbitrary: fc.record({ kind: fc.constant('complete' as const), pick: fc.nat(), fraction: fc.double({ min: 0, max: 1, noNaN: true }) }),
  },
  { weight: 2, arbitrary: fc.constant({ kind: 'reap' as const }) },
);

interface Submitted {
  readonly outs: readonly { span: DmaSpan; fill: number }[];
  readonly ins: readonly DmaSpan[];
  readonly writable: number;
  readonly descriptors: number;
  completedLen?: number;
}

/** Byte k of the writable bytes the device writes for `token`. */
const pattern = (token: number, k: number): number => (token * 31 + k) & 0xff;

test('random driver operations against the device side keep the ring invariants', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom(4, 8, 16),
      fc.boolean(),
      fc.boolean(),
      fc.array(op, { maxLength: 120 }),
      (size, eventIdx, indirect, ops) => run(size, eventIdx, indirect, ops),
    ),
    { numRuns: 300 },
  );
});

async function run(size: number, eventIdx: boolean, indirect: boolean, ops: readonly Op[]): Promise<void> {
  const memory = new ArrayGuestMemory(1 << 20);
  const dma = new RamDma(memory, 0x1000, (1 << 20) - 0x1000);
  const driver = new SplitQueueDriver<number>({ index: 0, size, dma, eventIdx, indirect });
  const device = new SplitQueue({
    index: 0,
    size,
    memory,
    desc: driver.descAddr,
    driver: driver.availAddr,
    device: driver.usedAddr,
    eventIdx,
    indirect,
  });
  const submitted = new Map<number, Submitted>();
  const headToken = new Map<number, number>();
  let unpublished = 0;
  let published = 0; // published and not yet popped
  const held: DescriptorChain[] = [];
  let nextToken = 0;

  const checkInvariants = (): void => {
    let descriptors = 0;
    for (const s of submitted.values()) descriptors += s.descriptors;
    assert.equal(driver.numFree + descriptors, size, 'every descriptor is free or held by one chain');
    assert.equal(driver.inFlight, submitted.size);
    assert.equal(device.inFlightChains, held.length);
  };

  for (const o of [...ops, { kind: 'drain' as const }]) {
    switch (o.kind) {
      case 'add': {
        const n = o.outs.length + o.ins.length;
        if (n === 0 || n > size) break;
        const token = nextToken++;
        const outs = o.outs.map((len, i) => {
          const b = dma.alloc(len, 1);
          const fill = (token + i) & 0xff;
          b.bytes.fill(fill);
          return { span: { addr: b.addr, len }, fill };
        });
        const ins = o.ins.map((len) => {
          const b = dma.alloc(len, 1);
          b.bytes.fill(0);
          return { addr: b.addr, len };
        });
        const free = driver.numFree;
        const needed = indirect && n > 1 && n > free ? 1 : n;
        if (needed > free) {
          assert.throws(
            () =>
              driver.add(
                outs.map((x) => x.span),
                ins,
                token,
              ),
            QueueFullError,
          );
          assert.equal(driver.numFree, free);
          break;
        }
        const head = driver.add(
          outs.map((x) => x.span),
          ins,
          token,
        );
        assert.ok(!headToken.has(head), 'a head in flight is never handed out again');
        headToken.set(head, token);
        submitted.set(token, { outs, ins, writable: o.ins.reduce((s, l) => s + l, 0), descriptors: free - driver.numFree });
        assert.equal(free - driver.numFree, needed);
        unpublished++;
        break;
      }
      case 'publish':
        await driver.publish();
        published += unpublished;
        unpublished = 0;
        break;
      case 'pop':
        for (let i = 0; i < o.n; i++) {
          const chain = device.pop();
          if (chain === null) {
            assert.equal(published, 0, 'every published chain can be popped');
            break;
          }
          published--;
          const s = submitted.get(headToken.get(chain.head)!)!;
          assert.equal(chain.count, s.outs.length + s.ins.length);
          assert.equal(chain.readable, s.outs.length);
          assert.equal(chain.writableBytes, s.writable);
          s.outs.forEach((x, k) => {
            assert.equal(chain.addr(k), x.span.addr);
            assert.ok(chain.view(k).every((b) => b === x.fill));
          });
          held.push(chain);
        }
        break;
      case 'complete': {
        if (held.length === 0) break;
        const [chain] = held.splice(o.pick % held.length, 1);
        const token = headToken.get(chain!.head)!;
        const s = submitted.get(token)!;
        const len = Math.floor(o.fraction * s.writable);
        let k = 0;
        for (let i = chain!.readable; i < chain!.count; i++) {
          const v = chain!.view(i);
          for (let j = 0; j < v.length; j++) v[j] = pattern(token, k++);
        }
        s.completedLen = len;
        device.pushUsed(chain!.head, len);
        break;
      }
      case 'reap':
        for (const used of await driver.reap()) {
          const s = submitted.get(used.token);
          assert.ok(s && s.completedLen !== undefined, `token ${used.token} was completed`);
          assert.equal(used.len, s.completedLen);
          let k = 0;
          for (const span of s.ins)
            for (const b of memory.view(span.addr, span.len)) if (k < used.len) assert.equal(b, pattern(used.token, k++));
          submitted.delete(used.token);
          for (const [head, token] of headToken) if (token === used.token) headToken.delete(head);
          for (const x of s.outs) dma.free({ addr: x.span.addr, bytes: new Uint8Array(0) });
          for (const span of s.ins) dma.free({ addr: span.addr, bytes: new Uint8Array(0) });
        }
        break;
      case 'drain': {
        await driver.publish();
        for (let c = device.pop(); c !== null; c = device.pop()) held.push(c);
        for (const c of held.splice(0)) {
          const s = submitted.get(headToken.get(c.head)!)!;
          s.completedLen = 0;
          device.pushUsed(c.head, 0);
        }
        const rest = await driver.reap();
        assert.equal(rest.length, submitted.size);
        submitted.clear();
        assert.equal(driver.numFree, size);
        break;
      }
    }
    checkInvariants();
  }
}
