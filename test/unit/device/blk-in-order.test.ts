import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MockQueue } from '../../../src/testing/mock-queue.js';
import { MockPackedQueue } from '../../../src/testing/mock-packed-queue.js';
import type { MockRing } from '../../../src/testing/mock-ring.js';
import { BlkDevice } from '../../../src/device/blk/blk-device.js';
import { Machine } from '../../../src/platform/machine.js';
import { BlkDriver } from '../../../src/driver/blk/blk-driver.js';
import { VIRTIO_F_IN_ORDER, VIRTIO_F_RING_PACKED, bit, hasFeature } from '../../../src/spec/features.js';
import { DeferredBackend } from '../../helpers/deferred-backend.js';
import { blkHeader } from '../../helpers/blk-request.js';
import type { VirtioDeviceHost } from '../../../src/core/virtio-device.js';

// Numbers from spec 5.2.6.
const T_IN = 0;
const S_OK = 0;
const S_IOERR = 1;
const SECTORS = 64;

function pattern(n: number): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => (i * 31 + (i >> 9) * 7) & 0xff);
}

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

for (const format of ['split', 'packed'] as const) {
  test(`blk behind the in-order layer, ${format} ring: a slow backend completing 2, 0, 3, 1 still uses buffers 0, 1, 2, 3, batched, bytes checked`, async () => {
    const disk = pattern(SECTORS * 512);
    const backend = new DeferredBackend(disk);
    const dev = new BlkDevice({ backend, queueSize: 16, maxInFlight: 8 });
    const mq: MockRing =
      format === 'split' ? new MockQueue({ size: 16, memSize: 1 << 20 }) : new MockPackedQueue({ size: 16, memSize: 1 << 20 });
    const interrupts: number[] = [];
    const host: VirtioDeviceHost = {
      memory: mq.memory,
      configChanged: () => undefined,
      usedBuffers: (index) => void interrupts.push(index),
      needsReset: (cause) => assert.fail(cause),
    };
    dev.attach(host);
    const features = bit(VIRTIO_F_IN_ORDER) | (format === 'packed' ? bit(VIRTIO_F_RING_PACKED) : 0n);
    dev.activate({ features, queues: [mq.inOrderQueue()] });
    const heads = [0, 1, 2, 3].map((i) => mq.addChain({ readable: [blkHeader(T_IN, i * 4)], writable: [512, 1] }));
    dev.queueNotify(0);
    assert.equal(backend.pending.length, 4);

    const step = async (i: number, ok: boolean): Promise<void> => {
      backend.pending[i]!.release(ok);
      await tick();
    };
    await step(2, true);
    assert.deepEqual(mq.readUsedBatches(), [], 'request 2 is done but waits for 0 and 1');
    await step(0, false); // an I/O error still uses every writable byte (data zeroed, status)
    assert.deepEqual(mq.readUsedBatches(), [{ id: heads[0], len: 513, batch: 1 }]);
    await step(3, true);
    assert.deepEqual(mq.readUsedBatches(), [], 'request 3 waits for 1');
    const before = interrupts.length;
    await step(1, true);
    // 1, 2 and 3 became ready together: one used element, for 3, in 1's slot; used.idx moves by 3.
    assert.deepEqual(mq.readUsedBatches(), [{ id: heads[3], len: 513, batch: 3 }]);
    assert.ok(interrupts.length > before, 'the batch is notified');

    heads.forEach((head, i) => {
      const [data, status] = mq.buffers(head).writable;
      assert.equal(mq.memory.read8(status!.addr), i === 0 ? S_IOERR : S_OK, `status of request ${i}`);
      const bytes = mq.memory.view(data!.addr, 512);
      const want = i === 0 ? new Uint8Array(512) : disk.subarray(i * 4 * 512, i * 4 * 512 + 512);
      assert.deepEqual(bytes, want, `data of request ${i}`);
    });
    assert.equal(dev.requestsInFlight, 0);
  });
}

test('blk end to end with IN_ORDER negotiated: requests finishing out of order in the backend reach the driver in order with their bytes', async () => {
  const disk = pattern(SECTORS * 512);
  const backend = new DeferredBackend(disk);
  const m = new Machine({ ramSize: 32 << 20 });
  const { fn, bdf } = m.plugVirtio(new BlkDevice({ backend, maxInFlight: 16 }));
  const blk = await BlkDriver.open(m.bus, bdf);
  try {
    assert.ok(hasFeature(blk.virtio.features, VIRTIO_F_IN_ORDER), 'the driver accepted IN_ORDER');
    assert.ok(hasFeature(fn.core.negotiatedFeatures, VIRTIO_F_IN_ORDER), 'the device sees it negotiated');
    const done: number[] = [];
    const reads = [0, 1, 2, 3, 4, 5].map((i) =>
      blk.read(i * 8, 2).then((bytes) => {
        done.push(i);
        return bytes;
      }),
    );
    while (backend.pending.length < 6) await tick();
    for (const i of [5, 3, 4, 1]) backend.pending[i]!.release(true);
    for (let k = 0; k < 5; k++) await tick();
    assert.deepEqual(done, [], 'nothing is used while request 0 is outstanding');
    backend.pending[0]!.release(true);
    backend.pending[2]!.release(true);
    const bytes = await Promise.all(reads);
    bytes.forEach((b, i) => assert.deepEqual(b, disk.subarray(i * 8 * 512, (i * 8 + 2) * 512), `read ${i}`));
  } finally {
    await blk.close();
  }
});
