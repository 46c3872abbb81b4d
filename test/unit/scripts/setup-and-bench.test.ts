/**
 * Issue item 13: scripts/setup.d/10-qemu.sh waits, bounded, for another apt/dpkg's lock and says who
 * holds it (run here against stub apt-get, fuser and id on PATH: no package is touched); and
 * `npm run bench` without its peer says to run setup, in one line, before any bench runs.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';

const run = promisify(execFile);
const SETUP_QEMU = fileURLToPath(new URL('../../../../scripts/setup.d/10-qemu.sh', import.meta.url));
const BENCH_MAIN = fileURLToPath(new URL('../../../bench/main.js', import.meta.url));

test('10-qemu.sh: apt-get waits up to 300 s for the lock, and the script names who holds it', async (t) => {
  const stubs = await mkdtemp(join(tmpdir(), 'virtio-ts-setup-test-'));
  t.after(() => rm(stubs, { recursive: true, force: true }));
  const log = join(stubs, 'apt-get.log');
  const script = async (name: string, body: string): Promise<void> => {
    await writeFile(join(stubs, name), `#!/bin/bash\n${body}\n`);
    await chmod(join(stubs, name), 0o755);
  };
  await script('id', 'echo 0');
  // This test process holds the dpkg frontend lock, as far as the script can tell.
  await script('fuser', `[ "$1" = /var/lib/dpkg/lock-frontend ] && echo " ${process.pid}"; exit 0`);
  // apt-get records its arguments; "install" puts a QEMU on PATH, as the real one would.
  await script(
    'apt-get',
    `echo "$*" >> ${log}\ncase " $* " in *" install "*) printf '#!/bin/sh\\n' > ${stubs}/qemu-system-x86_64; chmod +x ${stubs}/qemu-system-x86_64;; esac`,
  );
  for (const tool of ['cat', 'chmod']) await symlink((await run('bash', ['-c', `command -v ${tool}`])).stdout.trim(), join(stubs, tool));
  const { stderr } = await run('/bin/bash', [SETUP_QEMU], { env: { PATH: stubs } });
  const calls = (await readFile(log, 'utf8')).trim().split('\n');
  assert.equal(calls.length, 2, calls.join('\n'));
  for (const call of calls) assert.match(call, /^-o DPkg::Lock::Timeout=300 (update|install) /);
  assert.match(stderr, new RegExp(`/var/lib/dpkg/lock-frontend is held by ${process.pid} \\(node\\); waiting up to 300 s for it`));
});

test('npm run bench without QEMU: one line saying how to get it (npm run setup), exit 1, before any bench runs', async () => {
  const r = await run(process.execPath, [BENCH_MAIN, 'qemu-blk', 'ring'], {
    env: { ...process.env, VIRTIO_TS_QEMU: '/nonexistent/qemu-system-x86_64' },
  }).then(
    () => assert.fail('the bench must fail without its peer'),
    (err: { code: number; stdout: string; stderr: string }) => err,
  );
  assert.equal(r.code, 1);
  assert.equal(r.stdout, '', 'no bench ran');
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0]!, /^bench qemu-blk: \/nonexistent\/qemu-system-x86_64 not found: .*npm run setup.* \(ERR_BUS\)$/);
});
