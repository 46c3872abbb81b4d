/**
 * No QEMU outlives its owner: a child Node process starts QEMU through QtestPciBus, reports the
 * pid, and then dies in each way a test run can die (uncaught exception, failing node:test test,
 * Ctrl-C, SIGKILL); afterwards that QEMU must be gone, and so must its files (stub BIOS, qtest
 * socket) from the child's TMPDIR. Also: start-up failures leave nothing behind and say why.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BusError } from '../../../src/errors.js';
import { QtestPciBus } from '../../../src/platform/qtest/qtest-pci-bus.js';
import { tempDir } from './qemu-fixture.js';

const busModule = fileURLToPath(new URL('../../../src/platform/qtest/qtest-pci-bus.js', import.meta.url));

/** Whether `pid` is a live process (a zombie waiting to be reaped counts as gone). */
async function alive(pid: number): Promise<boolean> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    return !/^\d+ \(.*\) Z /.test(stat);
  } catch {
    return false;
  }
}

async function goneWithin(pid: number, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (!(await alive(pid))) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return !(await alive(pid));
}

/**
 * Runs `body` (a module body with `bus` in scope, after the pid is printed) in a child Node,
 * `how` decides what we do once the pid is known. Resolves with the QEMU pid and the child's exit.
 */
async function runChild(
  dir: string,
  name: string,
  body: string,
  how: 'wait' | NodeJS.Signals,
): Promise<{ pid: number; code: number | null; signal: NodeJS.Signals | null; output: string; leftInTmp: string[] }> {
  const file = join(dir, `${name}.mjs`);
  // The child's own TMPDIR, to see what it leaves there.
  const tmp = await mkdtemp(join(dir, `${name}-tmp-`));
  await writeFile(
    file,
    `import { QtestPciBus } from ${JSON.stringify(busModule)};\n` +
      `const bus = await QtestPciBus.launch({ machine: 'pc', args: ['-device', 'virtio-rng-pci'] });\n` +
      `console.log('QEMU-PID ' + bus.qemu.pid);\n` +
      // Wait for our go, so that we can see QEMU alive before the child dies.
      `await new Promise((resolve) => process.stdin.once('data', () => resolve(process.stdin.destroy())));\n` +
      body,
  );
  const child = spawn(process.execPath, [file], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, TMPDIR: tmp } });
  let output = '';
  let pid = 0;
  const gotPid = new Promise<void>((resolve) => {
    const onData = (d: Buffer): void => {
      output += d.toString();
      const m = /QEMU-PID (\d+)/.exec(output);
      if (m && pid === 0) {
        pid = Number(m[1]);
        resolve();
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  await Promise.race([gotPid, exited]);
  assert.ok(pid > 0, `child never reported a QEMU pid: ${output}`);
  assert.ok(await alive(pid), 'QEMU runs while its owner does');
  child.stdin.write('go\n');
  if (how !== 'wait') {
    // Let the body start (a command in flight) before the signal.
    await new Promise((r) => setTimeout(r, 100));
    child.kill(how);
  }
  const { code, signal } = await exited;
  return { pid, code, signal, output, leftInTmp: await readdir(tmp) };
}

test('no QEMU is left behind, however its owner dies', async (t) => {
  const dir = await tempDir();

  await t.test('uncaught exception', async () => {
    const r = await runChild(dir, 'throws', `throw new Error('test body failed mid-way');\n`, 'wait');
    assert.notEqual(r.code, 0);
    assert.ok(await goneWithin(r.pid, 5000), `QEMU ${r.pid} survived its owner's uncaught exception`);
    assert.deepEqual(r.leftInTmp, [], "QEMU's files left behind");
  });

  await t.test('a failing node:test test whose after() never runs', async () => {
    const body =
      `const { test } = await import('node:test');\n` + `test('fails mid-way', () => { throw new Error('assertion failed'); });\n`;
    // As the test runner runs each file: in its own process, exit code 1 when a test failed.
    const r = await runChild(dir, 'failing-test', body, 'wait');
    assert.notEqual(r.code, 0);
    assert.ok(await goneWithin(r.pid, 5000), `QEMU ${r.pid} survived a failing test`);
    assert.deepEqual(r.leftInTmp, [], "QEMU's files left behind");
  });

  await t.test('Ctrl-C (SIGINT) while a command is pending', async () => {
    const r = await runChild(dir, 'sigint', `setInterval(() => void bus.memRead(0x1000, 4), 5);\n`, 'SIGINT');
    assert.equal(r.signal, 'SIGINT', 'the signal keeps its default meaning');
    assert.ok(await goneWithin(r.pid, 5000), `QEMU ${r.pid} survived SIGINT`);
    assert.deepEqual(r.leftInTmp, [], "QEMU's files left behind");
  });

  await t.test('SIGTERM (what a test runner sends a file that timed out)', async () => {
    const r = await runChild(dir, 'sigterm', `setInterval(() => void bus.memRead(0x1000, 4), 5);\n`, 'SIGTERM');
    assert.equal(r.signal, 'SIGTERM');
    assert.ok(await goneWithin(r.pid, 5000), `QEMU ${r.pid} survived SIGTERM`);
    assert.deepEqual(r.leftInTmp, [], "QEMU's files left behind");
  });

  await t.test('SIGKILL, where no handler runs (parent-death signal)', async () => {
    const r = await runChild(dir, 'sigkill', `setInterval(() => undefined, 1000);\n`, 'SIGKILL');
    assert.equal(r.signal, 'SIGKILL');
    assert.ok(await goneWithin(r.pid, 5000), `QEMU ${r.pid} survived SIGKILL of its owner`);
    assert.deepEqual(r.leftInTmp, [], "QEMU's files left behind");
  });
});

test('start-up failures say why and leave nothing behind', async (t) => {
  await t.test('QEMU missing: the error says how to install it', async () => {
    await assert.rejects(
      QtestPciBus.launch({ machine: 'pc', binary: '/nonexistent/qemu-system-x86_64' }),
      (err: unknown) => err instanceof BusError && /not found/.test(err.message) && /apt-get install -y qemu-system-x86/.test(err.message),
    );
  });

  await t.test('a device QEMU does not know: its own message comes through', async () => {
    await assert.rejects(
      QtestPciBus.launch({ machine: 'q35', args: ['-device', 'virtio-no-such-device-pci'] }),
      (err: unknown) => err instanceof BusError && /virtio-no-such-device-pci/.test(err.message) && /QEMU exit code 1/.test(err.message),
    );
  });
});
