/**
 * Issue item 12 for the commands that need no peer (demo, lspci): whatever a command creates is gone
 * after it ends, however it ends: on success, on a validation error, on SIGINT and SIGTERM mid-run
 * (the process then ends by that signal), and when its reader closes the pipe (status 141, as
 * SIGPIPE would give). The QEMU and Linux commands have the same tests under test/peer/.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assertNothingLeft, assertOneLineError, privateTmp, runCli } from '../../helpers/cli-process.js';

/** Stopped while the pattern runs over a 2 GiB temporary image (the disk line comes just before it). */
const MID_RUN = /\tDisk: .*\n/;

test('demo: nothing left after success, a validation error, SIGINT, SIGTERM or a closed pipe', async (t) => {
  await t.test('success', async (t) => {
    const tmp = await privateTmp(t);
    const run = await runCli(['demo', '--size', '1'], { tmp });
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /^checksums verified/m);
    await assertNothingLeft(tmp, run, 'success');
  });

  await t.test('validation error', async (t) => {
    const tmp = await privateTmp(t);
    const run = await runCli(['demo', '--size', '2048', '--interrupts', 'never'], { tmp });
    assertOneLineError(run, /--interrupts never/, 'ERR_USAGE');
    await assertNothingLeft(tmp, run, 'validation error');
  });

  for (const end of ['SIGINT', 'SIGTERM'] as const) {
    await t.test(`${end} mid-run`, async (t) => {
      const tmp = await privateTmp(t);
      const run = await runCli(['demo', '--size', '2048'], { tmp, at: MID_RUN, end });
      assert.equal(run.signal, end, `ended by the signal (status 128+n): ${run.stderr}`);
      assert.equal(run.stderr, '');
      await assertNothingLeft(tmp, run, end);
    });
  }

  await t.test('closed pipe (| head -1)', async (t) => {
    const tmp = await privateTmp(t);
    const run = await runCli(['demo', '--size', '2048'], { tmp, at: /^virtio-ts demo: .*\n/, end: 'EPIPE' });
    assert.equal(run.code, 141, run.stderr);
    assert.equal(run.stderr, '', 'quietly');
    await assertNothingLeft(tmp, run, 'EPIPE');
  });
});

test('lspci: creates nothing, even for a moment (an in-memory disk)', async (t) => {
  const tmp = await privateTmp(t);
  const run = await runCli(['lspci', '--mode', 'transitional'], { tmp, at: 'child' });
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, /Probe: modern: /);
  assert.deepEqual(run.descendants, []);
  await assertNothingLeft(tmp, run, 'lspci');
});
