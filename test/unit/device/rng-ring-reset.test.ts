/**
 * VIRTIO_F_RING_RESET (2.6.1) on the rng model: after resetQueue the device leaves the old ring
 * alone, after enableQueue it serves the new one; and the transport offers the bit for it.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MockQueue } from '../../../src/testing/mock-queue.js';
import { RngDevice } from '../../../src/device/rng/rng-device.js';
import type { VirtioDeviceHost } from '../../../src/core/virtio-device.js';
import { ArrayGuestMemory } from '../../../src/memory/guest-memory.js';
import { Machine } from '../../../src/platform/machine.js';
import { VirtioDriver } from '../../../src/driver/virtio-driver.js';
import { hasFeature, VIRTIO_F_RING_RESET } from '../../../src/spec/features.js';

test('virtio-rng: a reset queue is not touched; the re-enabled queue on a new ring is served', () => {
  const memory = new ArrayGuestMemory(1 << 20);
  const old = new MockQueue({ size: 8, memory, base: 0x1000, seed: 1 });
  const fresh = new MockQueue({ size: 8, memory, base: 0x5_0000, seed: 2 });
  const interrupts: number[] = [];
  const host: VirtioDeviceHost = { memory, configChanged() {}, usedBuffers: (i) => interrupts.push(i), needsReset: (e) => assert.fail(e) };
  const dev = new RngDevice({ entropy: (dst) => dst.fill(0x42) });
  dev.attach(host);
  dev.activate({ features: 0n, queues: [old.deviceQueue()] });

  dev.resetQueue(0);
  old.addChain({ writable: [16] });
  dev.queueNotify(0);
  assert.deepEqual(old.readUsed(), [], 'the old ring is left alone after resetQueue');

  dev.enableQueue(fresh.deviceQueue({ index: 0 }));
  const head = fresh.addChain({ writable: [16] });
  dev.queueNotify(0);
  assert.deepEqual(fresh.readUsed(), [{ id: head, len: 16 }]);
  assert.deepEqual([...fresh.readWritten(head, 16)], new Array(16).fill(0x42));
  assert.deepEqual(old.readUsed(), []);
  assert.deepEqual(interrupts, [0]);
});

test('virtio-rng: the transport offers VIRTIO_F_RING_RESET for it (as QEMU 7.2 does)', async (t) => {
  const m = new Machine({ ramSize: 4 << 20 });
  const { bdf } = m.plugVirtio(new RngDevice());
  const drv = await VirtioDriver.open(m.bus, bdf);
  t.after(() => drv.close());
  assert.ok(hasFeature(drv.deviceFeatures, VIRTIO_F_RING_RESET));
});
