/**
 * Issue items 11 and 12 for `virtio-ts boot` (Linux in v86): a --disk it cannot use is one line with
 * a code, before the guest assets are built or anything started; and after success (`exit` in the
 * shell powers the guest off), SIGINT or SIGTERM at the shell, or a reader closing the pipe, the
 * command leaves no file in its TMPDIR and no process (the asset build) behind. Needs the Linux
 * guest assets (npm run setup): without them the build step fails, saying so.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { assertNothingLeft, assertOneLineError, bindUdpOnce, privateTmp, runCli } from '../../helpers/cli-process.js';

/** The line boot prints when the shell is up. */
const SHELL_UP = /virtio-ts boot: shell on virtio-console/;
/** Boots are slow on a loaded machine (a restored state is quick, the first boot is not). */
const BOOT_TIMEOUT_MS = 180_000;

test('boot --disk it cannot use: one line with a code, nothing started', async (t) => {
  const tmp = await privateTmp(t);
  const dir = join(tmp, 'a-directory');
  const odd = join(tmp, 'odd.img');
  await mkdir(dir);
  await writeFile(odd, new Uint8Array(1000));
  const cases: [string[], RegExp, string][] = [
    [['--disk', '/nonexistent-dir/x.img'], /\/nonexistent-dir\/x\.img: no such file/, 'ERR_HOST_FILE_NOT_FOUND'],
    [['--disk', dir], /a-directory: is a directory/, 'ERR_HOST_FILE_IS_DIRECTORY'],
    [['--disk', odd, '--read-only'], /odd\.img: 1000 bytes is not a whole number of 512-byte sectors/, 'ERR_HOST_FILE_SIZE'],
    [['--memory', '64'], /--memory 64: MiB in \[96, 1024\]/, 'ERR_USAGE'],
  ];
  for (const [args, message, code] of cases) {
    const run = await runCli(['boot', ...args], { tmp, at: 'child' });
    assertOneLineError(run, message, code);
    assert.deepEqual(run.descendants, [], `${args.join(' ')}: the asset build was not started`);
  }
});

test('boot: nothing left after success, SIGINT, SIGTERM or a closed pipe', async (t) => {
  await t.test('success: exit in the shell powers off, status 0', async (t) => {
    const tmp = await privateTmp(t);
    const disk = join(tmp, 'disk.img');
    await writeFile(disk, new Uint8Array(1 << 20));
    const run = await runCli(['boot', '--disk', disk], { tmp, at: SHELL_UP, input: 'exit\n', timeoutMs: BOOT_TIMEOUT_MS });
    assert.equal(run.code, 0, run.stderr);
    // The user's disk is the user's to keep: besides it, nothing.
    await rm(disk);
    await assertNothingLeft(tmp, run, 'success');
  });

  for (const end of ['SIGINT', 'SIGTERM'] as const) {
    await t.test(`${end} at the shell`, async (t) => {
      const tmp = await privateTmp(t);
      const run = await runCli(['boot'], { tmp, at: SHELL_UP, end, timeoutMs: BOOT_TIMEOUT_MS });
      assert.equal(run.signal, end, `ended by the signal: status ${run.code}, ${run.stderr}`);
      await assertNothingLeft(tmp, run, end);
    });
  }

  await t.test('closed pipe: the guest writes to a closed stdout', async (t) => {
    const tmp = await privateTmp(t);
    // stdout closed when the shell is up; the shell's echo of the command then meets the closed pipe.
    const run = await runCli(['boot'], { tmp, at: SHELL_UP, end: 'EPIPE', input: 'echo virtio-ts-epipe\n', timeoutMs: BOOT_TIMEOUT_MS });
    assert.equal(run.code, 141, run.stderr);
    await assertNothingLeft(tmp, run, 'EPIPE');
  });
});

test('boot --net-udp: a taken port is one line before anything starts; after a boot with it, exit ends the command and frees the port', async (t) => {
  const tmp = await privateTmp(t);
  const taken = createSocket('udp4');
  taken.bind(0, '0.0.0.0');
  await once(taken, 'listening');
  const busy = await runCli(['boot', '--net-udp', `${taken.address().port}:127.0.0.1:9`], { tmp, at: 'child' });
  taken.close();
  assertOneLineError(busy, /cannot bind the dgram backend to 0\.0\.0\.0:\d+/, 'ERR_BUS');
  assert.deepEqual(busy.descendants, [], 'the asset build was not started');

  const port = await bindUdpOnce(0);
  const run = await runCli(['boot', '--net-udp', `${port}:127.0.0.1:9`], {
    tmp,
    at: SHELL_UP,
    input: 'exit\n',
    timeoutMs: BOOT_TIMEOUT_MS,
  });
  assert.equal(run.signal, null, `ended by itself, not killed at the timeout: ${run.stderr}`);
  assert.equal(run.code, 0, run.stderr);
  assert.equal(await bindUdpOnce(port), port);
  await assertNothingLeft(tmp, run, 'net-udp success');
});

test("boot --audit: when the session ends, the audit of Linux's drivers, per device", async (t) => {
  const tmp = await privateTmp(t);
  const run = await runCli(['boot', '--audit'], { tmp, at: SHELL_UP, input: 'exit\n', timeoutMs: BOOT_TIMEOUT_MS });
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stderr, /driver audit of Linux's virtio drivers/);
  // As test/peer/linux/audit.test.ts lists: virtio_blk's single-field config reads; rng and console clean.
  assert.match(run.stderr, /^ {2}blk +device-config\/generation-loop \(SHOULD, 2\.5\.1\) x\d+:/m);
  assert.match(run.stderr, /^ {2}rng +clean$/m);
  assert.match(run.stderr, /^ {2}console +clean$/m);
  await assertNothingLeft(tmp, run, 'audit');
});
