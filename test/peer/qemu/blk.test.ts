/**
 * Our virtio-blk driver against QEMU's virtio-blk-pci in every mode of DRIVER_MODES (modern-only,
 * transitional through either interface, legacy-only; MSI-X and INTx; the modern ones with packed=on too), on pc and q35. Every check is made at the far end: what we write is read back
 * from the raw image file on the host (not through our driver), what the host writes into the image
 * is what our reads must return, and the device ID is the `serial=` QEMU was given.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { open } from 'node:fs/promises';
import { BlkDriver } from '../../../src/driver/blk/blk-driver.js';
import { VIRTIO_BLK_SECTOR_SIZE } from '../../../src/spec/blk.js';
import { blkArgs, DRIVER_MODES, launch, MACHINES, rawImage, slotBdf, tempDir } from './qemu-fixture.js';

const MODES = DRIVER_MODES;
const IMAGE_BYTES = 4 << 20;
const SECTOR = VIRTIO_BLK_SECTOR_SIZE;

/** Bytes nobody else writes: a tag per test step, then a counter. */
function pattern(len: number, tag: number): Uint8Array {
  return Uint8Array.from({ length: len }, (_, i) => (i % 251) ^ tag);
}

async function readImage(path: string, offset: number, len: number): Promise<Uint8Array> {
  const file = await open(path, 'r');
  try {
    const buf = new Uint8Array(len);
    const { bytesRead } = await file.read(buf, 0, len, offset);
    assert.equal(bytesRead, len);
    return buf;
  } finally {
    await file.close();
  }
}

async function writeImage(path: string, offset: number, data: Uint8Array): Promise<void> {
  const file = await open(path, 'r+');
  try {
    await file.write(data, 0, data.length, offset);
  } finally {
    await file.close();
  }
}

for (const machine of MACHINES) {
  test(`-M ${machine}: virtio-blk-pci data lands in, and comes from, the image file`, async (t) => {
    const dir = await tempDir();
    const images = new Map<number, string>();
    const args: string[] = [];
    for (const m of MODES) {
      const image = await rawImage(dir, `${machine}-${m.slot}.img`, IMAGE_BYTES);
      images.set(m.slot, image);
      args.push(...blkArgs(m.slot, image, `${m.props},serial=vts-${machine}-${m.slot}`));
    }
    const bus = await launch({ machine, args });
    for (const m of MODES) {
      await t.test(m.name, async (t) => {
        const image = images.get(m.slot)!;
        const blk = await BlkDriver.open(bus, slotBdf(m.slot), { forceLegacy: m.forceLegacy, interrupts: m.interrupts });
        try {
          assert.equal(blk.virtio.probe.kind, m.kind);
          assert.equal(blk.virtio.interrupts?.kind, m.plan);
          assert.equal(blk.virtio.ringFormat.name, m.ring);
          await t.test('capacity and device ID are what QEMU was given', async () => {
            assert.equal(blk.capacity, IMAGE_BYTES / SECTOR);
            assert.equal(await blk.getId(), `vts-${machine}-${m.slot}`);
          });
          await t.test('a write is in the image file', async () => {
            const data = pattern(8 * SECTOR, 0x5a);
            await blk.write(100, data);
            await blk.flush();
            assert.deepEqual(await readImage(image, 100 * SECTOR, data.length), data);
          });
          await t.test('a read returns what the host put in the image file', async () => {
            const data = pattern(3 * SECTOR, 0xa5);
            await writeImage(image, 2000 * SECTOR, data);
            assert.deepEqual(await blk.read(2000, 3), data);
          });
          await t.test('32 writes in one batch (one notify) all land', async () => {
            const dma = bus.dma;
            const bufs = Array.from({ length: 32 }, () => dma.alloc(SECTOR, 16));
            bufs.forEach((b, i) => b.bytes.set(pattern(SECTOR, i)));
            await blk.batch(bufs.map((b, i) => ({ type: 'write' as const, sector: 4000 + 3 * i, buffer: { addr: b.addr, len: SECTOR } })));
            for (const [i] of bufs.entries()) assert.deepEqual(await readImage(image, (4000 + 3 * i) * SECTOR, SECTOR), pattern(SECTOR, i));
            for (const b of bufs) dma.free(b);
          });
          await t.test('a write past the end is refused before it reaches the device', async () => {
            await assert.rejects(blk.write(IMAGE_BYTES / SECTOR, pattern(SECTOR, 1)));
          });
        } finally {
          await blk.close();
        }
      });
    }
  });
}
