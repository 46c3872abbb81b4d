/**
 * Our packed-ring driver (2.8) against QEMU's packed-ring device side (`packed=on`, modern-only,
 * MSI-X). The driver must negotiate VIRTIO_F_RING_PACKED; virtio-rng's bytes must be the backend
 * file's, in order, and virtio-blk's writes must land in the image file and its reads return it, over
 * more requests than the queue has descriptors so the ring wraps several times. The blk queue takes a
 * size no split ring may have (100).
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BlkDriver } from '../../../src/driver/blk/blk-driver.js';
import { RngDriver } from '../../../src/driver/rng/rng-driver.js';
import { hasFeature, VIRTIO_F_RING_PACKED } from '../../../src/spec/features.js';
import { blkArgs, launch, rawImage, slotBdf, tempDir } from './qemu-fixture.js';

const REQUEST_BYTES = 16;
const REQUESTS = 80;

test('virtio-rng-pci packed=on: VIRTIO_F_RING_PACKED negotiated, the backend bytes in order across several laps of the ring', async () => {
  const dir = await tempDir();
  const source = Uint8Array.from({ length: REQUEST_BYTES * REQUESTS }, (_, i) => (i * 13 + 3) & 0xff);
  await writeFile(join(dir, 'rng.bin'), source);
  const bus = await launch({
    machine: 'q35',
    args: [
      '-object',
      `rng-random,id=rng0,filename=${join(dir, 'rng.bin')}`,
      '-device',
      'virtio-rng-pci,rng=rng0,addr=0x4,disable-legacy=on,packed=on',
    ],
  });
  const rng = await RngDriver.open(bus, slotBdf(4), { chunkSize: REQUEST_BYTES });
  try {
    assert.ok(hasFeature(rng.virtio.features, VIRTIO_F_RING_PACKED), `features 0x${rng.virtio.features.toString(16)}`);
    const got: number[] = [];
    for (let k = 0; k < REQUESTS; k++) got.push(...(await rng.read(REQUEST_BYTES)));
    assert.deepEqual(got, [...source]);
  } finally {
    await rng.close();
  }
});

const SECTOR = 512;
const IMAGE_BYTES = 1 << 20;

test('virtio-blk-pci packed=on, queue size 100: writes land in the image, reads return it, over several laps of the ring', async () => {
  const dir = await tempDir();
  const image = await rawImage(dir, 'packed.img', IMAGE_BYTES);
  const bus = await launch({ machine: 'q35', args: blkArgs(4, image, 'disable-legacy=on,packed=on') });
  const blk = await BlkDriver.open(bus, slotBdf(4), { queueSize: 100 });
  try {
    assert.ok(hasFeature(blk.virtio.features, VIRTIO_F_RING_PACKED), `features 0x${blk.virtio.features.toString(16)}`);
    assert.equal(blk.capacity, IMAGE_BYTES / SECTOR);
    // 150 one-sector writes of three descriptors each: 450 descriptors, four and a half laps.
    const sector = (i: number): Uint8Array => Uint8Array.from({ length: SECTOR }, (_, k) => (i * 31 + k * 7) & 0xff);
    for (let i = 0; i < 150; i++) await blk.write(10 + i, sector(i));
    await blk.flush();
    const file = await readFile(image);
    for (let i = 0; i < 150; i++)
      assert.deepEqual(file.subarray((10 + i) * SECTOR, (11 + i) * SECTOR), Buffer.from(sector(i)), `sector ${10 + i}`);
    const host = Uint8Array.from({ length: 3 * SECTOR }, (_, k) => (k * 5 + 1) & 0xff);
    const fileNow = await readFile(image);
    fileNow.set(host, 1000 * SECTOR);
    await writeFile(image, fileNow);
    assert.deepEqual(await blk.read(1000, 3), host);
  } finally {
    await blk.close();
  }
});
