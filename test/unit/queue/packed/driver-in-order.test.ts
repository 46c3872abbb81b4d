import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DeviceFaultError, type DeviceFaultCode } from '../../../../src/errors.js';
import { InOrderQueue } from '../../../../src/queue/in-order-queue.js';
import { PackedQueue } from '../../../../src/queue/packed/device-ring.js';
import type { DescriptorChain } from '../../../../src/queue/types.js';
import { packedRig } from '../../../helpers/packed-ring.js';
import { SeededRandom } from '../../../helpers/seeded-random.js';

async function rejects(p: Promise<unknown>, code: DeviceFaultCode): Promise<void> {
  await assert.rejects(p, (e: unknown) => e instanceof DeviceFaultError && e.code === code);
}

test('IN_ORDER packed driver: one used descriptor returns every chain up to the one it names, the skipped ones with all their writable bytes (2.8.8)', async () => {
  const rig = packedRig({ size: 8, inOrder: true, remote: true });
  const { driver, device, memory } = rig;
  const ins = [rig.buffer(3, 0x11), rig.buffer(2, 0x22), rig.buffer(2, 0x23), rig.buffer(5, 0x33)];
  driver.add([rig.buffer(1, 1)], [ins[0]!], 100); // 2 descriptors
  driver.add([], [ins[1]!, ins[2]!], 101); // 2
  driver.add([], [ins[3]!], 102); // 1
  await driver.publish();
  const chains = [device.pop()!, device.pop()!, device.pop()!];
  assert.equal(device.pop(), null);
  // The device writes every byte of the first two chains and one of the third.
  memory.write(ins[0]!.addr, Uint8Array.of(7, 8, 9));
  memory.write(ins[1]!.addr, Uint8Array.of(1, 2));
  memory.write(ins[2]!.addr, Uint8Array.of(3, 4));
  memory.write(ins[3]!.addr, Uint8Array.of(0xab));
  // One used descriptor, in slot 0, naming the third chain; the device moves past all five descriptors.
  device.use(chains[2]!.id, 1, 5);
  assert.deepEqual(await driver.reap(), [
    { token: 100, len: 3 },
    { token: 101, len: 4 },
    { token: 102, len: 1 },
  ]);
  assert.deepEqual([...ins[0]!.bytes], [7, 8, 9]);
  assert.deepEqual([...ins[1]!.bytes, ...ins[2]!.bytes], [1, 2, 3, 4], 'the skipped chains were refreshed whole');
  assert.deepEqual([...ins[3]!.bytes], [0xab, 0x33, 0x33, 0x33, 0x33], 'only the first len bytes of the last');
  assert.equal(driver.numFree, 8);
  // The next chain goes at slot 5, and its used descriptor is read there.
  driver.add([], [rig.buffer(1)], 103);
  await driver.publish();
  const next = device.pop()!;
  device.use(next.id, 0, 1);
  assert.deepEqual(await driver.reap(), [{ token: 103, len: 0 }]);
});

test('IN_ORDER packed hostile device: a used descriptor naming a chain an earlier batch covered is ERR_DEVICE_USED_ORDER; nothing is taken', async () => {
  const rig = packedRig({ size: 8, inOrder: true });
  const { driver, device } = rig;
  const ids = [0, 1, 2].map((k) => driver.add([], [rig.buffer(2)], k));
  await driver.publish();
  const hidden = driver.add([], [rig.buffer(2)], 3); // never published
  for (let k = 0; k < 3; k++) device.pop();
  device.use(ids[1]!, 2, 2); // a batch of the first two, in slot 0
  device.use(ids[0]!, 2, 1); // slot 2 names the first again
  await rejects(driver.reap(), 'ERR_DEVICE_USED_ORDER');
  assert.equal(driver.inFlight, 4, 'a refused reap takes nothing');
  // An unpublished chain named in slot 0 stays ERR_DEVICE_USED_ID.
  device.usedNext = 0;
  device.use(hidden, 0, 1);
  await rejects(driver.reap(), 'ERR_DEVICE_USED_ID');
  // The honest answer: the first three in one descriptor.
  device.usedNext = 0;
  device.use(ids[2]!, 1, 3);
  assert.deepEqual(await driver.reap(), [
    { token: 0, len: 2 },
    { token: 1, len: 2 },
    { token: 2, len: 1 },
  ]);
  assert.equal(driver.inFlight, 1);
});

test('IN_ORDER packed, both halves: random completion orders behind the in-order layer over many laps, sizes not powers of two, data checked', async () => {
  for (const [size, remote] of [
    [7, true],
    [100, false],
  ] as const) {
    const rig = packedRig({ size, inOrder: true, remote, eventIdx: true });
    const { driver, memory } = rig;
    const q = new InOrderQueue(
      new PackedQueue({
        index: 2,
        size,
        memory,
        desc: driver.areas.desc,
        driver: driver.areas.driver,
        device: driver.areas.device,
        eventIdx: true,
        indirect: false,
      }),
    );
    const random = new SeededRandom(size);
    const ins = Array.from({ length: size }, () => rig.buffer(4));
    const lens = new Map<number, number>();
    let token = 0;
    let next = 0;
    let wrong = 0;
    while (token < size * 40) {
      const n = 1 + random.below(Math.max(1, Math.floor(size / 2)));
      for (let k = 0; k < n && driver.numFree >= 2; k++, token++) {
        const slot = token % size;
        ins[slot]!.bytes.fill(0);
        driver.add([rig.buffer(1, token & 0xff)], [ins[slot]!], token);
      }
      await driver.publish();
      const chains: DescriptorChain[] = [];
      for (let c = q.pop(); c; c = q.pop()) chains.push(c);
      for (const i of random.permutation(chains.length)) {
        const c = chains[i]!;
        const tag = c.view(0)[0]!;
        const len = random.below(5);
        c.view(1).fill(tag ^ 0x5a, 0, len);
        lens.set(tag, len);
        q.pushUsed(c.head, len);
      }
      for (const u of await driver.reap()) {
        if (u.token !== next || u.len !== lens.get(u.token & 0xff)) wrong++;
        const bytes = ins[u.token % size]!.bytes;
        for (let j = 0; j < u.len; j++) if (bytes[j] !== ((u.token & 0xff) ^ 0x5a)) wrong++;
        next++;
      }
    }
    assert.equal(wrong, 0, `size ${size}: tokens in order with the lens and bytes the device wrote`);
    assert.equal(next, token);
    assert.equal(driver.inFlight, 0);
    assert.equal(driver.numFree, size);
  }
});
