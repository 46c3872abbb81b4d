/**
 * With virtio_pci.force_legacy=1 (passed to the module as /init loads it), Linux drives our
 * transitional functions through the legacy interface (I/O BAR0, no VERSION_1) and they work: the
 * transitional virtio-rng's bytes reach /dev/hwrng, the transitional virtio-blk writes and reads
 * back a pattern, and its fsync reaches the backend as a flush (Linux reads the cache mode before
 * DRIVER_OK there, so the device must keep that mode). A modern-only function has no legacy interface: Linux's legacy probe refuses it
 * (its device ID is outside 0x1000-0x103f, so virtio_pci_legacy_probe returns -ENODEV without
 * touching the device) and virtio_pci falls back to the modern interface, which still works.
 */

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, test } from 'node:test';
import { BlkDevice } from '../../../src/device/blk/blk-device.js';
import { MemoryBlockBackend } from '../../../src/device/blk/memory-backend.js';
import { VIRTIO_BLK_CONFIG_WRITEBACK } from '../../../src/spec/blk.js';
import { RngDevice } from '../../../src/device/rng/rng-device.js';
import type { GuestResult } from '../../../src/platform/v86/guest-protocol.js';
import { VIRTIO_F_VERSION_1, hasFeature } from '../../../src/spec/features.js';
import { VIRTIO_CONFIG_S_DEVICE_NEEDS_RESET, VIRTIO_CONFIG_S_DRIVER_OK } from '../../../src/spec/status.js';
import { KnownStream } from '../../helpers/known-stream.js';
import { SLOT, bootTestMachine, guestFeatures, pciName, resultOf, type TestMachine } from '../../helpers/linux-machine.js';

const modern = new KnownStream('modern rng under force_legacy');
const transitional = new KnownStream('transitional rng under force_legacy');
const disk = new MemoryBlockBackend(4 << 20);
let m: TestMachine;
let loaded: readonly GuestResult[];

function bound(slot: number, driver: string): GuestResult {
  const dev = resultOf(loaded, 'virtio', { pci: pciName(slot) });
  assert.equal(dev.fields['driver'], driver);
  const status = Number(dev.fields['status']);
  assert.equal(
    status & (VIRTIO_CONFIG_S_DRIVER_OK | VIRTIO_CONFIG_S_DEVICE_NEEDS_RESET),
    VIRTIO_CONFIG_S_DRIVER_OK,
    `status 0x${status.toString(16)}`,
  );
  return dev;
}

before(async () => {
  m = await bootTestMachine({
    rng: new RngDevice({ entropy: modern.fill }),
    rngTransitional: new RngDevice({ entropy: transitional.fill }),
    blkTransitional: new BlkDevice({ backend: disk }),
  });
  const out = await m.guest.command('load force_legacy=1');
  assert.equal(out.rc, 0, out.results.map((r) => r.text).join('\n'));
  loaded = out.results;
});

after(async () => {
  await m?.guest.destroy();
});

test('transitional functions are driven through the legacy interface', (t) => {
  t.diagnostic(`${m.guest.restored ? 'restored' : 'booted'} in ${Math.round(m.guest.bootMs)} ms`);
  for (const [slot, driver, fn] of [
    [SLOT.rngTransitional, 'virtio_rng', m.fns.rngTransitional],
    [SLOT.blkTransitional, 'virtio_blk', m.fns.blkTransitional],
  ] as const) {
    const dev = bound(slot, driver);
    assert.equal(hasFeature(guestFeatures(dev), VIRTIO_F_VERSION_1), false, 'no VERSION_1 over the legacy interface');
    assert.equal(fn.arbiter?.committed, 'legacy');
  }
});

test('a modern-only function is refused by the legacy probe and bound through its modern interface', () => {
  // Nothing legacy to touch: no I/O BAR (the legacy header lives in BAR0 I/O space) and no
  // interface arbiter (only transitional functions have two interfaces).
  assert.ok(
    m.fns.rng.bars.every((bar) => bar === undefined || bar.kind !== 'io'),
    'a modern-only function has no I/O BAR',
  );
  assert.equal(m.fns.rng.arbiter, undefined);
  const dev = bound(SLOT.rng, 'virtio_rng');
  assert.equal(hasFeature(guestFeatures(dev), VIRTIO_F_VERSION_1), true);
  assert.equal(m.fns.rng.core.fault, undefined);
});

test('the legacy virtio-rng serves /dev/hwrng', async () => {
  const traced = new Set<KnownStream>();
  for (const name of ['virtio_rng.0', 'virtio_rng.1']) {
    const rng = resultOf((await m.guest.command(`rng 32 ${name}`)).results, 'rng');
    const bytes = Buffer.from(rng.fields['bytes'] ?? '', 'hex');
    const from = [modern, transitional].filter((s) => s.gave(bytes));
    assert.equal(from.length, 1, `${name}: ${bytes.toString('hex')}`);
    traced.add(from[0]!);
  }
  assert.equal(traced.size, 2);
});

test('the legacy virtio-blk writes and reads back a pattern; dd conv=fsync flushes the backend', async (t) => {
  const dev = bound(SLOT.blkTransitional, 'virtio_blk');
  const name = dev.fields['block']!;
  const info = resultOf((await m.guest.command(`blkinfo ${name}`)).results, 'blkinfo');
  assert.equal(Number(info.fields['sectors']), disk.size / 512);
  // The cache mode Linux applies is the one the device applies.
  assert.equal(
    info.fields['cache'],
    m.fns.blkTransitional.device.readConfig(VIRTIO_BLK_CONFIG_WRITEBACK, 1) === 1 ? 'write-back' : 'write-through',
  );
  const seed = `legacy${process.pid}`;
  const flushes = disk.flushes;
  const out = await m.guest.command(`blkwrite ${name} 8192 16384 ${seed}`);
  assert.equal(out.rc, 0, out.results.map((r) => r.text).join('\n'));
  t.diagnostic(`backend flushes during dd conv=fsync: ${disk.flushes - flushes}`);
  assert.ok(disk.flushes > flushes, 'dd conv=fsync made the device flush the backend');
  const pattern = Buffer.from(`virtio-ts ${seed}\n`.repeat(2000).slice(0, 16384));
  assert.ok(Buffer.from(disk.bytes.subarray(8192, 8192 + 16384)).equals(pattern), 'the pattern is on the disk');
  const back = resultOf((await m.guest.command(`blkread ${name} 8192 16384`)).results, 'blkread');
  assert.equal(back.fields['sha256'], createHash('sha256').update(pattern).digest('hex'));
  assert.equal(m.fns.blkTransitional.core.fault, undefined);
});
