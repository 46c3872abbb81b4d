/**
 * `--ring split|packed` of demo, lspci, probe, diff and boot: the devices offer the packed ring when it is given,
 * the driver negotiates the format named, and each command prints which ring was negotiated and why;
 * the packed ring is refused up front where only the legacy interface is used.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { deviceForRing } from '../../../src/cli/commands/probe.js';

const MAIN = fileURLToPath(new URL('../../../src/cli/main.js', import.meta.url));
const run = promisify(execFile);

async function cli(...args: string[]): Promise<string> {
  const { stdout } = await run(process.execPath, [MAIN, ...args], { timeout: 60_000 });
  return stdout;
}

/** Every "Ring:" / "ring" statement of a demo or lspci run, in order. */
function rings(out: string): string[] {
  return [...out.matchAll(/[Rr]ing:? (split|packed) \(([^)]*)\)/g)].map((m) => `${m[1]} (${m[2]})`);
}

test('demo --ring packed: every device (rng, blk, net, console) on the packed ring, data verified', async () => {
  const out = await cli('demo', '--size', '1', '--ring', 'packed');
  assert.match(out, /\(modern devices, MSI-X on, packed ring\)/);
  assert.deepEqual(rings(out), Array(4).fill('packed (VIRTIO_F_RING_PACKED offered, negotiated)'));
  assert.match(out, /checksums verified/);
  assert.match(out, /frame A -> B: \d+ bytes sent, \d+ received, identical/);
  assert.match(out, /driver -> host: .* \(as sent\)/);
});

test('demo --ring split: the packed ring offered and refused; without --ring it is not offered', async () => {
  const split = await cli('demo', '--size', '1', '--mode', 'transitional', '--ring', 'split');
  assert.deepEqual(rings(split), Array(4).fill('split (VIRTIO_F_RING_PACKED offered, not negotiated)'));
  assert.match(split, /checksums verified/);
  const plain = await cli('demo', '--size', '1');
  assert.deepEqual(rings(plain), Array(4).fill('split (VIRTIO_F_RING_PACKED not offered)'));
});

test('lspci --ring: the negotiated ring under each function; a legacy driver sees no packed offer', async () => {
  assert.deepEqual(rings(await cli('lspci', '--mode', 'transitional', '--ring', 'packed')), [
    'packed (VIRTIO_F_RING_PACKED offered, negotiated)',
    'packed (VIRTIO_F_RING_PACKED offered, negotiated)',
  ]);
  assert.deepEqual(rings(await cli('lspci', '--mode', 'transitional', '--force-legacy')), [
    'split (VIRTIO_F_RING_PACKED not offered: the legacy interface has 32 feature bits)',
    'split (VIRTIO_F_RING_PACKED not offered: the legacy interface has 32 feature bits)',
  ]);
});

test('--ring is checked, and packed is refused where only the legacy interface is used', async () => {
  const refused = (args: string[], message: RegExp) =>
    assert.rejects(cli(...args), (e: { stderr?: string; code?: number }) => {
      assert.match(e.stderr ?? '', message, args.join(' '));
      assert.equal(e.code, 1);
      return true;
    });
  await refused(['demo', '--ring', 'ring'], /--ring ring: one of split, packed \(ERR_USAGE\)/);
  await refused(['lspci', '--ring', 'PACKED'], /--ring PACKED: one of split, packed/);
  await refused(
    ['demo', '--mode', 'legacy', '--ring', 'packed'],
    /--ring packed needs the modern interface, and --mode legacy uses the legacy one/,
  );
  await refused(['lspci', '--mode', 'transitional', '--force-legacy', '--ring', 'packed'], /and --force-legacy uses the legacy one/);
  // Refused before QEMU starts, so this runs without it.
  await refused(['probe', '--qemu', 'virtio-rng-pci', '--force-legacy', '--ring', 'packed'], /and --force-legacy uses the legacy one/);
  await refused(['diff', '--device', 'rng', '--mode', 'legacy', '--ring', 'packed'], /and --mode legacy uses the legacy one/);
  await refused(['diff', '--device', 'rng', '--ring', 'on'], /--ring on: one of split, packed/);
  // Refused before the guest assets are built or the emulator starts.
  await refused(['boot', '--ring', 'packed=on'], /--ring packed=on: one of split, packed/);
  await refused(['boot', '--force-legacy', '--ring', 'packed'], /and --force-legacy uses the legacy one/);
});

test("probe --ring packed adds packed=on to QEMU's device unless the string sets packed itself", () => {
  assert.equal(deviceForRing('virtio-blk-pci,disable-legacy=on', 'packed'), 'virtio-blk-pci,disable-legacy=on,packed=on');
  assert.equal(deviceForRing('virtio-blk-pci,packed=off', 'packed'), 'virtio-blk-pci,packed=off');
  assert.equal(deviceForRing('virtio-rng-pci', 'split'), 'virtio-rng-pci');
  assert.equal(deviceForRing('virtio-rng-pci', undefined), 'virtio-rng-pci');
});
