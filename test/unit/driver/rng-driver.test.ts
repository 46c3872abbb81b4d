import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Machine } from '../../../src/platform/machine.js';
import { RngDevice } from '../../../src/device/rng/rng-device.js';
import type { EntropySource } from '../../../src/device/rng/entropy.js';
import { RngDriver } from '../../../src/driver/rng/rng-driver.js';
import { bdf } from '../../../src/bus/pci-bus.js';
import { VirtioError } from '../../../src/errors.js';
import { qemuLikeVirtio } from '../../../src/testing/config-space-builder.js';
import { FakePciBus } from '../../../src/testing/fake-pci-bus.js';
import { ScriptedBar4 } from '../../helpers/scripted-modern-bar.js';
import { offering, RING_FORMATS } from '../../helpers/ring-formats.js';

/** A recorded deterministic source: what the device produced, in order. */
function recordedEntropy(): { source: EntropySource; produced: number[] } {
  const produced: number[] = [];
  let x = 0x12345678;
  const source: EntropySource = (dst) => {
    for (let i = 0; i < dst.byteLength; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      dst[i] = x & 0xff;
      produced.push(x & 0xff);
    }
  };
  return { source, produced };
}

for (const ring of RING_FORMATS) {
  test(`${ring} ring: rng driver <-> device: read(N) returns exactly the bytes the entropy source produced`, async (t) => {
    const m = new Machine({ ramSize: 8 << 20 });
    const e = recordedEntropy();
    // A small per-request limit makes the driver loop over partial answers.
    const { bdf } = m.plugVirtio(new RngDevice({ entropy: e.source, maxBytesPerRequest: 1000 }), offering(ring));
    const rng = await RngDriver.open(m.bus, bdf, { chunkSize: 4096 });
    t.after(() => rng.close());
    assert.equal(rng.virtio.ringFormat.name, ring);
    const a = await rng.read(10_000);
    const b = await rng.read(1);
    assert.equal(a.byteLength, 10_000);
    assert.deepEqual([...a, ...b], e.produced);
    assert.deepEqual(await rng.read(0), new Uint8Array(0));
  });

  test(`${ring} ring: rng driver: concurrent reads are served one after another without mixing bytes`, async (t) => {
    const m = new Machine({ ramSize: 8 << 20 });
    const e = recordedEntropy();
    const { bdf } = m.plugVirtio(new RngDevice({ entropy: e.source }), offering(ring));
    const rng = await RngDriver.open(m.bus, bdf, { chunkSize: 64 });
    t.after(() => rng.close());
    assert.equal(rng.virtio.ringFormat.name, ring);
    const [a, b] = await Promise.all([rng.read(100), rng.read(50)]);
    assert.deepEqual([...a, ...b], e.produced);
  });
}

test('rng driver with Web Crypto entropy: bytes arrive and are not constant', async (t) => {
  const m = new Machine({ ramSize: 8 << 20 });
  const { bdf } = m.plugVirtio(new RngDevice());
  const rng = await RngDriver.open(m.bus, bdf);
  t.after(() => rng.close());
  const bytes = await rng.read(4096);
  assert.ok(new Set(bytes).size > 200);
});

const RNG_FN = bdf(0, 7, 0);

/** A scripted modern virtio-rng function (request queue of `queueSize`) on a bus with `dmaBytes` of DMA memory. */
function scriptedRng(queueSize: number, dmaBytes: number): { bus: FakePciBus; bar: ScriptedBar4 } {
  const bus = new FakePciBus(dmaBytes);
  const bar = new ScriptedBar4();
  bar.deviceFeatureWords = [0, 1];
  bar.numQueues = 1;
  bar.queueSize.set(0, queueSize);
  bus.add(RNG_FN, qemuLikeVirtio({ deviceId: 0x1044 }).build(), new Map([[4, bar]]));
  return { bus, bar };
}

test('rng driver: every failed open gives back all the DMA memory it took (buffer too big, rings too big, queue refused)', async () => {
  for (const [what, queueSize, options, setup] of [
    ['a buffer larger than DMA memory', 64, { chunkSize: 2 << 20 }, () => undefined],
    ['rings larger than DMA memory', 32768, {}, () => undefined],
    ['queue_notify_off outside the notify structure', 64, {}, (bar: ScriptedBar4) => bar.queueNotifyOff.set(0, 0xffff)],
  ] as const) {
    const { bus, bar } = scriptedRng(queueSize, 512 << 10);
    setup(bar);
    const free = bus.dma.allocator.freeBytes;
    await assert.rejects(RngDriver.open(bus, RNG_FN, { ...options, interrupts: 'intx' }), VirtioError, what);
    assert.equal(bus.dma.allocator.freeBytes, free, what);
    assert.equal(bus.dma.allocator.freeBlocks, 1, what);
  }
  const { bus } = scriptedRng(64, 512 << 10);
  const free = bus.dma.allocator.freeBytes;
  const rng = await RngDriver.open(bus, RNG_FN, { interrupts: 'intx' });
  await rng.close();
  assert.equal(bus.dma.allocator.freeBytes, free, 'close returns the rings and the buffer');
});
