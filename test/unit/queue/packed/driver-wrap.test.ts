/**
 * The packed driver over many laps of the ring, against a device played by hand: random chain shapes,
 * chains completed out of order, ids reused in the order they come back, at queue sizes 1, 2, 3, 7,
 * 64, 100 and 256, in-process (coherent) and over a remote-bus image (flush/refresh).
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { GuestMemory } from '../../../../src/memory/guest-memory.js';
import { PVIRTQ_DESC_SIZE } from '../../../../src/spec/packed-ring.js';
import { VIRTQ_DESC_F_INDIRECT, VIRTQ_DESC_F_WRITE } from '../../../../src/spec/ring.js';
import type { UsedBuffer } from '../../../../src/queue/types.js';
import { packedRig, readPvirtqDesc, type HandChain, type PackedRig, type PvirtqDesc } from '../../../helpers/packed-ring.js';

/** Byte k of the writable bytes the device writes for `token`; readable bytes of `token` are `fill(token)`. */
const pattern = (token: number, k: number): number => (token * 31 + k * 7) & 0xff;
const fill = (token: number): number => (token * 13 + 5) & 0xff;

/** The buffers of a chain as the device sees them: ring descriptors, or the entries of its indirect table. */
function buffersOf(memory: GuestMemory, chain: HandChain): PvirtqDesc[] {
  const head = chain.descs[0]!;
  if ((head.flags & VIRTQ_DESC_F_INDIRECT) === 0) return [...chain.descs];
  const out: PvirtqDesc[] = [];
  for (let k = 0; k < head.len / PVIRTQ_DESC_SIZE; k++) out.push(readPvirtqDesc(memory, head.addr + k * PVIRTQ_DESC_SIZE));
  return out;
}

interface Submitted {
  readonly ins: readonly { readonly addr: number; readonly len: number; readonly bytes: Uint8Array }[];
  readonly readable: number;
  readonly slots: number;
  len?: number;
}

interface LapOptions {
  readonly size: number;
  readonly remote: boolean;
  readonly indirect: boolean;
  readonly laps: number;
}

/**
 * Drive `laps` laps of chains through the ring with decisions taken from `choices`; checks every
 * used buffer's token, len and bytes, and that every token comes back exactly once.
 */
async function runLaps(options: LapOptions, choices: readonly number[]): Promise<void> {
  const rig: PackedRig = packedRig({ size: options.size, remote: options.remote, indirect: options.indirect });
  const { driver, device, memory, buffer } = rig;
  let c = 0;
  const next = (): number => choices[c++ % choices.length]!;
  const submitted = new Map<number, Submitted>();
  const idToken = new Map<number, number>();
  const held: { chain: HandChain; token: number }[] = [];
  let token = 0;
  let usedSlots = 0;
  let returned = 0;
  const publish = async (): Promise<void> => {
    if (driver.coherent) driver.publishSync();
    else await driver.publish();
    for (let chain = device.pop(); chain !== null; chain = device.pop()) {
      const t = idToken.get(chain.id);
      assert.ok(t !== undefined, `device popped id ${chain.id}, not in flight`);
      // The device sees what the driver filled: the readable bytes of this token.
      const bufs = buffersOf(memory, chain);
      const readable = bufs.filter((b) => (b.flags & VIRTQ_DESC_F_WRITE) === 0);
      assert.equal(readable.length, submitted.get(t)!.readable);
      for (const b of readable) assert.ok(memory.view(b.addr, b.len).every((x) => x === fill(t)));
      held.push({ chain, token: t });
    }
  };
  const check = (used: UsedBuffer<number>[]): void => {
    for (const u of used) {
      const s = submitted.get(u.token);
      assert.ok(s !== undefined && s.len !== undefined, `token ${u.token} returned but not completed`);
      assert.equal(u.len, s.len);
      let k = 0;
      for (const span of s.ins) for (let j = 0; j < span.len && k < s.len; j++, k++) assert.equal(span.bytes[j], pattern(u.token, k));
      submitted.delete(u.token);
      returned++;
    }
  };
  const reap = async (): Promise<void> => check(driver.coherent ? driver.reapSync() : await driver.reap());
  const complete = (pick: number): void => {
    const { chain, token: t } = held.splice(pick % held.length, 1)[0]!;
    const s = submitted.get(t)!;
    const writable = buffersOf(memory, chain).filter((b) => (b.flags & VIRTQ_DESC_F_WRITE) !== 0);
    const total = writable.reduce((n, b) => n + b.len, 0);
    const len = total === 0 ? 0 : next() % (total + 1);
    let k = 0;
    for (const b of writable) for (let j = 0; j < b.len && k < len; j++, k++) memory.write8(b.addr + j, pattern(t, k));
    s.len = len;
    device.use(chain.id, len, s.slots);
    usedSlots += s.slots;
    idToken.delete(chain.id);
  };

  // Each lap needs a bounded number of steps; a driver that stops publishing would otherwise stall here.
  for (let steps = 0; usedSlots < options.laps * options.size; steps++) {
    assert.ok(steps < 64 * options.laps * options.size + 1024, `stalled at ${usedSlots} used descriptors`);
    const action = next() % 8;
    if (action < 4) {
      const n = 1 + (next() % Math.min(options.size, 4));
      const nOut = next() % (n + 1);
      if (n > driver.numFree && !(options.indirect && n > 1 && driver.numFree > 0)) {
        await publish();
        if (held.length > 0) complete(next());
        continue;
      }
      const t = token++;
      const outs = Array.from({ length: nOut }, () => buffer(1 + (next() % 24), fill(t)));
      const ins = Array.from({ length: n - nOut }, () => buffer(1 + (next() % 24), 0xee));
      const freeBefore = driver.numFree;
      const id = driver.add(outs, ins, t);
      assert.ok(!idToken.has(id), `id ${id} handed out twice`);
      idToken.set(id, t);
      submitted.set(t, { ins, readable: nOut, slots: freeBefore - driver.numFree });
    } else if (action < 6) await publish();
    else if (action === 6 && held.length > 0) complete(next());
    else await reap();
  }
  await publish();
  while (held.length > 0) complete(next());
  await reap();
  assert.equal(submitted.size, 0, 'every token came back');
  assert.equal(returned, token);
  assert.equal(driver.inFlight, 0);
  assert.equal(driver.numFree, options.size);
  assert.ok(usedSlots >= options.laps * options.size);
}

for (const size of [1, 2, 3, 7, 64, 100, 256]) {
  for (const remote of [false, true]) {
    test(`size ${size}, ${remote ? 'remote image' : 'coherent'}: random chains over several laps, completed out of order, every byte checked`, async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(fc.nat(1 << 16), { minLength: 64, maxLength: 256 }), fc.boolean(), async (choices, indirect) => {
          await runLaps({ size, remote, indirect, laps: size > 64 ? 3 : 6 }, choices);
        }),
        { numRuns: size > 64 ? 3 : 8, seed: size * 2 + (remote ? 1 : 0) },
      );
    });
  }
}

test('ids are independent of slots: freed ids are reused in the order they came back, and the used walk skips each chain', () => {
  const { driver, device, buffer } = packedRig({ size: 8 });
  const b = buffer(8);
  // ids 0..3 with chains of 1, 3, 2, 1 descriptors: slots 0 | 1-3 | 4-5 | 6.
  const shapes = [1, 3, 2, 1];
  const ids = shapes.map((n, t) =>
    driver.add(
      Array.from({ length: n }, () => b),
      [],
      t,
    ),
  );
  assert.deepEqual(ids, [0, 1, 2, 3]);
  driver.publishSync();
  const chains = shapes.map(() => device.pop()!);
  assert.deepEqual(
    chains.map((c) => c.descs.length),
    shapes,
  );
  // Complete 2, then 0, then 3: used descriptors at slots 0, 2, 3 (each skipping its chain's length).
  device.use(2, 0, 2);
  device.use(0, 0, 1);
  device.use(3, 0, 1);
  assert.equal(device.usedNext, 4);
  assert.deepEqual(
    driver.reapSync().map((u) => u.token),
    [2, 0, 3],
  );
  assert.equal(driver.numFree, 8 - 3);
  // Freed 2, 0, 3 (a stack): the next chains get 3, 0, 2, then 4.
  const again = [0, 1, 2, 3].map((k) => driver.add([b], [], 10 + k));
  assert.deepEqual(again, [3, 0, 2, 4]);
  driver.publishSync();
  // Chain 1 (3 slots) is still in flight; the used walk reaches it after the three others.
  device.use(1, 0, 3);
  for (const id of again) {
    assert.equal(device.pop()!.id, id);
    device.use(id, 0, 1);
  }
  assert.deepEqual(
    driver.reapSync().map((u) => u.token),
    [1, 10, 11, 12, 13],
  );
  assert.equal(driver.numFree, 8);
  // 1 at slot 4 (skip 3), then 3, 0, 2, 4 at slots 7, 0, 1, 2 on the second lap.
  assert.equal(device.usedNext, 3);
  assert.equal(device.usedWrap, 0);
});
