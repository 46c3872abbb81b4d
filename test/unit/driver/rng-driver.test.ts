import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Machine } from '../../../src/platform/machine.js';
import { RngDevice } from '../../../src/device/rng/rng-device.js';
import type { EntropySource } from '../../../src/device/rng/entropy.js';
import { RngDriver } from '../../../src/driver/rng/rng-driver.js';

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

test('rng driver <-> device: read(N) returns exactly the bytes the entropy source produced', async (t) => {
  const m = new Machine({ ramSize: 8 << 20 });
  const e = recordedEntropy();
  // A small per-request limit makes the driver loop over partial answers.
  const { bdf } = m.plugVirtio(new RngDevice({ entropy: e.source, maxBytesPerRequest: 1000 }));
  const rng = await RngDriver.open(m.bus, bdf, { chunkSize: 4096 });
  t.after(() => rng.close());
  const a = await rng.read(10_000);
  const b = await rng.read(1);
  assert.equal(a.byteLength, 10_000);
  assert.deepEqual([...a, ...b], e.produced);
  assert.deepEqual(await rng.read(0), new Uint8Array(0));
});

test('rng driver: concurrent reads are served one after another without mixing bytes', async (t) => {
  const m = new Machine({ ramSize: 8 << 20 });
  const e = recordedEntropy();
  const { bdf } = m.plugVirtio(new RngDevice({ entropy: e.source }));
  const rng = await RngDriver.open(m.bus, bdf, { chunkSize: 64 });
  t.after(() => rng.close());
  const [a, b] = await Promise.all([rng.read(100), rng.read(50)]);
  assert.deepEqual([...a, ...b], e.produced);
});

test('rng driver with Web Crypto entropy: bytes arrive and are not constant', async (t) => {
  const m = new Machine({ ramSize: 8 << 20 });
  const { bdf } = m.plugVirtio(new RngDevice());
  const rng = await RngDriver.open(m.bus, bdf);
  t.after(() => rng.close());
  const bytes = await rng.read(4096);
  assert.ok(new Set(bytes).size > 200);
});
