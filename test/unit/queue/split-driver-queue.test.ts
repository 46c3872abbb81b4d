import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DeviceFaultError, QueueFullError, UsageError, type DeviceFaultCode } from '../../../src/errors.js';
import type { DmaMemory } from '../../../src/memory/dma.js';
import { ArrayGuestMemory } from '../../../src/memory/guest-memory.js';
import { RamDma } from '../../../src/bus/ram-dma.js';
import { ImageDma } from '../../helpers/image-dma.js';
import { SplitQueue } from '../../../src/queue/split/device-ring.js';
import { SplitQueueDriver } from '../../../src/queue/split/driver-ring.js';
import type { DmaSpan } from '../../../src/memory/dma.js';
import type { DescriptorChain } from '../../../src/queue/types.js';
import { VIRTQ_AVAIL_F_NO_INTERRUPT, VIRTQ_DESC_F_INDIRECT, legacyRingSize, legacyUsedOffset } from '../../../src/spec/ring.js';

const DMA_BASE = 0x10000;
const DMA_SIZE = 0x100000;

interface Pair {
  readonly memory: ArrayGuestMemory;
  readonly dma: DmaMemory;
  readonly driver: SplitQueueDriver<number>;
  readonly device: SplitQueue;
}

function pair(options: { size: number; eventIdx?: boolean; indirect?: boolean; legacy?: boolean; remote?: boolean }): Pair {
  const memory = new ArrayGuestMemory(DMA_BASE + DMA_SIZE);
  const dma = options.remote ? new ImageDma(memory, DMA_BASE, DMA_SIZE) : new RamDma(memory, DMA_BASE, DMA_SIZE);
  const eventIdx = options.eventIdx ?? false;
  const indirect = options.indirect ?? false;
  const driver = new SplitQueueDriver<number>({ index: 1, size: options.size, dma, eventIdx, indirect, legacy: options.legacy ?? false });
  const device = new SplitQueue({
    index: 1,
    size: options.size,
    memory,
    desc: driver.descAddr,
    driver: driver.availAddr,
    device: driver.usedAddr,
    eventIdx,
    indirect,
  });
  return { memory, dma, driver, device };
}

/** A DMA buffer filled with `fill`, as a span. */
function buffer(dma: DmaMemory, len: number, fill: number): DmaSpan & { bytes: Uint8Array } {
  const b = dma.alloc(len, 8);
  b.bytes.fill(fill);
  return { addr: b.addr, len, bytes: b.bytes };
}

async function rejects(p: Promise<unknown>, code: DeviceFaultCode): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof DeviceFaultError, `expected DeviceFaultError, got ${String(e)}`);
    assert.equal(e.code, code);
    return true;
  });
}

/** The device's job in these tests: each writable byte k becomes (sum of readable bytes + k) & 0xff. */
function serve(chain: DescriptorChain): number {
  let sum = 0;
  for (let i = 0; i < chain.readable; i++) for (const b of chain.view(i)) sum += b;
  let k = 0;
  for (let i = chain.readable; i < chain.count; i++) {
    const v = chain.view(i);
    for (let j = 0; j < v.length; j++) v[j] = (sum + k++) & 0xff;
  }
  return chain.writableBytes;
}

test('modern layout: three allocations aligned 16/2/4, rings zeroed', () => {
  const { driver, memory } = pair({ size: 64, remote: true });
  assert.equal(driver.descAddr % 16, 0);
  assert.equal(driver.availAddr % 2, 0);
  assert.equal(driver.usedAddr % 4, 0);
  assert.equal(driver.legacyAreaAddr, undefined);
  assert.equal(driver.numFree, 64);
  assert.ok(memory.contains(driver.usedAddr, 6 + 8 * 64));
});

test('legacy layout (2.7.2): one 4096-aligned area, avail right after the table, used at the next 4096 boundary', () => {
  // Queue size 256: table 4096 bytes, avail 6 + 2*256 = 518 -> used at 8192; used 6 + 8*256 = 2054 -> 4096.
  assert.equal(legacyUsedOffset(256, 4096), 8192);
  assert.equal(legacyRingSize(256, 4096), 12288);
  // Size 1024: table 16384 + avail 2054 -> used at 20480; used 8198 -> 12288; 32768 in all.
  assert.equal(legacyUsedOffset(1024, 4096), 20480);
  assert.equal(legacyRingSize(1024, 4096), 32768);
  const { driver, device, dma } = pair({ size: 256, legacy: true });
  assert.equal(driver.legacyAreaAddr, driver.descAddr);
  assert.equal(driver.descAddr % 4096, 0);
  assert.equal(driver.availAddr, driver.descAddr + 4096);
  assert.equal(driver.usedAddr, driver.descAddr + 8192);
  const out = buffer(dma, 4, 1);
  driver.add([out], [], 7);
  return driver.publish().then(() => assert.equal(device.pop()?.len(0), 4));
});

test('round trip: many chains in flight, completed out of order, data checked, over a copying (remote-like) DMA', async () => {
  for (const remote of [false, true]) {
    const { driver, device, dma } = pair({ size: 32, remote });
    const expected = new Map<number, { ins: (DmaSpan & { bytes: Uint8Array })[]; sum: number; writable: number }>();
    let token = 0;
    const held: DescriptorChain[] = [];
    for (let round = 0; round < 40; round++) {
      // Fill what fits: 1..3 readable, 1..2 writable buffers of assorted sizes.
      while (true) {
        const nOut = 1 + (token % 3);
        const nIn = 1 + (token % 2);
        if (driver.numFree < nOut + nIn) break;
        const outs = Array.from({ length: nOut }, (_, i) => buffer(dma, 1 + ((token * 7 + i) % 50), (token + i) & 0xff));
        const ins = Array.from({ length: nIn }, (_, i) => buffer(dma, 1 + ((token * 5 + i) % 40), 0xee));
        const sum = outs.reduce((s, o) => s + o.len * o.bytes[0]!, 0);
        driver.add(outs, ins, token);
        expected.set(token, { ins, sum, writable: ins.reduce((s, b) => s + b.len, 0) });
        token++;
      }
      await driver.publish();
      for (let c = device.pop(); c !== null; c = device.pop()) held.push(c);
      // Complete every other held chain, newest first.
      for (let i = held.length - 1; i >= 0; i -= 2) {
        const c = held.splice(i, 1)[0]!;
        device.pushUsed(c.head, serve(c));
      }
      for (const used of await driver.reap()) {
        const e = expected.get(used.token)!;
        assert.equal(used.len, e.writable);
        let k = 0;
        for (const b of e.ins) for (const v of b.bytes) assert.equal(v, (e.sum + k++) & 0xff, `token ${used.token} byte ${k}`);
        expected.delete(used.token);
        for (const b of e.ins) dma.free(b);
      }
    }
    for (const c of held.splice(0)) device.pushUsed(c.head, 0);
    const rest = await driver.reap();
    assert.equal(rest.length, expected.size);
    assert.equal(driver.numFree, 32);
    assert.equal(driver.inFlight, 0);
    assert.ok(token > 150, 'many chains went through');
  }
});

test('reap refreshes only the first len writable bytes (2.7.8.2)', async () => {
  const { driver, device, dma } = pair({ size: 8, remote: true });
  const a = buffer(dma, 4, 0xaa);
  const b = buffer(dma, 4, 0xbb);
  driver.add([], [a, b], 1);
  await driver.publish();
  const c = device.pop()!;
  c.view(0).fill(1);
  c.view(1).fill(2);
  device.pushUsed(c.head, 6);
  assert.deepEqual(await driver.reap(), [{ token: 1, len: 6 }]);
  assert.deepEqual([...a.bytes], [1, 1, 1, 1]);
  assert.deepEqual([...b.bytes], [2, 2, 0xbb, 0xbb]);
});

test('indirect tables when descriptors run short; QueueFullError without them', async () => {
  const { driver, device, dma } = pair({ size: 8, indirect: true });
  const span = (): DmaSpan => buffer(dma, 8, 0);
  driver.add([span(), span()], [span()], 1);
  driver.add([span()], [span(), span()], 2);
  assert.equal(driver.numFree, 2);
  driver.add([span(), span()], [span(), span()], 3); // 4 buffers, 2 descriptors free: indirect
  assert.equal(driver.numFree, 1);
  await driver.publish();
  const chains = [device.pop()!, device.pop()!, device.pop()!];
  assert.deepEqual(
    chains.map((c) => [c.count, c.readable]),
    [
      [3, 2],
      [3, 1],
      [4, 2],
    ],
  );
  for (const c of chains) device.pushUsed(c.head, 0);
  await driver.reap();
  assert.equal(driver.numFree, 8);

  const plain = pair({ size: 4 });
  plain.driver.add([buffer(plain.dma, 1, 0), buffer(plain.dma, 1, 0)], [], 1);
  assert.throws(() => plain.driver.add([buffer(plain.dma, 1, 0)], [buffer(plain.dma, 1, 0), buffer(plain.dma, 1, 0)], 2), QueueFullError);
  assert.equal(plain.driver.numFree, 2, 'a refused add takes nothing');
  assert.throws(() => plain.driver.add([], [], 3), UsageError);
  assert.throws(() => plain.driver.add([{ addr: 0x20000, len: 2 ** 32 }], [], 3), UsageError);
  assert.throws(() => plain.driver.add([{ addr: -1, len: 1 }], [], 3), UsageError);
});

test('the indirect descriptor the driver writes: INDIRECT flag, len 16 * buffers', async () => {
  const { driver, device, memory, dma } = pair({ size: 4, indirect: true });
  driver.add([buffer(dma, 8, 0)], [], 1);
  driver.add([buffer(dma, 8, 0)], [], 2);
  const head = driver.add([buffer(dma, 8, 0), buffer(dma, 8, 0), buffer(dma, 8, 0)], [], 3);
  await driver.publish();
  // struct virtq_desc: le32 len @8, le16 flags @12.
  assert.equal(memory.read16(driver.descAddr + head * 16 + 12), VIRTQ_DESC_F_INDIRECT);
  assert.equal(memory.read32(driver.descAddr + head * 16 + 8), 48);
  device.pop();
  device.pop();
  assert.equal(device.pop()!.count, 3);
});

test('publish reports whether the device wants a notification: NO_NOTIFY, and avail_event with EVENT_IDX', async () => {
  const p = pair({ size: 8 });
  p.driver.add([buffer(p.dma, 4, 0)], [], 0);
  assert.equal(await p.driver.publish(), true);
  p.device.setNotification(false);
  p.driver.add([buffer(p.dma, 4, 0)], [], 1);
  assert.equal(await p.driver.publish(), false);
  assert.equal(await p.driver.publish(), false, 'nothing new to publish');

  const e = pair({ size: 8, eventIdx: true, remote: true });
  e.driver.add([buffer(e.dma, 4, 0)], [], 0);
  assert.equal(await e.driver.publish(), true, 'avail_event 0: the first entry needs a notification');
  e.device.pop(); // reads avail idx 1, sets avail_event 1
  e.driver.add([buffer(e.dma, 4, 0)], [], 1);
  e.driver.add([buffer(e.dma, 4, 0)], [], 2);
  assert.equal(await e.driver.publish(), true, 'entry 1 written: crosses avail_event 1');
  e.driver.add([buffer(e.dma, 4, 0)], [], 3);
  assert.equal(await e.driver.publish(), false, 'the device has not caught up: no new notification');
});

test('interrupt suppression: VIRTQ_AVAIL_F_NO_INTERRUPT, or used_event with EVENT_IDX', async () => {
  for (const eventIdx of [false, true]) {
    const { driver, device, dma, memory } = pair({ size: 8, eventIdx, remote: true });
    const cycle = async (): Promise<boolean> => {
      driver.add([], [buffer(dma, 4, 0)], 0);
      await driver.publish();
      device.pushUsed(device.pop()!.head, 4);
      const wanted = device.needsInterrupt();
      await driver.reap();
      return wanted;
    };
    assert.equal(await cycle(), true);
    await driver.setInterruptSuppression(true);
    if (!eventIdx) assert.equal(memory.read16(driver.availAddr), VIRTQ_AVAIL_F_NO_INTERRUPT);
    assert.equal(await cycle(), false);
    assert.equal(await cycle(), false);
    await driver.setInterruptSuppression(false);
    assert.equal(memory.read16(driver.availAddr), 0);
    assert.equal(await cycle(), true);
    assert.equal(await cycle(), true, 'reap moves used_event along');
  }
});

test('a hostile device: used id never submitted, len beyond the buffers, used idx jumping, duplicate ids', async () => {
  const { driver, device, dma, memory } = pair({ size: 8 });
  const usedElem = (slot: number, id: number, len: number): void => {
    memory.write32(driver.usedAddr + 4 + slot * 8, id);
    memory.write32(driver.usedAddr + 8 + slot * 8, len);
  };
  const setUsedIdx = (idx: number): void => memory.write16(driver.usedAddr + 2, idx);
  const a = driver.add([buffer(dma, 4, 0)], [buffer(dma, 4, 0)], 100);
  const b = driver.add([], [buffer(dma, 2, 0), buffer(dma, 2, 0)], 200);
  await driver.publish();
  device.pop();
  device.pop();

  usedElem(0, 5, 0); // 5 was never submitted
  setUsedIdx(1);
  await rejects(driver.reap(), 'ERR_DEVICE_USED_ID');
  usedElem(0, 99, 0); // outside the table
  await rejects(driver.reap(), 'ERR_DEVICE_USED_ID');
  usedElem(0, a, 5); // 4 writable bytes
  await rejects(driver.reap(), 'ERR_DEVICE_USED_LEN');
  usedElem(0, a, 0);
  usedElem(1, a, 0); // the same id twice
  setUsedIdx(2);
  await rejects(driver.reap(), 'ERR_DEVICE_USED_ID');
  setUsedIdx(3); // three used with two in flight
  await rejects(driver.reap(), 'ERR_DEVICE_USED_INDEX');
  setUsedIdx(0x8000);
  await rejects(driver.reap(), 'ERR_DEVICE_USED_INDEX');
  assert.equal(driver.inFlight, 2, 'a rejected reap takes nothing');

  usedElem(1, b, 4);
  setUsedIdx(2);
  assert.deepEqual(await driver.reap(), [
    { token: 100, len: 0 },
    { token: 200, len: 4 },
  ]);
  assert.equal(driver.numFree, 8);
  // A used id that was in flight once but is no longer (with another chain in flight).
  const c = driver.add([buffer(dma, 1, 0)], [], 300);
  await driver.publish();
  usedElem(2, c === a ? b : a, 0);
  setUsedIdx(3);
  await rejects(driver.reap(), 'ERR_DEVICE_USED_ID');
});

test('detachUnused hands back the tokens in flight and frees their descriptors', async () => {
  const { driver, dma } = pair({ size: 4, indirect: true });
  driver.add([buffer(dma, 1, 0)], [], 1);
  driver.add([buffer(dma, 1, 0)], [buffer(dma, 1, 0)], 2);
  driver.add([buffer(dma, 1, 0)], [buffer(dma, 1, 0)], 3); // one descriptor left: indirect
  await driver.publish();
  assert.equal(driver.numFree, 0);
  assert.deepEqual(driver.detachUnused().sort(), [1, 2, 3]);
  assert.equal(driver.numFree, 4);
  assert.equal(driver.inFlight, 0);
});

test('notificationData (2.9) is the published avail idx: chains added but not published do not count', async () => {
  const { driver, device, dma, memory } = pair({ size: 4 });
  const out = buffer(dma, 1, 0);
  assert.equal(driver.notificationData(), 0);
  for (let round = 0; round < 0x4100; round++) {
    driver.add([out], [], 1);
    driver.add([out], [], 2);
    const before = driver.notificationData();
    await driver.publish();
    driver.add([out], [], 3);
    // What the device reads in avail.idx (offset 2 of the driver area) is what a notification says.
    assert.equal(driver.notificationData(), memory.read16(driver.availAddr + 2));
    assert.equal(driver.notificationData(), (before + 2) & 0xffff);
    await driver.publish();
    for (let c = device.pop(); c !== null; c = device.pop()) device.pushUsed(c.head, 0);
    await driver.reap();
  }
  assert.equal(driver.notificationData(), (0x4100 * 3) & 0xffff, 'wrapped past 0xffff');
  driver.detachUnused();
  assert.equal(driver.notificationData(), 0, 'a detached ring starts again at 0');
});

test('both halves across the 16-bit index wrap, remote-like DMA, EVENT_IDX in both directions', async () => {
  const { driver, device, dma } = pair({ size: 8, eventIdx: true, remote: true });
  const out = buffer(dma, 2, 0x5a);
  const inn = buffer(dma, 3, 0);
  // Three chains per round in a ring of 8: the flushed/refreshed ring ranges keep wrapping.
  for (let round = 0; round < 23000; round++) {
    for (let k = 0; k < 3; k++) driver.add([out], [inn], round * 3 + k);
    assert.equal(await driver.publish(), true, `round ${round}: the device caught up, so it wants a notification`);
    for (let c = device.pop(); c !== null; c = device.pop()) {
      assert.equal(c.view(0)[0], 0x5a);
      device.pushUsed(c.head, 1 + (c.head % 3));
    }
    assert.equal(device.needsInterrupt(), true, `round ${round}: used idx passed used_event`);
    const used = await driver.reap();
    assert.deepEqual(
      used.map((u) => u.token),
      [0, 1, 2].map((k) => round * 3 + k),
    );
  }
  assert.equal(device.usedIdx, (23000 * 3) & 0xffff);
  assert.equal(device.lastAvailIdx, (23000 * 3) & 0xffff);
  assert.equal(driver.numFree, 8);
});

test('coherent DMA (in-process): no flush or refresh is issued, and EVENT_IDX notifications and suppression still hold', async () => {
  const memory = new ArrayGuestMemory(DMA_BASE + DMA_SIZE);
  let syncs = 0;
  class CountingDma extends RamDma {
    override async flush(): Promise<void> {
      syncs++;
    }
    override async refresh(): Promise<void> {
      syncs++;
    }
  }
  const dma = new CountingDma(memory, DMA_BASE, DMA_SIZE);
  assert.equal(dma.coherent, true);
  const driver = new SplitQueueDriver<number>({ index: 0, size: 8, dma, eventIdx: true, indirect: true });
  const device = new SplitQueue({
    index: 0,
    size: 8,
    memory,
    desc: driver.descAddr,
    driver: driver.availAddr,
    device: driver.usedAddr,
    eventIdx: true,
    indirect: true,
  });
  const cycle = async (token: number): Promise<boolean> => {
    const out = buffer(dma, 4, token);
    const inn = buffer(dma, 4, 0);
    driver.add([out], [inn], token);
    assert.equal(await driver.publish(), true, 'the device caught up: it wants a notification');
    const chain = device.pop()!;
    assert.equal(chain.view(0)[0], token);
    chain.view(1).fill(token + 1);
    device.pushUsed(chain.head, 4);
    const wanted = device.needsInterrupt();
    assert.deepEqual(await driver.reap(), [{ token, len: 4 }]);
    assert.deepEqual([...inn.bytes], [token + 1, token + 1, token + 1, token + 1]);
    return wanted;
  };
  assert.equal(await cycle(1), true);
  await driver.setInterruptSuppression(true);
  assert.equal(await cycle(2), false);
  await driver.setInterruptSuppression(false);
  assert.equal(await cycle(3), true);
  driver.add([buffer(dma, 4, 0)], [], 4);
  driver.add([buffer(dma, 4, 0)], [buffer(dma, 1, 0), buffer(dma, 1, 0)], 5);
  assert.equal(await driver.publish(), true);
  driver.add([buffer(dma, 4, 0)], [], 6);
  assert.equal(await driver.publish(), false, 'the device has not caught up: no new notification');
  assert.equal(syncs, 0);
});

test('publishSync/reapSync (coherent DMA) do what publish/reap do, at once, with the same checks; a remote bus refuses them', async () => {
  const { driver, device, dma, memory } = pair({ size: 8, eventIdx: true });
  assert.equal(driver.coherent, true);
  assert.equal(driver.publishSync(), false, 'nothing added: no notification');
  const inn = buffer(dma, 4, 0);
  driver.add([buffer(dma, 4, 7)], [inn], 1);
  assert.equal(driver.publishSync(), true);
  assert.equal(memory.read16(driver.availAddr + 2), 1, 'avail.idx moved before publishSync returned');
  assert.deepEqual(driver.reapSync(), [], 'nothing used yet');
  const chain = device.pop()!;
  chain.view(1).fill(9);
  device.pushUsed(chain.head, 4);
  assert.deepEqual(driver.reapSync(), [{ token: 1, len: 4 }]);
  assert.deepEqual([...inn.bytes], [9, 9, 9, 9]);
  assert.equal(memory.read16(driver.availAddr + 4 + 8 * 2), 1, 'used_event follows the reap (2.7.10)');
  // The same device-fault checks as reap(): a used idx past the chains in flight takes nothing.
  driver.add([buffer(dma, 4, 0)], [], 2);
  driver.publishSync();
  memory.write16(driver.usedAddr + 2, 3);
  assert.throws(
    () => driver.reapSync(),
    (e: unknown) => e instanceof DeviceFaultError && e.code === 'ERR_DEVICE_USED_INDEX',
  );
  assert.equal(driver.inFlight, 1);

  const remote = pair({ size: 8, remote: true }).driver;
  assert.equal(remote.coherent, false);
  assert.throws(() => remote.publishSync(), UsageError);
  assert.throws(() => remote.reapSync(), UsageError);
});

test('ring operations issued without awaiting run one after another in call order, a failed one not blocking the next (remote-like DMA)', async () => {
  const { driver, device, dma, memory } = pair({ size: 8, eventIdx: true, remote: true });
  const a = buffer(dma, 4, 0xa1);
  const b = buffer(dma, 4, 0xb2);
  const inA = buffer(dma, 2, 0);
  const inB = buffer(dma, 2, 0);
  driver.add([a], [inA], 1);
  const first = driver.publish();
  driver.add([b], [inB], 2);
  const second = driver.publish();
  assert.deepEqual(await Promise.all([first, second]), [true, false], 'the second publish finds avail_event already passed');
  assert.equal(memory.read16(driver.availAddr + 2), 2, 'avail.idx reached the device');
  const chains = [device.pop()!, device.pop()!];
  assert.deepEqual(
    chains.map((c) => c.view(0)[0]),
    [0xa1, 0xb2],
  );
  for (const c of chains) {
    c.view(1).fill(c.view(0)[0]!);
    device.pushUsed(c.head, 2);
  }
  memory.write16(driver.usedAddr + 2, 3); // a hostile used idx: one more than in flight
  const bad = driver.reap();
  const suppress = driver.setInterruptSuppression(true);
  await rejects(bad, 'ERR_DEVICE_USED_INDEX');
  await suppress;
  memory.write16(driver.usedAddr + 2, 2);
  const [used, none] = await Promise.all([driver.reap(), driver.reap()]);
  assert.deepEqual(used, [
    { token: 1, len: 2 },
    { token: 2, len: 2 },
  ]);
  assert.deepEqual(none, []);
  assert.deepEqual([...inA.bytes, ...inB.bytes], [0xa1, 0xa1, 0xb2, 0xb2]);
});
