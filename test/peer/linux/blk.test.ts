/**
 * Linux's virtio_blk on our virtio-blk function over a host file: the disk has the capacity of the
 * file, the guest reads the file's bytes, a pattern the guest writes (dd, fsync) lands in the file
 * at the right offset and is fsynced on the host, reads back through the device (page cache
 * dropped), and a second boot of a fresh guest on the same file reads it again. Once on split
 * rings, once with VIRTIO_F_RING_PACKED offered, which Linux 6.1 and 6.5 (each peer leg) negotiate.
 */

import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test, type TestContext } from 'node:test';
import { BlkDevice } from '../../../src/device/blk/blk-device.js';
import { FileBlockBackend } from '../../../src/device/blk/file-backend.js';
import { VIRTIO_BLK_CONFIG_WRITEBACK, VIRTIO_BLK_SECTOR_SIZE } from '../../../src/spec/blk.js';
import { VIRTIO_ID_BLOCK } from '../../../src/spec/ids.js';
import { VIRTIO_CONFIG_S_DEVICE_NEEDS_RESET, VIRTIO_CONFIG_S_DRIVER_OK } from '../../../src/spec/status.js';
import { SLOT, bootTestMachine, negotiatedRing, pciName, resultOf, type TestMachine } from '../../helpers/linux-machine.js';
import { RING_FORMATS, type RingName } from '../../helpers/ring-formats.js';

const DISK_SIZE = 8 << 20;
const HEAD = 4096;
const OFFSET = 1 << 20;
const LENGTH = 64 << 10;
const SEED = `s${process.pid}`;

/** What the guest's `blkwrite` writes: "virtio-ts SEED\n" repeated, cut to LENGTH bytes. */
const pattern = Buffer.from(`virtio-ts ${SEED}\n`.repeat(Math.ceil(LENGTH / (11 + SEED.length))).slice(0, LENGTH));
const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

let dir: string;
const head = randomBytes(HEAD);
const imageOf = (ring: RingName): string => join(dir, `disk-${ring}.img`);

/** A guest whose disk is the ring's image, offered `ring`; `done` frees both. */
async function bootOnImage(ring: RingName): Promise<{ m: TestMachine; backend: FileBlockBackend; done: () => Promise<void> }> {
  const backend = await FileBlockBackend.open(imageOf(ring));
  const m = await bootTestMachine({ blk: new BlkDevice({ backend }) }, { ring }).catch(async (err: unknown) => {
    await backend.close();
    throw err;
  });
  return { m, backend, done: async () => (await m.guest.destroy(), await backend.close()) };
}

/** Load the modules; the name Linux gave the disk (e.g. "vda"), checking it runs on `ring`. */
async function loadAndFindDisk(m: TestMachine, ring: RingName, t: TestContext): Promise<string> {
  const out = await m.guest.command('load');
  assert.equal(out.rc, 0, out.results.map((r) => r.text).join('\n'));
  const dev = resultOf(out.results, 'virtio', { pci: pciName(SLOT.blk) });
  assert.equal(Number(dev.fields['type']), VIRTIO_ID_BLOCK);
  assert.equal(dev.fields['driver'], 'virtio_blk');
  const status = Number(dev.fields['status']);
  assert.equal(
    status & (VIRTIO_CONFIG_S_DRIVER_OK | VIRTIO_CONFIG_S_DEVICE_NEEDS_RESET),
    VIRTIO_CONFIG_S_DRIVER_OK,
    `status 0x${status.toString(16)}`,
  );
  t.diagnostic(`features ${dev.fields['features']}`);
  assert.equal(negotiatedRing(dev, m.fns.blk), ring);
  assert.match(dev.fields['block'] ?? '', /^vd[a-z]$/);
  return dev.fields['block']!;
}

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'virtio-ts-blk-'));
  const disk = Buffer.alloc(DISK_SIZE);
  head.copy(disk);
  for (const ring of RING_FORMATS) writeFileSync(imageOf(ring), disk);
});

after(() => {
  rmSync(dir, { recursive: true, force: true });
});

for (const ring of RING_FORMATS) {
  describe(`${ring} ring`, () => {
    test('first boot: capacity, reading the file, writing a pattern into it and fsyncing it', async (t) => {
      const { m, backend, done } = await bootOnImage(ring);
      try {
        t.diagnostic(`${m.guest.restored ? 'restored' : 'booted'} in ${Math.round(m.guest.bootMs)} ms`);
        const disk = await loadAndFindDisk(m, ring, t);

        const info = resultOf((await m.guest.command(`blkinfo ${disk}`)).results, 'blkinfo');
        assert.equal(Number(info.fields['sectors']), DISK_SIZE / VIRTIO_BLK_SECTOR_SIZE);
        assert.equal(info.fields['ro'], '0');
        assert.equal(Number(info.fields['logical']), VIRTIO_BLK_SECTOR_SIZE);
        // The cache mode Linux applies is the one the device applies.
        assert.equal(
          info.fields['cache'],
          m.fns.blk.device.readConfig(VIRTIO_BLK_CONFIG_WRITEBACK, 1) === 1 ? 'write-back' : 'write-through',
        );

        const read = resultOf((await m.guest.command(`blkread ${disk} 0 ${HEAD}`)).results, 'blkread');
        assert.equal(read.fields['sha256'], sha256(head), 'the guest read the file head');

        const fsyncs = backend.fsyncs;
        const written = await m.guest.command(`blkwrite ${disk} ${OFFSET} ${LENGTH} ${SEED}`);
        assert.equal(written.rc, 0, written.results.map((r) => r.text).join('\n'));
        assert.equal(resultOf(written.results, 'blkwrite').fields['sha256'], sha256(pattern));
        t.diagnostic(`fsyncs of the image during dd conv=fsync: ${backend.fsyncs - fsyncs}`);
        assert.ok(backend.fsyncs > fsyncs, 'dd conv=fsync made the device fsync the image');
        const file = readFileSync(imageOf(ring));
        assert.ok(file.subarray(OFFSET, OFFSET + LENGTH).equals(pattern), 'the pattern is in the file at the offset');
        assert.ok(file.subarray(OFFSET - HEAD, OFFSET).equals(Buffer.alloc(HEAD)), 'nothing written before it');
        assert.ok(file.subarray(OFFSET + LENGTH, OFFSET + LENGTH + HEAD).equals(Buffer.alloc(HEAD)), 'nothing written after it');

        const back = resultOf((await m.guest.command(`blkread ${disk} ${OFFSET} ${LENGTH}`)).results, 'blkread');
        assert.equal(back.fields['sha256'], sha256(pattern), 'read back through the device');
        assert.equal(m.fns.blk.core.fault, undefined);
        assert.deepEqual(m.guest.adapter.refusedBars, []);
      } finally {
        await done();
      }
    });

    test('second boot: a fresh guest reads what the first one wrote', async (t) => {
      const { m, done } = await bootOnImage(ring);
      try {
        t.diagnostic(`${m.guest.restored ? 'restored' : 'booted'} in ${Math.round(m.guest.bootMs)} ms`);
        const disk = await loadAndFindDisk(m, ring, t);
        const back = resultOf((await m.guest.command(`blkread ${disk} ${OFFSET} ${LENGTH}`)).results, 'blkread');
        assert.equal(back.fields['sha256'], sha256(pattern));
      } finally {
        await done();
      }
    });
  });
}
