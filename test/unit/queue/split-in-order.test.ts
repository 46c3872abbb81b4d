import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InOrderQueue } from '../../../src/queue/in-order-queue.js';
import type { DescriptorChain } from '../../../src/queue/types.js';
import { VIRTQ_DESC_F_INDIRECT, VIRTQ_DESC_F_NEXT } from '../../../src/spec/ring.js';
import { buffer, pair, rejects, serve } from '../../helpers/ring-pair.js';
import { SeededRandom } from '../../helpers/seeded-random.js';

/** Descriptor `id` of the table as the driver wrote it: [flags, next]. */
function descLinks(memory: { read16(a: number): number }, descAddr: number, id: number): [number, number] {
  return [memory.read16(descAddr + id * 16 + 12), memory.read16(descAddr + id * 16 + 14)];
}

test('IN_ORDER driver: descriptors in ring order from 0, next = x + 1 and 0 after the last (2.7.5), again from 0 after a reset', async () => {
  const { driver, device, dma, memory } = pair({ size: 8, inOrder: true });
  const span = (): { addr: number; len: number } => buffer(dma, 4, 0);
  assert.equal(driver.add([span(), span()], [span()], 1), 0);
  assert.equal(driver.add([span()], [span()], 2), 3);
  assert.equal(driver.add([span()], [], 3), 5);
  assert.deepEqual(descLinks(memory, driver.descAddr, 0), [VIRTQ_DESC_F_NEXT, 1]);
  assert.deepEqual(descLinks(memory, driver.descAddr, 1), [VIRTQ_DESC_F_NEXT, 2]);
  assert.equal(descLinks(memory, driver.descAddr, 3)[1], 4);
  await driver.publish();
  const q = new InOrderQueue(device);
  const chains: DescriptorChain[] = [];
  for (let c = q.pop(); c; c = q.pop()) chains.push(c);
  for (const c of chains) q.pushUsed(c.head, serve(c));
  assert.equal((await driver.reap()).length, 3);
  // The next chain of three wraps: 6, 7, 0.
  assert.equal(driver.add([span(), span()], [span()], 4), 6);
  assert.deepEqual(descLinks(memory, driver.descAddr, 6), [VIRTQ_DESC_F_NEXT, 7]);
  assert.deepEqual(descLinks(memory, driver.descAddr, 7), [VIRTQ_DESC_F_NEXT, 0]);
  assert.equal(driver.numFree, 5);
  assert.deepEqual(driver.detachUnused(), [4]);
  assert.equal(driver.add([span()], [], 5), 0, 'after a reset the ring order starts at 0 again');
});

test('IN_ORDER driver: an indirect table numbers its entries 0, 1, 2 (2.7.5.3) behind the next ring descriptor', async () => {
  const { driver, dma, memory } = pair({ size: 4, inOrder: true, indirect: true });
  for (let k = 0; k < 3; k++) driver.add([buffer(dma, 4, 0)], [], k); // descriptors 0, 1, 2
  const head = driver.add([buffer(dma, 4, 0), buffer(dma, 4, 0)], [buffer(dma, 4, 0)], 3); // 1 free: a table
  assert.equal(head, 3);
  const [flags] = descLinks(memory, driver.descAddr, 3);
  assert.equal(flags, VIRTQ_DESC_F_INDIRECT);
  const table = Number(memory.read64(driver.descAddr + 3 * 16));
  assert.equal(descLinks(memory, table, 0)[1], 1);
  assert.equal(descLinks(memory, table, 1)[1], 2);
});

test('IN_ORDER driver: a batched used element returns every chain up to the one it names, the skipped ones with all their writable bytes (2.7.9)', async () => {
  const { driver, device, dma, memory } = pair({ size: 8, inOrder: true, remote: true });
  const ins = [3, 5, 7, 2].map((n, k) => buffer(dma, n, 0x10 + k));
  ins.forEach((inn, k) => driver.add([buffer(dma, 1, k)], [inn], 100 + k));
  await driver.publish();
  const q = new InOrderQueue(device);
  const chains: DescriptorChain[] = [];
  for (let c = q.pop(); c; c = q.pop()) chains.push(c);
  // The device writes every byte of chains 0..2 (completing them backwards), 1 byte of chain 3.
  for (const k of [2, 1, 0]) q.pushUsed(chains[k]!.head, serve(chains[k]!));
  chains[3]!.view(1).fill(0xab);
  q.pushUsed(chains[3]!.head, 1);
  assert.equal(device.usedIdx, 4);
  assert.equal(memory.read32(driver.usedAddr + 4), chains[2]!.head, 'one element for the batch of three, in slot 0');
  assert.deepEqual(await driver.reap(), [
    { token: 100, len: 3 },
    { token: 101, len: 5 },
    { token: 102, len: 7 },
    { token: 103, len: 1 },
  ]);
  // The skipped chains' bytes were refreshed from guest memory, all of them (remote-like DMA).
  assert.deepEqual([...ins[0]!.bytes], [0, 1, 2]);
  assert.deepEqual([...ins[1]!.bytes], [1, 2, 3, 4, 5]);
  assert.deepEqual([...ins[2]!.bytes], [2, 3, 4, 5, 6, 7, 8]);
  assert.deepEqual([...ins[3]!.bytes], [0xab, 0x13], 'only the first len bytes of the last are refreshed');
  assert.equal(driver.numFree, 8);
  assert.equal(driver.inFlight, 0);
});

test('IN_ORDER hostile device: a used element out of order, reaching past used.idx, or behind an earlier batch is ERR_DEVICE_USED_ORDER; nothing is taken', async () => {
  const { driver, dma, memory } = pair({ size: 8, inOrder: true });
  const usedElem = (slot: number, id: number, len: number): void => {
    memory.write32(driver.usedAddr + 4 + slot * 8, id);
    memory.write32(driver.usedAddr + 8 + slot * 8, len);
  };
  const setUsedIdx = (idx: number): void => memory.write16(driver.usedAddr + 2, idx);
  const heads = [0, 1, 2].map((k) => driver.add([buffer(dma, 1, 0)], [buffer(dma, 2, 0)], k));
  const late = driver.add([buffer(dma, 1, 0)], [], 3);
  await driver.publish();
  const hidden = driver.add([buffer(dma, 1, 0)], [], 4); // never published

  usedElem(0, heads[1]!, 2); // the second chain first, used.idx moved by one only: out of order
  setUsedIdx(1);
  await rejects(driver.reap(), 'ERR_DEVICE_USED_ORDER');
  usedElem(0, late, 0); // a batch of four with used.idx at 3
  setUsedIdx(3);
  await rejects(driver.reap(), 'ERR_DEVICE_USED_ORDER');
  // A batch of two, then an element naming a chain that batch already covered.
  usedElem(0, heads[1]!, 2);
  usedElem(2, heads[0]!, 2);
  await rejects(driver.reap(), 'ERR_DEVICE_USED_ORDER');
  // Ids not in flight, or not published, stay ERR_DEVICE_USED_ID; lens beyond the chain ERR_DEVICE_USED_LEN.
  usedElem(0, 7, 0);
  setUsedIdx(1);
  await rejects(driver.reap(), 'ERR_DEVICE_USED_ID');
  usedElem(0, hidden, 0);
  await rejects(driver.reap(), 'ERR_DEVICE_USED_ID');
  usedElem(0, heads[0]!, 3);
  await rejects(driver.reap(), 'ERR_DEVICE_USED_LEN');
  setUsedIdx(6); // more than the five in flight
  await rejects(driver.reap(), 'ERR_DEVICE_USED_INDEX');
  assert.equal(driver.inFlight, 5, 'a refused reap takes nothing');

  // The honest answer afterwards: a batch of two, then the last two one by one.
  usedElem(0, heads[1]!, 1);
  usedElem(2, heads[2]!, 0);
  usedElem(3, late, 0);
  setUsedIdx(4);
  assert.deepEqual(await driver.reap(), [
    { token: 0, len: 2 },
    { token: 1, len: 1 },
    { token: 2, len: 0 },
    { token: 3, len: 0 },
  ]);
  assert.equal(driver.inFlight, 1);
});

test('IN_ORDER both halves: random completion orders, data checked; over a copying DMA, and across the 16-bit wrap', async () => {
  const SIZE = 128;
  for (const [remote, chainCount] of [
    [true, 1000],
    [false, 0x10000 + SIZE],
  ] as const) {
    const { driver, device, dma } = pair({ size: SIZE, inOrder: true, remote, eventIdx: true, indirect: true });
    const q = new InOrderQueue(device);
    const random = new SeededRandom(99);
    const outs = Array.from({ length: SIZE }, () => buffer(dma, 2, 0));
    const ins = Array.from({ length: SIZE }, () => buffer(dma, 3, 0));
    let token = 0;
    let wrong = 0;
    while (token < chainCount) {
      const n = 1 + random.below(SIZE / 2);
      const first = token;
      for (let k = 0; k < n; k++, token++) {
        const slot = token % SIZE;
        outs[slot]!.bytes.set([token & 0xff, (token >> 8) & 0xff]);
        ins[slot]!.bytes.fill(0);
        driver.add([outs[slot]!], [ins[slot]!], token);
      }
      await driver.publish();
      const chains: DescriptorChain[] = [];
      for (let c = q.pop(); c; c = q.pop()) chains.push(c);
      const lens = chains.map(() => 1 + random.below(3));
      for (const i of random.permutation(chains.length)) {
        serve(chains[i]!);
        q.pushUsed(chains[i]!.head, lens[i]!);
      }
      const used = await driver.reap();
      assert.equal(used.length, n);
      used.forEach((u, k) => {
        // Counted, not asserted one by one: 65,000 chains of asserts would dominate the run.
        if (u.token !== first + k || u.len !== lens[k]) wrong++;
        const sum = (u.token & 0xff) + ((u.token >> 8) & 0xff);
        const bytes = ins[u.token % SIZE]!.bytes;
        for (let j = 0; j < u.len; j++) if (bytes[j] !== ((sum + j) & 0xff)) wrong++;
      });
    }
    assert.equal(wrong, 0, 'tokens, lens and bytes as the device wrote them, in order');
    assert.equal(device.usedIdx, token & 0xffff);
    assert.equal(driver.numFree, SIZE);
    assert.equal(driver.inFlight, 0);
  }
});
