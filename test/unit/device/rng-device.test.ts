import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MockQueue } from '../../../src/testing/mock-queue.js';
import { MockPackedQueue } from '../../../src/testing/mock-packed-queue.js';
import type { MockRing } from '../../../src/testing/mock-ring.js';
import { bit, VIRTIO_F_RING_PACKED, VIRTIO_F_VERSION_1 } from '../../../src/spec/features.js';
import { eachRing, mockRing } from '../../helpers/ring-formats.js';
import { RngDevice, type RngDeviceOptions } from '../../../src/device/rng/rng-device.js';
import { webCryptoEntropy, type EntropySource } from '../../../src/device/rng/entropy.js';
import type { VirtioDeviceHost } from '../../../src/core/virtio-device.js';

/** A deterministic entropy source: a counter stream, and a log of the sizes asked for. */
function counterEntropy(): { source: EntropySource; produced: number[]; calls: number[] } {
  const produced: number[] = [];
  const calls: number[] = [];
  let next = 1;
  const source: EntropySource = (dst) => {
    calls.push(dst.byteLength);
    for (let i = 0; i < dst.byteLength; i++) {
      dst[i] = next & 0xff;
      produced.push(next & 0xff);
      next = (next * 17 + 3) % 251;
    }
  };
  return { source, produced, calls };
}

/** An rng device on a split ring (a MockQueue, with its raw pokes). */
function rig(options: RngDeviceOptions) {
  return rigOn(new MockQueue({ size: 8 }), options);
}

/** An rng device on `mq`, activated with the features its ring format needs. */
function rigOn<Q extends MockRing>(mq: Q, options: RngDeviceOptions) {
  const interrupts: number[] = [];
  const resets: Error[] = [];
  const host: VirtioDeviceHost = {
    memory: mq.memory,
    configChanged() {},
    usedBuffers: (i) => interrupts.push(i),
    needsReset: (e) => resets.push(e),
  };
  const dev = new RngDevice(options);
  dev.attach(host);
  const features = mq instanceof MockPackedQueue ? bit(VIRTIO_F_VERSION_1) | bit(VIRTIO_F_RING_PACKED) : 0n;
  dev.activate({ features, queues: [mq.deviceQueue()] });
  return { mq, dev, interrupts, resets };
}

test('virtio-rng: device type 4, one queue, no features, no config', () => {
  const dev = new RngDevice();
  assert.equal(dev.deviceType, 4);
  assert.equal(dev.deviceFeatures, 0n);
  assert.deepEqual(dev.queueMaxSizes, [64]);
  assert.equal(dev.configSize, 0);
});

eachRing('virtio-rng: fills every writable buffer with the source bytes, used len = bytes written', (ring) => {
  const e = counterEntropy();
  const r = rigOn(mockRing(ring, { size: 8 }), { entropy: e.source });
  const a = r.mq.addChain({ writable: [16] });
  const b = r.mq.addChain({ writable: [5, 0, 27] });
  r.dev.queueNotify(0);
  const gotA = r.mq.readWritten(a, 16);
  const gotB = r.mq.readWritten(b, 32);
  assert.deepEqual(r.mq.readUsed(), [
    { id: a, len: 16 },
    { id: b, len: 32 },
  ]);
  assert.deepEqual([...gotA, ...gotB], e.produced);
  assert.deepEqual(r.interrupts, [0], 'one interrupt for the batch');
});

eachRing('virtio-rng: a request larger than maxBytesPerRequest gets that many bytes', (ring) => {
  const e = counterEntropy();
  const r = rigOn(mockRing(ring, { size: 8 }), { entropy: e.source, maxBytesPerRequest: 100 });
  const h = r.mq.addChain({ writable: [60, 60, 60] });
  r.dev.queueNotify(0);
  const got = r.mq.readWritten(h, 180);
  assert.deepEqual(r.mq.readUsed(), [{ id: h, len: 100 }]);
  assert.deepEqual([...got.subarray(0, 100)], e.produced);
  assert.ok(
    got.subarray(100).every((x) => x === 0xee),
    'bytes past the used len untouched',
  );
});

test('virtio-rng: a chain with no writable bytes is returned with len 0; a ring fault needs reset', () => {
  const e = counterEntropy();
  const r = rig({ entropy: e.source });
  const h = r.mq.addChain({ readable: [new Uint8Array(8)] });
  r.dev.queueNotify(0);
  assert.deepEqual(r.mq.readUsed(), [{ id: h, len: 0 }]);
  r.mq.setAvailRing(r.mq.availIdx % 8, 99);
  r.mq.setAvailIdx(r.mq.availIdx + 1);
  r.dev.queueNotify(0);
  assert.equal(r.resets.length, 1);
  assert.equal((r.resets[0] as { code?: string }).code, 'ERR_QUEUE_HEAD_INDEX');
});

test('Web Crypto entropy: fills more than one getRandomValues call allows (65536 bytes)', () => {
  const buf = new Uint8Array(200_000);
  webCryptoEntropy(buf);
  // Each 64 KiB chunk came from a call: none is left all zero (probability 2^-524288).
  for (let at = 0; at < buf.length; at += 65536) assert.ok(buf.subarray(at, Math.min(at + 65536, buf.length)).some((x) => x !== 0));
  const counts = new Array<number>(256).fill(0);
  for (const x of buf) counts[x]!++;
  assert.ok(Math.min(...counts) > 500 && Math.max(...counts) < 1100, 'roughly uniform bytes');
});
