/**
 * One random workload through every ring format, both halves in process, built through the seam
 * the transport uses (queue/rings.ts): chains of random shapes, published in random batches, popped,
 * completed in random order with random lengths written, reaped, with interrupt suppression and
 * notification control toggled. What reaches the device (each chain's readable bytes and writable
 * lengths, in order) and what the driver gets back (tokens, lens, the bytes written) must equal a
 * plain model's, so the formats also agree with each other. Queue sizes include non-powers of two,
 * which only the packed ring accepts.
 *
 * Notifications are advisory, so only their liveness is checked: once the driver has reaped with
 * interrupts wanted, a new used element makes needsInterrupt() true; once the device has found its
 * ring empty with notifications enabled, the next publish of a chain asks for a notification.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { RamDma } from '../../../src/bus/ram-dma.js';
import { ArrayGuestMemory } from '../../../src/memory/guest-memory.js';
import type { DmaBuffer } from '../../../src/memory/dma.js';
import { PACKED_RING, SPLIT_RING, type RingFormat } from '../../../src/queue/ring-format.js';
import { deviceRing, driverRing } from '../../../src/queue/rings.js';
import type { DescriptorChain } from '../../../src/queue/types.js';
import { VIRTIO_F_EVENT_IDX, VIRTIO_F_INDIRECT_DESC, VIRTIO_F_RING_PACKED, bit } from '../../../src/spec/features.js';

type Op =
  | { readonly kind: 'add'; readonly outs: readonly number[]; readonly ins: readonly number[] }
  | { readonly kind: 'publish' }
  | { readonly kind: 'pop'; readonly n: number }
  | { readonly kind: 'complete'; readonly pick: number; readonly fraction: number; readonly signal: boolean }
  | { readonly kind: 'reap' }
  | { readonly kind: 'suppress'; readonly on: boolean }
  | { readonly kind: 'interrupt' }
  | { readonly kind: 'notifications'; readonly on: boolean };

/** What the device saw of one chain, in pop order. */
interface Seen {
  readonly readable: readonly number[];
  readonly writable: readonly number[];
}
/** What the driver got back, in reap order. */
interface Got {
  readonly token: number;
  readonly len: number;
  readonly written: readonly number[];
}
interface Trace {
  readonly seen: Seen[];
  readonly got: Got[];
}

const lens = fc.array(fc.integer({ min: 0, max: 40 }), { maxLength: 3 });
const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('add' as const), outs: lens, ins: lens }) },
  { weight: 3, arbitrary: fc.constant({ kind: 'publish' as const }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('pop' as const), n: fc.integer({ min: 1, max: 6 }) }) },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('complete' as const),
      pick: fc.nat(),
      fraction: fc.double({ min: 0, max: 1, noNaN: true }),
      signal: fc.boolean(),
    }),
  },
  { weight: 3, arbitrary: fc.constant({ kind: 'reap' as const }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('suppress' as const), on: fc.boolean() }) },
  { weight: 2, arbitrary: fc.constant({ kind: 'interrupt' as const }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('notifications' as const), on: fc.boolean() }) },
);

/** Byte k of readable buffer j of the chain with `token`. */
const outByte = (token: number, j: number, k: number): number => (token * 7 + j * 13 + k) & 0xff;
/** Byte k of what the device writes into the n-th chain it pops. */
const inByte = (popped: number, k: number): number => (popped * 31 + k + 1) & 0xff;

/**
 * The model: FIFO publish and pop, completion in the order the workload picks. A chain is added
 * only when the descriptors of the chains in flight plus its buffers fit the queue (without an
 * indirect table a chain takes one descriptor per buffer in every format, with one no more), so no
 * add meets a full ring in any format.
 */
function model(size: number, ops: readonly Op[]): Trace {
  const seen: Seen[] = [];
  const got: Got[] = [];
  let pending: { token: number; outs: readonly number[]; ins: readonly number[] }[] = [];
  const available: typeof pending = [];
  const held: { token: number; ins: readonly number[]; popped: number }[] = [];
  let used: Got[] = [];
  let descriptors = 0;
  const inFlight = new Map<number, number>();
  let token = 0;
  let popped = 0;
  const complete = (h: (typeof held)[number], fraction: number): void => {
    const writable = h.ins.reduce((s, l) => s + l, 0);
    const len = Math.floor(fraction * writable);
    used.push({ token: h.token, len, written: Array.from({ length: len }, (_, k) => inByte(h.popped, k)) });
  };
  for (const o of [...ops, { kind: 'drain' as const }]) {
    switch (o.kind) {
      case 'add': {
        const n = o.outs.length + o.ins.length;
        if (n === 0 || n > size || descriptors + n > size) break;
        descriptors += n;
        inFlight.set(token, n);
        pending.push({ token: token++, outs: o.outs, ins: o.ins });
        break;
      }
      case 'publish':
        available.push(...pending);
        pending = [];
        break;
      case 'pop':
        for (let i = 0; i < o.n && available.length > 0; i++) {
          const c = available.shift()!;
          seen.push({
            readable: c.outs.flatMap((len, j) => Array.from({ length: len }, (_, k) => outByte(c.token, j, k))),
            writable: [...c.ins],
          });
          held.push({ token: c.token, ins: c.ins, popped: popped++ });
        }
        break;
      case 'complete':
        if (held.length > 0) complete(held.splice(o.pick % held.length, 1)[0]!, o.fraction);
        break;
      case 'reap':
        for (const u of used) descriptors -= inFlight.get(u.token)!;
        got.push(...used);
        used = [];
        break;
      case 'drain':
        available.push(...pending);
        pending = [];
        while (available.length > 0) {
          const c = available.shift()!;
          seen.push({
            readable: c.outs.flatMap((len, j) => Array.from({ length: len }, (_, k) => outByte(c.token, j, k))),
            writable: [...c.ins],
          });
          held.push({ token: c.token, ins: c.ins, popped: popped++ });
        }
        for (const h of held.splice(0)) complete(h, 1);
        got.push(...used);
        used = [];
        break;
      default:
        break;
    }
  }
  return { seen, got };
}

/** The workload through the driver and device halves of `format`, built by the rings seam. */
async function real(format: RingFormat, size: number, eventIdx: boolean, indirect: boolean, ops: readonly Op[]): Promise<Trace> {
  const memory = new ArrayGuestMemory(1 << 20);
  const dma = new RamDma(memory, 0x1000, (1 << 20) - 0x1000);
  const features =
    (format === PACKED_RING ? bit(VIRTIO_F_RING_PACKED) : 0n) |
    (eventIdx ? bit(VIRTIO_F_EVENT_IDX) : 0n) |
    (indirect ? bit(VIRTIO_F_INDIRECT_DESC) : 0n);
  const driver = driverRing<number>({ index: 0, size, dma, features, layout: 'separate' });
  await driver.flushRings();
  const device = deviceRing({ index: 0, size, memory, areas: driver.areas, features });
  const seen: Seen[] = [];
  const got: Got[] = [];
  const buffers = new Map<number, { outs: DmaBuffer[]; ins: DmaBuffer[] }>();
  const held: { chain: DescriptorChain; popped: number }[] = [];
  const inFlight = new Map<number, number>();
  let descriptors = 0;
  let token = 0;
  let popped = 0;
  let unpublished = 0;
  // Liveness of the advisory notifications (see the file comment).
  let suppressed = false;
  let interruptArmed = true;
  let usedSinceArmed = 0;
  let notifyEnabled = true;
  let notifyArmed = false;

  const pop = (): boolean => {
    const chain = device.pop();
    if (chain === null) {
      if (notifyEnabled) notifyArmed = true;
      return false;
    }
    const readable: number[] = [];
    for (let k = 0; k < chain.readable; k++) readable.push(...chain.view(k));
    const writable = Array.from({ length: chain.count - chain.readable }, (_, k) => chain.len(chain.readable + k));
    seen.push({ readable, writable });
    held.push({ chain, popped: popped++ });
    return true;
  };
  const complete = (pick: number, fraction: number): void => {
    const [{ chain, popped: n }] = held.splice(pick % held.length, 1) as [(typeof held)[number]];
    const len = Math.floor(fraction * chain.writableBytes);
    let k = 0;
    for (let i = chain.readable; i < chain.count; i++) {
      const v = chain.view(i);
      for (let j = 0; j < v.length && k < len; j++) v[j] = inByte(n, k++);
    }
    device.pushUsed(chain.head, len);
    usedSinceArmed++;
  };
  const signal = (): void => {
    const wants = device.needsInterrupt();
    if (interruptArmed && usedSinceArmed > 0)
      assert.ok(wants, `${format.name}: ${usedSinceArmed} used after the driver reaped with interrupts on, and no interrupt`);
    if (wants) interruptArmed = false;
  };
  const reap = async (): Promise<void> => {
    for (const u of await driver.reap()) {
      const b = buffers.get(u.token)!;
      const written: number[] = [];
      for (const buf of b.ins) for (const byte of buf.bytes) if (written.length < u.len) written.push(byte);
      got.push({ token: u.token, len: u.len, written });
      for (const buf of [...b.outs, ...b.ins]) dma.free(buf);
      buffers.delete(u.token);
      descriptors -= inFlight.get(u.token)!;
    }
    if (!suppressed) {
      interruptArmed = true;
      usedSinceArmed = 0;
    }
  };
  const publish = async (): Promise<void> => {
    const wants = await driver.publish();
    if (notifyArmed && unpublished > 0) {
      assert.ok(wants, `${format.name}: the device found its ring empty with notifications on, and publish() did not notify`);
      notifyArmed = false;
    }
    unpublished = 0;
  };

  for (const o of ops) {
    switch (o.kind) {
      case 'add': {
        const n = o.outs.length + o.ins.length;
        if (n === 0 || n > size || descriptors + n > size) break;
        const t = token++;
        const outs = o.outs.map((len, j) => {
          const b = dma.alloc(Math.max(len, 1), 8);
          for (let k = 0; k < len; k++) b.bytes[k] = outByte(t, j, k);
          return b;
        });
        const ins = o.ins.map((len) => dma.alloc(Math.max(len, 1), 8));
        driver.add(
          outs.map((b, j) => ({ addr: b.addr, len: o.outs[j]! })),
          ins.map((b, j) => ({ addr: b.addr, len: o.ins[j]! })),
          t,
        );
        // The written bytes read back are the first len of the ins, trimmed to their lengths.
        buffers.set(t, { outs, ins: ins.map((b, j) => ({ addr: b.addr, bytes: b.bytes.subarray(0, o.ins[j]) })) });
        inFlight.set(t, n);
        descriptors += n;
        unpublished++;
        break;
      }
      case 'publish':
        await publish();
        break;
      case 'pop':
        for (let i = 0; i < o.n && pop(); i++);
        break;
      case 'complete':
        if (held.length === 0) break;
        complete(o.pick, o.fraction);
        // As a device model does after returning a buffer.
        if (o.signal) signal();
        break;
      case 'reap':
        await reap();
        break;
      case 'suppress':
        suppressed = o.on;
        await driver.setInterruptSuppression(o.on);
        if (o.on) interruptArmed = false;
        break;
      case 'interrupt':
        signal();
        break;
      case 'notifications':
        notifyEnabled = o.on;
        device.setNotification(o.on);
        if (!o.on) notifyArmed = false;
        break;
    }
  }
  // Drain: everything added comes back exactly once, and every descriptor is free again.
  await publish();
  while (pop());
  while (held.length > 0) complete(0, 1);
  await reap();
  assert.equal(driver.numFree, size, `${format.name}: every descriptor free after the drain`);
  driver.destroy();
  return { seen, got };
}

test('every ring format carries the same random workload as the model: bytes to the device, tokens and lens back', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.oneof(fc.constantFrom(2, 4, 8, 16), fc.integer({ min: 1, max: 20 })),
      fc.boolean(),
      fc.boolean(),
      fc.array(op, { minLength: 30, maxLength: 90 }),
      async (size, eventIdx, indirect, ops) => {
        const expected = model(size, ops);
        for (const format of [SPLIT_RING, PACKED_RING]) {
          if (!format.isQueueSize(size)) continue;
          const trace = await real(format, size, eventIdx, indirect, ops);
          assert.deepEqual(trace.seen, expected.seen, `${format.name}: what reached the device`);
          assert.deepEqual(trace.got, expected.got, `${format.name}: what the driver got back`);
        }
      },
    ),
    { numRuns: 100 },
  );
});
