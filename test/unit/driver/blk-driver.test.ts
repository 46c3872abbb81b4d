import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Machine } from '../../../src/platform/machine.js';
import { BlkDevice, type BlkDeviceOptions } from '../../../src/device/blk/blk-device.js';
import { MemoryBlockBackend } from '../../../src/device/blk/memory-backend.js';
import type { BlockBackend } from '../../../src/device/blk/backend.js';
import { FileBlockBackend } from '../../../src/device/blk/file-backend.js';
import { BlkDriver, BlkStatusError, type BlkOp } from '../../../src/driver/blk/blk-driver.js';
import { offering, RING_FORMATS, type RingName } from '../../helpers/ring-formats.js';

function pattern(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed * 2654435761 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

function tempDir(t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'virtio-blk-e2e-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A blk device and our driver on one machine, on the `ring` format (negotiated, then checked). */
async function start(ring: RingName, options: BlkDeviceOptions, driverOptions: { queueSize?: number } = {}) {
  const m = new Machine({ ramSize: 32 << 20 });
  const device = new BlkDevice(options);
  const { bdf } = m.plugVirtio(device, offering(ring));
  const blk = await BlkDriver.open(m.bus, bdf, driverOptions);
  assert.equal(blk.virtio.ringFormat.name, ring);
  return { m, device, blk };
}

const SECTORS = 2048; // 1 MiB

for (const ring of RING_FORMATS) {
  test(`${ring} ring: blk round trip on a FILE: 64 requests in flight write a pattern, the file holds it, reads return it`, async (t) => {
    const path = join(tempDir(t), 'disk.img');
    writeFileSync(path, new Uint8Array(SECTORS * 512));
    const backend = await FileBlockBackend.open(path);
    t.after(() => backend.close());
    const { device, blk, m } = await start(ring, { backend, serial: 'e2e-file', maxInFlight: 16 });
    t.after(() => blk.close());
    assert.equal(blk.capacity, SECTORS);

    // 128 writes of 8 KiB at scattered positions, submitted as one batch: the driver keeps its ring
    // full (queue of 256 -> up to 85 chains of 3 descriptors) and the device up to 16 in the backend.
    const image = pattern(SECTORS * 512, 7);
    const order = Array.from({ length: 128 }, (_, i) => (i * 37) % 128);
    const bufs = order.map(() => m.bus.dma.alloc(8192, 16));
    const writes: BlkOp[] = order.map((k, i) => {
      bufs[i]!.bytes.set(image.subarray(k * 8192, (k + 1) * 8192));
      return { type: 'write', sector: k * 16, buffer: { addr: bufs[i]!.addr, len: 8192 } };
    });
    await blk.batch(writes);
    await blk.flush();
    assert.ok(backend.fsyncs >= 1, 'FLUSH reached fsync');
    assert.deepEqual(readFileSync(path), Buffer.from(image), 'the backing file holds every byte');

    // Read back with 64 KiB and 4 KiB requests mixed, all in one batch.
    for (const b of bufs) b.bytes.fill(0);
    const reads: BlkOp[] = order.map((k, i) => ({ type: 'read', sector: k * 16, buffer: { addr: bufs[i]!.addr, len: 8192 } }));
    await blk.batch(reads);
    order.forEach((k, i) => assert.deepEqual(bufs[i]!.bytes, image.subarray(k * 8192, (k + 1) * 8192), `read ${k}`));
    for (const b of bufs) m.bus.dma.free(b);

    // Convenience calls, concurrently.
    const [first, last, id] = await Promise.all([blk.read(0, 3), blk.read(SECTORS - 1, 1), blk.getId()]);
    assert.deepEqual(first, image.subarray(0, 1536));
    assert.deepEqual(last, image.subarray((SECTORS - 1) * 512));
    assert.equal(id, 'e2e-file');

    // DISCARD and WRITE_ZEROES seen on the file: the ranges read back as zeroes there, nothing else moved.
    await blk.writeZeroes(10, 3);
    await blk.discard(SECTORS - 8, 8);
    await blk.flush();
    const expected = Buffer.from(image);
    expected.fill(0, 10 * 512, 13 * 512);
    expected.fill(0, (SECTORS - 8) * 512);
    assert.deepEqual(readFileSync(path), expected);
    assert.equal(device.requestsInFlight, 0);
  });

  test(`${ring} ring: blk driver: write/read/flush/discard/writeZeroes against a memory disk, checked on its bytes`, async (t) => {
    const disk = new MemoryBlockBackend(SECTORS * 512);
    const { blk } = await start(ring, { backend: disk, sizeMax: 4096 });
    t.after(() => blk.close());
    assert.equal(blk.config.sizeMax, 4096);
    assert.equal(blk.config.blkSize, 512);
    assert.equal(blk.config.readOnly, false);
    assert.deepEqual(blk.config.discard, { maxSectors: 8192, maxSeg: 16 });

    // 20 KiB: split into descriptors of at most size_max.
    const data = pattern(20 * 1024, 3);
    await blk.write(100, data);
    assert.deepEqual(disk.bytes.subarray(100 * 512, 100 * 512 + data.byteLength), data);
    assert.deepEqual(await blk.read(100, 40), data);

    await blk.writeZeroes(101, 2);
    assert.ok(disk.bytes.subarray(101 * 512, 103 * 512).every((x) => x === 0));
    assert.deepEqual(disk.bytes.subarray(100 * 512, 101 * 512), data.subarray(0, 512));
    await blk.discard(110, 1);
    assert.ok(disk.bytes.subarray(110 * 512, 111 * 512).every((x) => x === 0));
    const before = disk.flushes;
    await blk.flush();
    assert.equal(disk.flushes, before + 1);

    assert.equal(await blk.writeback(), true);
    await blk.setWriteback(false);
    assert.equal(await blk.writeback(), false);
    const flushes = disk.flushes;
    await blk.write(0, pattern(512, 4));
    assert.equal(disk.flushes, flushes + 1, 'writethrough: the device flushed before completing');

    await assert.rejects(blk.read(SECTORS, 1), { code: 'ERR_USAGE' }, 'the driver never sends a request past capacity');
    await assert.rejects(blk.write(0, new Uint8Array(100)), { code: 'ERR_USAGE' });
  });

  test(`${ring} ring: blk driver: a read-only disk answers writes with IOERR -> BlkStatusError, file untouched`, async (t) => {
    const path = join(tempDir(t), 'ro.img');
    const image = pattern(64 * 512, 9);
    writeFileSync(path, image);
    const backend = await FileBlockBackend.open(path, { readOnly: true });
    t.after(() => backend.close());
    const { blk, m } = await start(ring, { backend });
    t.after(() => blk.close());
    assert.equal(blk.config.readOnly, true);
    assert.equal(blk.config.discard, undefined);
    const err = await blk.write(3, pattern(512, 1)).then(
      () => assert.fail('write succeeded on a read-only disk'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof BlkStatusError);
    assert.equal(err.code, 'ERR_DEVICE_STATUS');
    assert.equal(err.status, 1);
    assert.deepEqual(await blk.read(3, 1), image.subarray(3 * 512, 4 * 512));

    // In a batch, the failed write is reported after every request finished; the reads did their work.
    const buf = m.bus.dma.alloc(4 * 512, 16);
    const mixed: BlkOp[] = [
      { type: 'read', sector: 0, buffer: { addr: buf.addr, len: 512 } },
      { type: 'write', sector: 1, buffer: { addr: buf.addr + 512, len: 512 } },
      { type: 'read', sector: 63, buffer: { addr: buf.addr + 1024, len: 512 } },
    ];
    await assert.rejects(blk.batch(mixed), { code: 'ERR_DEVICE_STATUS', status: 1 });
    assert.deepEqual(buf.bytes.subarray(0, 512), image.subarray(0, 512));
    assert.deepEqual(buf.bytes.subarray(1024, 1536), image.subarray(63 * 512));
    m.bus.dma.free(buf);
    assert.deepEqual(readFileSync(path), Buffer.from(image));
  });

  test(`${ring} ring: blk driver: a batch larger than the ring completes as slots free up`, async (t) => {
    const disk = new MemoryBlockBackend(SECTORS * 512);
    const { blk, m } = await start(ring, { backend: disk }, { queueSize: 8 });
    t.after(() => blk.close());
    assert.equal(blk.maxInFlight, 4);
    const buf = m.bus.dma.alloc(512 * 40, 16);
    buf.bytes.set(pattern(512 * 40, 5));
    const ops: BlkOp[] = Array.from({ length: 40 }, (_, i) => ({
      type: 'write',
      sector: i * 2,
      buffer: { addr: buf.addr + i * 512, len: 512 },
    }));
    await blk.batch(ops);
    for (let i = 0; i < 40; i++)
      assert.deepEqual(disk.bytes.subarray(i * 1024, i * 1024 + 512), buf.bytes.subarray(i * 512, (i + 1) * 512));
    m.bus.dma.free(buf);
  });

  test(`${ring} ring: blk driver with VIRTIO_BLK_F_MQ: a batch is shared across the request queues`, async (t) => {
    const disk = new MemoryBlockBackend(SECTORS * 512);
    const m = new Machine({ ramSize: 32 << 20 });
    const device = new BlkDevice({ backend: disk, numQueues: 4 });
    const notified = new Set<number>();
    const notify = device.queueNotify.bind(device);
    device.queueNotify = (index: number) => {
      notified.add(index);
      notify(index);
    };
    const { bdf } = m.plugVirtio(device, offering(ring));
    const blk = await BlkDriver.open(m.bus, bdf, { numQueues: 2 });
    t.after(() => blk.close());
    assert.equal(blk.numQueues, 2);
    const buf = m.bus.dma.alloc(64 * 1024, 16);
    buf.bytes.set(pattern(64 * 1024, 21));
    await blk.batch(
      Array.from({ length: 64 }, (_, i): BlkOp => ({ type: 'write', sector: i * 2, buffer: { addr: buf.addr + i * 1024, len: 1024 } })),
    );
    assert.deepEqual(disk.bytes.subarray(0, 64 * 1024), buf.bytes);
    assert.deepEqual([...notified].sort(), [0, 1]);
    m.bus.dma.free(buf);

    // Without MQ offered the driver uses one queue whatever it asks for.
    const single = await start(ring, { backend: new MemoryBlockBackend(4096) }, {});
    t.after(() => single.blk.close());
    assert.equal(single.blk.numQueues, 1);
  });
}

test('blk driver: a device that never answers fails every waiting request with ERR_DEVICE_TIMEOUT', async () => {
  const stuck: BlockBackend = new MemoryBlockBackend(SECTORS * 512);
  stuck.read = () => new Promise<void>(() => {}); // an I/O that never completes
  const m = new Machine({ ramSize: 32 << 20 });
  const { bdf } = m.plugVirtio(new BlkDevice({ backend: stuck }));
  const blk = await BlkDriver.open(m.bus, bdf, { timeoutMs: 200 });
  const results = await Promise.allSettled([blk.read(0, 1), blk.read(8, 1)]);
  for (const r of results) {
    assert.equal(r.status, 'rejected');
    assert.equal((r.reason as { code?: string }).code, 'ERR_DEVICE_TIMEOUT');
  }
  await assert.rejects(blk.flush(), { code: 'ERR_DEVICE_TIMEOUT' }, 'the driver stays failed');
  // The reads are still in the backend, so the device's reset cannot complete: close says so in time.
  await assert.rejects(blk.close(), { code: 'ERR_DEVICE_TIMEOUT', message: /device_status did not read 0 within 200 ms/ });
});
