/**
 * Issue items 11 and 12 for the CLI commands that start QEMU (probe, diff, conformance): after success, a
 * validation error, SIGINT or SIGTERM while QEMU runs, or a reader closing the pipe, the command's
 * private TMPDIR is empty (scratch images, the stub BIOS, the qtest socket) and no QEMU remains.
 * Needs QEMU: without it these fail, saying how to install it, as every peer test does.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { findQemu } from '../../../src/platform/qtest/qemu-process.js';
import { assertNothingLeft, assertOneLineError, privateTmp, runCli } from '../../helpers/cli-process.js';

const COMMANDS = [
  {
    name: 'probe',
    // A scratch image and a unix socket in TMPDIR besides QEMU's own folder.
    args: ['probe', '--qemu', 'virtio-blk-pci', '--machine', 'pc'],
    done: /^data: capacity 2048 sectors, .*in the image file: same bytes$/m,
    invalid: { args: ['probe', '--qemu', 'virtio-blk-pci', '--machine', 'isapc'], message: /--machine isapc: use pc or q35/ },
  },
  {
    name: 'diff',
    args: ['diff', '--device', 'blk', '--mode', 'transitional', '--machine', 'pc'],
    done: /fields compared, \d+ differ/,
    invalid: { args: ['diff', '--device', 'gpu'], message: /--device gpu: use one of/ },
  },
  {
    name: 'conformance',
    // QEMU's scratch image and sockets, replaced by a fresh QEMU whenever a check hangs or it dies.
    args: ['conformance', '--target', 'qemu:virtio-blk-pci', '--machine', 'pc', '--family', 'pci-header'],
    done: /^qemu:virtio-blk-pci: \d+ pass, /m,
    invalid: { args: ['conformance', '--target', 'qemu:virtio-blk-pci', '--machine', 'isapc'], message: /--machine isapc: use pc or q35/ },
    // Progress lines go to stderr as checks finish, so a closed stdout is not the only output.
    progressOnStderr: true,
  },
];

test('QEMU is there (these tests need it)', () => {
  findQemu();
});

for (const c of COMMANDS) {
  test(`${c.name}: nothing left after success, a validation error, SIGINT, SIGTERM or a closed pipe`, async (t) => {
    await t.test('success', async (t) => {
      const tmp = await privateTmp(t);
      const run = await runCli(c.args, { tmp });
      assert.match(run.stdout, c.done, run.stderr);
      assert.ok(run.descendants.length > 0, 'QEMU ran');
      await assertNothingLeft(tmp, run, 'success');
    });

    await t.test('validation error', async (t) => {
      const tmp = await privateTmp(t);
      const run = await runCli(c.invalid.args, { tmp });
      assertOneLineError(run, c.invalid.message, 'ERR_USAGE');
      assert.deepEqual(run.descendants, [], 'no QEMU started');
      await assertNothingLeft(tmp, run, 'validation error');
    });

    for (const end of ['SIGINT', 'SIGTERM'] as const) {
      await t.test(`${end} while QEMU runs`, async (t) => {
        const tmp = await privateTmp(t);
        const run = await runCli(c.args, { tmp, at: 'child', end });
        assert.equal(run.signal, end, `ended by the signal: status ${run.code}, ${run.stderr}\n${run.stdout}`);
        await assertNothingLeft(tmp, run, end);
      });
    }

    await t.test('closed pipe', async (t) => {
      const tmp = await privateTmp(t);
      // Closed as soon as QEMU runs: the command's first line of output meets a closed pipe.
      const run = await runCli(c.args, { tmp, at: 'child', end: 'EPIPE' });
      assert.equal(run.code, 141, run.stderr);
      if (!('progressOnStderr' in c)) assert.equal(run.stderr, '');
      await assertNothingLeft(tmp, run, 'EPIPE');
    });
  });
}
