/**
 * Model-based test of the two halves of a split virtqueue against each other (fast-check
 * fc.commands): our driver ring (SplitQueueDriver) adds and publishes chains, our device ring
 * (SplitQueue) pops and returns them, in any interleaving, with and without indirect tables and
 * EVENT_IDX. The model is a FIFO of published chains and the set the device holds: every pop must
 * return the oldest published chain with exactly its buffers, and every token must come back from
 * reap exactly once, in used order, with the len the device gave. A property test checks the
 * device's fast buffer-address check against GuestMemory.contains on memory with a hole.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { QueueFaultError, QueueFullError, UsageError } from '../../../src/errors.js';
import { ArrayGuestMemory, RegionGuestMemory } from '../../../src/memory/guest-memory.js';
import { RamDma } from '../../../src/bus/ram-dma.js';
import type { DescriptorChain } from '../../../src/queue/types.js';
import { SplitQueue } from '../../../src/queue/split/device-ring.js';
import { SplitQueueDriver } from '../../../src/queue/split/driver-ring.js';
import type { DmaSpan } from '../../../src/memory/dma.js';
import { VIRTQ_DESC_F_WRITE } from '../../../src/spec/ring.js';
import { MockQueue } from '../../../src/testing/mock-queue.js';

interface Chain {
  readonly token: number;
  readonly out: DmaSpan[];
  readonly inn: DmaSpan[];
}

interface Model {
  /** Added, not yet published. */
  readonly pending: Chain[];
  /** Published, not yet popped (FIFO). */
  readonly available: Chain[];
  /** Popped by the device, by head. */
  readonly held: Map<number, { chain: Chain; dc: DescriptorChain }>;
  /** Used elements pushed, not yet reaped, in order. */
  readonly used: { token: number; len: number }[];
  nextToken: number;
}

interface Real {
  readonly dma: RamDma;
  readonly driver: SplitQueueDriver<number>;
  readonly device: SplitQueue;
}

type Cmd = fc.AsyncCommand<Model, Real>;

class Add implements Cmd {
  constructor(
    readonly outLens: number[],
    readonly inLens: number[],
  ) {}
  check(): boolean {
    return true;
  }
  async run(m: Model, r: Real): Promise<void> {
    const span = (len: number): DmaSpan => ({ addr: r.dma.alloc(Math.max(len, 1), 8).addr, len });
    const chain: Chain = { token: m.nextToken, out: this.outLens.map(span), inn: this.inLens.map(span) };
    try {
      r.driver.add(chain.out, chain.inn, chain.token);
    } catch (e) {
      // More buffers than the queue size is refused outright (2.7.5.3.1); otherwise only a full ring.
      const tooLong = chain.out.length + chain.inn.length > r.driver.size;
      assert.ok(tooLong ? e instanceof UsageError : e instanceof QueueFullError, `add threw ${String(e)}`);
      return;
    }
    m.nextToken++;
    m.pending.push(chain);
  }
  toString(): string {
    return `add(${this.outLens}|${this.inLens})`;
  }
}

class Publish implements Cmd {
  check(): boolean {
    return true;
  }
  async run(m: Model, r: Real): Promise<void> {
    await r.driver.publish();
    m.available.push(...m.pending.splice(0));
  }
  toString(): string {
    return 'publish';
  }
}

class Pop implements Cmd {
  check(): boolean {
    return true;
  }
  async run(m: Model, r: Real): Promise<void> {
    const dc = r.device.pop();
    const expected = m.available.shift();
    if (expected === undefined) {
      assert.equal(dc, null, 'the device found a chain the driver never published');
      return;
    }
    assert.ok(dc !== null, `published chain ${expected.token} not found by the device`);
    const bufs = [...expected.out, ...expected.inn];
    assert.equal(dc.count, bufs.length);
    assert.equal(dc.readable, expected.out.length);
    bufs.forEach((b, k) => assert.deepEqual([dc.addr(k), dc.len(k)], [b.addr, b.len], `buffer ${k} of chain ${expected.token}`));
    m.held.set(dc.head, { chain: expected, dc });
  }
  toString(): string {
    return 'pop';
  }
}

class Push implements Cmd {
  constructor(
    readonly pick: number,
    readonly fraction: number,
  ) {}
  check(m: Readonly<Model>): boolean {
    return m.held.size > 0;
  }
  async run(m: Model, r: Real): Promise<void> {
    const [head, { chain, dc }] = [...m.held.entries()][this.pick % m.held.size]!;
    const len = Math.floor(dc.writableBytes * this.fraction);
    r.device.pushUsed(head, len);
    m.held.delete(head);
    m.used.push({ token: chain.token, len });
  }
  toString(): string {
    return `push(${this.pick}, ${this.fraction.toFixed(2)})`;
  }
}

class Reap implements Cmd {
  check(): boolean {
    return true;
  }
  async run(m: Model, r: Real): Promise<void> {
    const got = await r.driver.reap();
    assert.deepEqual(got, m.used.splice(0));
  }
  toString(): string {
    return 'reap';
  }
}

const lens = fc.array(fc.integer({ min: 0, max: 300 }), { maxLength: 3 });
const commands = [
  fc
    .tuple(lens, lens)
    .filter(([o, i]) => o.length + i.length > 0)
    .map(([o, i]) => new Add(o, i)),
  fc.constant(new Publish()),
  fc.constant(new Pop()),
  fc.tuple(fc.nat(), fc.double({ min: 0, max: 1, noNaN: true })).map(([p, f]) => new Push(p, f)),
  fc.constant(new Reap()),
];

test('driver and device halves of the split ring agree on every chain, in any interleaving', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom(1, 2, 4, 8),
      fc.boolean(),
      fc.boolean(),
      fc.commands(commands, { maxCommands: 60 }),
      async (size, indirect, eventIdx, cmds) => {
        const memory = new ArrayGuestMemory(1 << 20);
        const dma = new RamDma(memory, 0x1000, (1 << 20) - 0x1000);
        const driver = new SplitQueueDriver<number>({ index: 0, size, dma, eventIdx, indirect, legacy: false });
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
        const model: Model = { pending: [], available: [], held: new Map(), used: [], nextToken: 0 };
        await fc.asyncModelRun(() => ({ model, real: { dma, driver, device } }), cmds);
        // Drain: everything published comes back exactly once.
        await new Publish().run(model, { dma, driver, device });
        while (model.available.length > 0) await new Pop().run(model, { dma, driver, device });
        while (model.held.size > 0) await new Push(0, 1).run(model, { dma, driver, device });
        await new Reap().run(model, { dma, driver, device });
        assert.equal(driver.inFlight, 0);
        assert.equal(driver.numFree, size);
      },
    ),
    { numRuns: 150 },
  );
});

test('chain buffers in guest memory with a gap: the device accepts a buffer exactly when memory contains it', () => {
  // Low RAM, a hole, RAM above 4 GiB: the ring's fast address check must agree with contains().
  const low = new ArrayGuestMemory(0x8000, 0);
  const high = new ArrayGuestMemory(0x4000, 0x1_0000_0000);
  const memory = new RegionGuestMemory([low, high]);
  const edges = [0, 0x7ff0, 0x8000, 0xffff_fff0, 0x1_0000_0000, 0x1_0000_3ff0, 0x1_0000_4000, 2 ** 53 - 16];
  const addr = fc.oneof(
    fc.constantFrom(...edges),
    fc.constantFrom(...edges).chain((e) => fc.integer({ min: Math.max(0, e - 64), max: e + 64 })),
    fc.nat({ max: 2 ** 53 - 1 }),
  );
  const len = fc.oneof(fc.constantFrom(0, 1, 16, 0x10, 0x4000, 0x8000, 0xffff_ffff), fc.nat({ max: 0x9000 }));
  fc.assert(
    fc.property(addr, len, fc.boolean(), (a, l, write) => {
      const mq = new MockQueue({ size: 4, memory: low, base: 0, seed: 5 });
      const q = new SplitQueue({
        index: 0,
        size: 4,
        memory,
        desc: mq.descAddr,
        driver: mq.availAddr,
        device: mq.usedAddr,
        eventIdx: false,
        indirect: false,
      });
      mq.setDesc(0, { addr: a, len: l, flags: write ? VIRTQ_DESC_F_WRITE : 0, next: 0 });
      mq.pushAvail(0);
      let accepted: boolean;
      try {
        accepted = q.pop() !== null;
      } catch (e) {
        assert.ok(e instanceof QueueFaultError && e.code === 'ERR_QUEUE_BUFFER_ADDRESS', `unexpected ${String(e)}`);
        accepted = false;
      }
      assert.equal(accepted, memory.contains(a, l), `[0x${a.toString(16)}, +0x${l.toString(16)})`);
    }),
    { numRuns: 2000 },
  );
});
