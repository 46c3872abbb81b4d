/**
 * v86 is a 32-bit machine, but Debian's 686-pae kernel addresses 64 GiB and may place a 64-bit BAR
 * above 4 GiB. SeaBIOS puts our modern BAR4 below 4 GiB and Linux keeps it there; but when Linux
 * (re)assigns a 64-bit prefetchable BAR itself it takes the space above 4 GiB. The guest makes that
 * happen the way an administrator would: it writes the BAR's high dword through sysfs (setpci) and
 * has Linux rescan the function. With QEMU's 64-bit BAR4 the adapter must say so (a typed event and a
 * warning) while the guest's accesses, truncated by v86, miss the function; with the 32-bit BAR4
 * that V86PciAdapter.plugVirtio declares, the same steps leave the BAR below 4 GiB and the PAE
 * guest drives the device (virtio-rng, every byte traced to its source).
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RngDevice } from '../../../src/device/rng/rng-device.js';
import { BarRefusedError } from '../../../src/errors.js';
import type { AccessSize } from '../../../src/memory/access-size.js';
import type { PciFunction } from '../../../src/pci/function.js';
import { findGuestAssets, guestAssetDir } from '../../../src/platform/v86/assets.js';
import type { GuestResult } from '../../../src/platform/v86/guest-protocol.js';
import { LinuxGuest } from '../../../src/platform/v86/linux-guest.js';
import { VIRTIO_ID_RNG } from '../../../src/spec/ids.js';
import { PCI_BASE_ADDRESS_0 } from '../../../src/spec/pci.js';
import { VIRTIO_CONFIG_S_DEVICE_NEEDS_RESET, VIRTIO_CONFIG_S_DRIVER_OK } from '../../../src/spec/status.js';
import { MODERN_BAR, MODERN_BAR_SIZE } from '../../../src/transport/pci/modern-device.js';
import { KnownStream } from '../../helpers/known-stream.js';
import { pciName, resultOf } from '../../helpers/linux-machine.js';

const DEVFN = 13 << 3;
const SLOT = pciName(DEVFN);
/** The BAR register after BAR4: the upper half of a 64-bit BAR4. */
const BAR4_HIGH = PCI_BASE_ADDRESS_0 + 4 * (MODERN_BAR + 1);
const FOUR_GIB = 2 ** 32;
/** v86's VGA function, whose framebuffer BAR the guest may write through /dev/mem. */
const VGA_SLOT = '0000:00:12.0';
/** Linux's IORESOURCE_MEM_64 in the flags of a sysfs "resource" line. */
const IORESOURCE_MEM_64 = 0x0010_0000;

/** The guest's view of a BAR (from the "pci" command): start, end and resource flags. */
async function guestBar(guest: LinuxGuest, slot = SLOT, index = MODERN_BAR): Promise<{ start: number; end: number; flags: number }> {
  const out = await guest.command('pci');
  assert.equal(out.rc, 0);
  const range = resultOf(out.results, 'pcidev', { slot }).fields[`bar${index}`];
  const m = /^(0x[0-9a-f]+)-(0x[0-9a-f]+):(0x[0-9a-f]+)$/.exec(range ?? '');
  assert.ok(m, `BAR${index} of ${slot}: ${range}`);
  return { start: Number(m[1]), end: Number(m[2]), flags: Number(m[3]) };
}

/** Have Linux move BAR4 above 4 GiB if it can: high dword 1, then remove and rescan the function. */
async function moveAbove4G(guest: LinuxGuest): Promise<GuestResult> {
  const set = await guest.command(`setpci ${SLOT} ${BAR4_HIGH} 1`);
  assert.equal(set.rc, 0);
  const rescan = await guest.command(`rescan ${SLOT}`);
  assert.equal(rescan.rc, 0, rescan.results.map((r) => r.text).join('\n'));
  return resultOf(set.results, 'setpci');
}

/** Count the guest's BAR accesses that reach `fn` from now on. */
function countBarAccesses(fn: PciFunction): { count: number } {
  const seen = { count: 0 };
  const read = fn.barRead.bind(fn);
  const write = fn.barWrite.bind(fn);
  Object.assign(fn, {
    barRead: (bar: number, offset: number, size: AccessSize) => (seen.count++, read(bar, offset, size)),
    barWrite: (bar: number, offset: number, size: AccessSize, value: number) => (seen.count++, write(bar, offset, size, value)),
  });
  return seen;
}

async function bootPae(options: { modernBar64?: boolean; rng: RngDevice; warnings: string[] }): Promise<LinuxGuest> {
  // Throws, naming the missing files and `npm run setup`, when the 686-pae assets were never built.
  const assets = findGuestAssets(guestAssetDir('6.1-pae'));
  assert.match(assets.manifest, /^kernel=6\.1\.0-\d+-686-pae$/m);
  const guest = await LinuxGuest.boot({
    assets,
    devices: [{ name: 'rng', devfn: DEVFN, virtio: options.rng, options: { modernBar64: options.modernBar64 } }],
    warn: (message) => options.warnings.push(message),
  });
  try {
    // The kernel that runs is the PAE one (a restored guest has no boot messages, so ask it).
    const version = await guest.command('dmesg Linux.version');
    assert.match(resultOf(version.results, 'dmesg').text, /Linux version 6\.1\.0-\d+-686-pae /);
    return guest;
  } catch (err) {
    await guest.destroy();
    throw err;
  }
}

test('686-pae guest, 64-bit BAR4 moved above 4 GiB by Linux: the adapter raises ERR_BAR_ABOVE_4G and warns; the accesses miss the function', async (t) => {
  const warnings: string[] = [];
  const guest = await bootPae({ modernBar64: true, rng: new RngDevice(), warnings });
  try {
    t.diagnostic(`${guest.restored ? 'restored' : 'booted'} in ${Math.round(guest.bootMs)} ms`);
    const refused: BarRefusedError[] = [];
    guest.adapter.onBarRefused((e) => refused.push(e));
    const before = await guestBar(guest);
    assert.ok(before.end < FOUR_GIB, 'SeaBIOS placed BAR4 below 4 GiB');
    assert.notEqual(before.flags & IORESOURCE_MEM_64, 0, 'a 64-bit BAR');
    assert.deepEqual(guest.adapter.refusedBars, []);
    assert.deepEqual(warnings, []);

    // The guest writes the high dword: BAR4 now decodes at 0x1_xxxx_xxxx, and the adapter says so.
    const set = await guest.command(`setpci ${SLOT} ${BAR4_HIGH} 1`);
    assert.equal(resultOf(set.results, 'setpci').fields['value'], '0x00000001', 'the high dword took the write');
    const programmed = before.start + FOUR_GIB;
    assert.deepEqual(
      refused.map((e) => [e instanceof BarRefusedError, e.code, e.functionName, e.barIndex, e.kind, e.base, e.size]),
      [[true, 'ERR_BAR_ABOVE_4G', 'rng', MODERN_BAR, 'memory', programmed, MODERN_BAR_SIZE]],
    );
    assert.equal(warnings.length, 1);
    assert.match(
      warnings[0]!,
      new RegExp(`rng BAR4 \\(memory 0x${programmed.toString(16)}\\+0x4000\\): above 4 GiB, which v86 cannot reach.*modernBar64: false`),
    );

    // The guest's accesses there miss the function: BAR4 reads what its old window answers now that
    // no function decodes it, all ones.
    const seen = countBarAccesses(guest.functions[0]!.fn);
    const bar = await guest.command(`peek 0x${programmed.toString(16)} 32`);
    assert.equal(resultOf(bar.results, 'peek').fields['value'], '0xFFFFFFFF');
    assert.equal(seen.count, 0, 'no access reached the function');
    // Because v86 keeps only the low 32 bits of a physical address: a write at 4 GiB + x lands at x
    // (here in the VGA framebuffer; RAM the guest's /dev/mem refuses to show, but it is the same).
    const fb = (await guestBar(guest, VGA_SLOT, 0)).start + 0x100;
    const poke = await guest.command(`poke 0x${(FOUR_GIB + fb).toString(16)} 32 0x5eed1234`);
    assert.equal(poke.rc, 0);
    const low = await guest.command(`peek 0x${fb.toString(16)} 32`);
    assert.equal(
      resultOf(low.results, 'peek').fields['value'],
      '0x5EED1234',
      `the write at 0x${(FOUR_GIB + fb).toString(16)} landed at 0x${fb.toString(16)}`,
    );

    // Linux, rescanning the function, assigns BAR4 itself: above 4 GiB again, reported again.
    const rescan = await guest.command(`rescan ${SLOT}`);
    assert.equal(rescan.rc, 0, rescan.results.map((r) => r.text).join('\n'));
    const after = await guestBar(guest);
    assert.ok(after.start >= FOUR_GIB, `Linux placed BAR4 at 0x${after.start.toString(16)}`);
    t.diagnostic(`BAR4: SeaBIOS 0x${before.start.toString(16)}, setpci 0x${programmed.toString(16)}, Linux 0x${after.start.toString(16)}`);
    const last = refused.at(-1)!;
    assert.deepEqual([last.code, last.base], ['ERR_BAR_ABOVE_4G', after.start]);
    assert.ok(refused.every((e) => e.code === 'ERR_BAR_ABOVE_4G'));
    assert.deepEqual(guest.adapter.refusedBars, refused);
    assert.equal(warnings.length, refused.length);
    assert.equal(seen.count, 0, 'no access reached the function');
  } finally {
    await guest.destroy();
  }
});

test("686-pae guest, plugVirtio's 32-bit BAR4: the same steps keep it below 4 GiB and virtio_rng reads our bytes", async (t) => {
  const warnings: string[] = [];
  const stream = new KnownStream('pae rng');
  const guest = await bootPae({ rng: new RngDevice({ entropy: stream.fill }), warnings });
  try {
    t.diagnostic(`${guest.restored ? 'restored' : 'booted'} in ${Math.round(guest.bootMs)} ms`);
    const before = await guestBar(guest);
    assert.equal(before.flags & IORESOURCE_MEM_64, 0, 'a 32-bit BAR');

    const set = await moveAbove4G(guest);
    assert.equal(set.fields['value'], '0x00000000', 'no upper half: the high dword reads 0');
    const after = await guestBar(guest);
    assert.ok(after.end < FOUR_GIB, `BAR4 at 0x${after.start.toString(16)}`);

    const seen = countBarAccesses(guest.functions[0]!.fn);
    const load = await guest.command('load');
    assert.equal(load.rc, 0, load.results.map((r) => r.text).join('\n'));
    const dev = resultOf(load.results, 'virtio', { pci: SLOT });
    assert.equal(Number(dev.fields['type']), VIRTIO_ID_RNG);
    assert.equal(dev.fields['driver'], 'virtio_rng');
    const status = Number(dev.fields['status']);
    assert.equal(
      status & (VIRTIO_CONFIG_S_DRIVER_OK | VIRTIO_CONFIG_S_DEVICE_NEEDS_RESET),
      VIRTIO_CONFIG_S_DRIVER_OK,
      `status 0x${status.toString(16)}`,
    );

    const out = await guest.command('rng 64');
    assert.equal(out.rc, 0);
    const bytes = Buffer.from(resultOf(out.results, 'rng').fields['bytes'] ?? '', 'hex');
    assert.equal(bytes.byteLength, 64);
    assert.ok(stream.gave(bytes), `bytes the guest read came from our device: ${bytes.toString('hex')}`);
    assert.ok(seen.count > 0, 'the driver reached the function through BAR4');
    assert.deepEqual(guest.adapter.refusedBars, []);
    assert.deepEqual(warnings, []);
  } finally {
    await guest.destroy();
  }
});
