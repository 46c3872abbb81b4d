import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createMemoryNetPair } from '../../../src/device/net/memory-pair.js';
import { VirtioNetDevice } from '../../../src/device/net/net-device.js';
import { VirtioNetDriver } from '../../../src/driver/net/net-driver.js';
import { UsageError } from '../../../src/errors.js';
import { Machine } from '../../../src/platform/machine.js';
import { ETH_MAX_FRAME_NO_GSO } from '../../../src/spec/net.js';

async function pair(): Promise<[VirtioNetDriver, VirtioNetDriver]> {
  const ends = createMemoryNetPair();
  const open = async (end: (typeof ends)[0], queueSize: number): Promise<VirtioNetDriver> => {
    const machine = new Machine({ ramSize: 16 << 20 });
    const { bdf } = machine.plugVirtio(new VirtioNetDevice({ backend: end }));
    return VirtioNetDriver.open(machine.bus, bdf, { queueSize, rxBufferSize: 8192 });
  };
  // The sender's transmitq is small (frames wait for room); the receiver has room for every frame
  // of a test at once, since a device drops what finds no buffer.
  return [await open(ends[0], 16), await open(ends[1], 256)];
}

function frames(count: number, to: Uint8Array, from: Uint8Array): Uint8Array[] {
  return Array.from({ length: count }, (_, k) => {
    // Sizes from empty payload to full size, and one beyond the pooled buffers (a lent one).
    const f = new Uint8Array([60, 1514, 1518, 1519, 4000][k % 5]!);
    f.set(to, 0);
    f.set(from, 6);
    for (let i = 12; i < f.length; i++) f[i] = (i * 3 + k) & 0xff;
    return f;
  });
}

async function receiveCount(drv: VirtioNetDriver, count: number): Promise<Uint8Array[]> {
  const got: Uint8Array[] = [];
  while (got.length < count) got.push(...(await drv.receiveAll(2000)));
  return got;
}

test('sendAll/receiveAll: more frames than the transmitq holds arrive whole and in order, mixed with send()', async () => {
  const [a, b] = await pair();
  try {
    // 16 descriptors in the transmitq: 150 frames fill it many times over, so most wait for room.
    const sent = frames(150, b.mac, a.mac);
    const single = frames(3, b.mac, a.mac);
    const all = a.sendAll(sent);
    const one = single.map((f) => a.send(f));
    const got = await receiveCount(b, 153);
    await Promise.all([all, ...one]);
    assert.equal(got.length, 153);
    [...sent, ...single].forEach((f, k) => assert.deepEqual(got[k], f, `frame ${k}`));
    assert.equal(a.stats.txFrames, 153);
    // A frame received is the caller's: the next frames do not reuse its bytes.
    const keep = got[0]!.slice();
    await a.sendAll(frames(40, b.mac, a.mac));
    await receiveCount(b, 40);
    assert.deepEqual(got[0], keep);
  } finally {
    await a.close();
    await b.close();
  }
});

test('sendAll: one frame too long refuses the whole call, nothing sent', async () => {
  const [a, b] = await pair();
  try {
    const ok = frames(2, b.mac, a.mac);
    await assert.rejects(a.sendAll([...ok, new Uint8Array(ETH_MAX_FRAME_NO_GSO + 1)]), UsageError);
    assert.equal(a.stats.txFrames, 0);
    await assert.rejects(a.sendAll(ok, 5), UsageError);
  } finally {
    await a.close();
    await b.close();
  }
});
