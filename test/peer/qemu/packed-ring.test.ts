/**
 * Our packed-ring driver (2.8) against QEMU's packed-ring device side: virtio-rng-pci with
 * `packed=on`, modern-only, MSI-X. The driver must negotiate VIRTIO_F_RING_PACKED, and the bytes that
 * arrive must be the backend file's, in order, over more requests than the queue has descriptors so
 * the ring wraps.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { RngDriver } from '../../../src/driver/rng/rng-driver.js';
import { hasFeature, VIRTIO_F_RING_PACKED } from '../../../src/spec/features.js';
import { launch, slotBdf, tempDir } from './qemu-fixture.js';

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
