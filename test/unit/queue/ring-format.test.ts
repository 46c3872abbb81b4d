import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MockQueue } from '../../../src/testing/mock-queue.js';
import { QueueFaultError, QueueFullError, UsageError } from '../../../src/errors.js';
import { BlkDevice } from '../../../src/device/blk/blk-device.js';
import { MemoryBlockBackend } from '../../../src/device/blk/memory-backend.js';
import { RngDevice } from '../../../src/device/rng/rng-device.js';
import { ArrayGuestMemory } from '../../../src/memory/guest-memory.js';
import { RamDma } from '../../../src/bus/ram-dma.js';
import { SPLIT_RING, checkQueueMaxSize } from '../../../src/queue/ring-format.js';
import { deviceRing, driverRing } from '../../../src/queue/rings.js';
import { VIRTIO_F_EVENT_IDX, VIRTIO_F_INDIRECT_DESC, bit } from '../../../src/spec/features.js';
import { VIRTQ_AVAIL_F_NO_INTERRUPT, VIRTQ_DESC_F_INDIRECT, legacyUsedOffset } from '../../../src/spec/ring.js';

const EVENT_IDX = bit(VIRTIO_F_EVENT_IDX);
const INDIRECT = bit(VIRTIO_F_INDIRECT_DESC);

test('split ring sizes (2.7): powers of two up to 32768; the largest one under a maximum', () => {
  for (let size = 1; size <= 32768; size *= 2) assert.equal(SPLIT_RING.isQueueSize(size), true, `${size}`);
  for (const size of [0, -2, 3, 48, 1.5, 65536, NaN]) assert.equal(SPLIT_RING.isQueueSize(size), false, `${size}`);
  assert.deepEqual(
    [1, 2, 3, 100, 256, 32767, 65535].map((max) => SPLIT_RING.largestQueueSize(max)),
    [1, 2, 2, 64, 256, 16384, 32768],
  );
  assert.equal(SPLIT_RING.maxChainBuffers(64), 64, '2.7.5.3.1: no longer than the queue size');
  assert.equal(SPLIT_RING.maxChainBytes, 2 ** 32, '2.7.4');
  assert.deepEqual(SPLIT_RING.areaAlign, { desc: 16, driver: 2, device: 4 });
  assert.equal(SPLIT_RING.legacyAlign, 4096);
});

test("device models' queue size options are checked by the seam: a UsageError, blk needing at least 2", () => {
  assert.throws(
    () => checkQueueMaxSize('queueSize', 48),
    (e: unknown) => e instanceof UsageError && /queueSize must be a power of two in \[1, 32768\], got 48/.test(e.message),
  );
  assert.doesNotThrow(() => checkQueueMaxSize('queueSize', 32768));
  for (const queueSize of [0, 3, 65536]) {
    assert.throws(() => new RngDevice({ queueSize }), UsageError, `rng ${queueSize}`);
    assert.throws(() => new BlkDevice({ backend: new MemoryBlockBackend(4096), queueSize }), UsageError, `blk ${queueSize}`);
  }
  assert.deepEqual(new RngDevice({ queueSize: 1 }).queueMaxSizes, [1]);
  assert.throws(() => new BlkDevice({ backend: new MemoryBlockBackend(4096), queueSize: 1 }), UsageError, 'blk: seg_max is queueSize - 2');
  assert.deepEqual(new BlkDevice({ backend: new MemoryBlockBackend(4096), queueSize: 2 }).queueMaxSizes, [2]);
});

test('deviceRing: the negotiated features decide indirect descriptors and event suppression', () => {
  const m = new MockQueue({ size: 4 });
  const areas = { desc: m.descAddr, driver: m.availAddr, device: m.usedAddr };
  const table = m.alloc(32, 16);
  m.writeDesc(table, 0, { addr: m.alloc(8), len: 8, flags: 0, next: 0 });
  m.setDesc(0, { addr: table, len: 16, flags: VIRTQ_DESC_F_INDIRECT, next: 0 });
  m.pushAvail(0);
  const plain = deviceRing({ index: 2, size: 4, memory: m.memory, areas, features: 0n });
  assert.throws(
    () => plain.pop(),
    (e: unknown) => e instanceof QueueFaultError && e.code === 'ERR_QUEUE_INDIRECT_UNNEGOTIATED' && e.queueIndex === 2,
  );
  const indirect = deviceRing({ index: 2, size: 4, memory: m.memory, areas, features: INDIRECT });
  const chain = indirect.pop();
  assert.equal(chain?.count, 1);
  assert.equal(chain?.len(0), 8);
  indirect.pushUsed(0, 0);
  // NO_INTERRUPT in avail.flags, used_event 0: without EVENT_IDX the flag decides, with it used_event.
  m.setAvailFlags(VIRTQ_AVAIL_F_NO_INTERRUPT);
  m.setUsedEvent(0);
  assert.equal(indirect.needsInterrupt(), false);
  const withEventIdx = deviceRing({ index: 2, size: 4, memory: m.memory, areas, features: INDIRECT | EVENT_IDX });
  m.pushAvail(0);
  withEventIdx.pushUsed(withEventIdx.pop()!.head, 0);
  assert.equal(withEventIdx.needsInterrupt(), true);
  assert.throws(
    () => deviceRing({ index: 0, size: 3, memory: m.memory, areas, features: 0n }),
    (e: unknown) => e instanceof QueueFaultError && e.code === 'ERR_QUEUE_RING_ADDRESS',
  );
});

test("driverRing: the transport's layout places the areas, the features decide indirect tables", () => {
  const memory = new ArrayGuestMemory(0x100000);
  const dma = new RamDma(memory, 0x1000, 0xf0000);
  const legacy = driverRing<number>({ index: 0, size: 256, dma, features: 0n, layout: 'legacy' });
  assert.equal(legacy.areas.desc % 4096, 0);
  assert.equal(legacy.areas.driver, legacy.areas.desc + 16 * 256);
  assert.equal(legacy.areas.device, legacy.areas.desc + legacyUsedOffset(256, 4096));
  const separate = driverRing<number>({ index: 1, size: 4, dma, features: 0n, layout: 'separate' });
  assert.deepEqual([separate.areas.desc % 16, separate.areas.driver % 2, separate.areas.device % 4], [0, 0, 0]);
  const spans = [1, 2, 3].map((k) => ({ addr: 0x80000 + 64 * k, len: 8 }));
  separate.add(spans, [], 1);
  assert.throws(() => separate.add(spans.slice(0, 2), [], 2), QueueFullError, 'two buffers, one descriptor free, no indirect tables');
  const indirect = driverRing<number>({ index: 2, size: 4, dma, features: INDIRECT, layout: 'separate' });
  indirect.add(spans, [], 1);
  indirect.add(spans.slice(0, 2), [], 2);
  assert.equal(indirect.numFree, 0, 'the second chain in an indirect table behind the last ring descriptor');
  assert.throws(() => driverRing<number>({ index: 3, size: 48, dma, features: 0n, layout: 'separate' }), UsageError);
});
