/**
 * `virtio-ts boot` releases what it opened however the boot ends: here the guest fails to start
 * after the command has bound its --net-udp socket, and the command must end at once with its
 * one-line error (a socket left open keeps Node running) and leave the port free.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GUEST_KERNELS } from '../../../src/platform/v86/assets.js';
import { assertNothingLeft, assertOneLineError, bindUdpOnce, privateTmp, runCli } from '../../helpers/cli-process.js';

const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));

/**
 * A guest cache the asset build takes as current (every file present, the manifest naming the build
 * inputs' hash, as scripts/guest/build-assets.sh checks) whose saved-state folder cannot be made:
 * `states` is a file. The boot then fails inside the emulator start, after the devices exist.
 */
function brokenGuestCache(dir: string): void {
  // The build script's own hash, so this cache stays current whatever the inputs become.
  const inputs = execFileSync('bash', [join(ROOT, 'scripts/guest/build-assets.sh'), '--inputs-hash'], { encoding: 'utf8' }).trim();
  for (const sub of Object.values(GUEST_KERNELS).map((folder) => join(dir, folder))) {
    mkdirSync(sub, { recursive: true });
    for (const f of ['vmlinuz', 'initramfs.cpio.gz', 'bios.bin']) writeFileSync(join(sub, f), 'not a real file\n');
    writeFileSync(join(sub, 'manifest'), `inputs=${inputs}\n`);
  }
  writeFileSync(join(dir, 'states'), 'a file where the saved-state folder goes\n');
}

test('boot --net-udp: a boot failing after the socket is bound ends at once with its error, and the port is free again', async (t) => {
  const tmp = await privateTmp(t);
  // Outside the command's TMPDIR, which must be empty after it.
  const cache = await privateTmp(t);
  brokenGuestCache(cache);
  const port = await bindUdpOnce(0);
  const start = Date.now();
  const run = await runCli(['boot', '--memory', '96', '--net-udp', `${port}:127.0.0.1:9`], {
    tmp,
    env: { VIRTIO_TS_GUEST_CACHE: cache },
    timeoutMs: 15_000,
  });
  assert.equal(run.signal, null, `ended by itself, not killed at the timeout (${Date.now() - start} ms): ${run.stderr}`);
  assertOneLineError(run, /states/, 'EEXIST');
  assert.equal(await bindUdpOnce(port), port);
  await assertNothingLeft(tmp, run, 'failed boot');
});
