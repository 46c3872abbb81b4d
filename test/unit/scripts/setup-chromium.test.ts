/**
 * scripts/setup.d/30-chromium.sh installs Debian's chromium with apt-get, waiting for another
 * apt/dpkg's lock, only when the browser is missing; run here against stub apt-get, fuser and id on
 * PATH and a browser path of the test's own (VIRTIO_TS_CHROMIUM): no package is touched.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';

const run = promisify(execFile);
const SETUP_CHROMIUM = fileURLToPath(new URL('../../../../scripts/setup.d/30-chromium.sh', import.meta.url));

async function stubs(t: { after: (fn: () => Promise<void>) => void }, uid: number) {
  const dir = await mkdtemp(join(tmpdir(), 'virtio-ts-setup-chromium-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const log = join(dir, 'apt-get.log');
  const browser = join(dir, 'chromium');
  const script = async (name: string, body: string): Promise<void> => {
    await writeFile(join(dir, name), `#!/bin/bash\n${body}\n`);
    await chmod(join(dir, name), 0o755);
  };
  await script('id', `echo ${uid}`);
  await script('fuser', `[ "$1" = /var/lib/dpkg/lock ] && echo " ${process.pid}"; exit 0`);
  // apt-get records its arguments; "install" puts the browser in place, as the real one would.
  await script(
    'apt-get',
    `echo "$*" >> ${log}\ncase " $* " in *" install "*) printf '#!/bin/sh\\n' > ${browser}; chmod +x ${browser};; esac`,
  );
  for (const tool of ['cat', 'chmod']) await symlink((await run('bash', ['-c', `command -v ${tool}`])).stdout.trim(), join(dir, tool));
  const setup = () => run('/bin/bash', [SETUP_CHROMIUM], { env: { PATH: dir, VIRTIO_TS_CHROMIUM: browser } });
  const calls = async () => (existsSync(log) ? (await readFile(log, 'utf8')).trim().split('\n') : []);
  return { setup, calls, browser };
}

test('30-chromium.sh: installs chromium with apt-get (waiting for the lock, naming who holds it), then does nothing', async (t) => {
  const { setup, calls, browser } = await stubs(t, 0);
  const { stderr } = await setup();
  const first = await calls();
  assert.equal(first.length, 2, first.join('\n'));
  assert.match(first[0]!, /^-o DPkg::Lock::Timeout=300 update /);
  assert.match(first[1]!, /^-o DPkg::Lock::Timeout=300 install .*--no-install-recommends chromium$/);
  assert.match(stderr, new RegExp(`/var/lib/dpkg/lock is held by ${process.pid} \\(node\\); waiting up to 300 s for it`));
  assert.ok(existsSync(browser));
  const again = await setup();
  assert.equal((await calls()).length, 2, 'a second run installs nothing');
  assert.equal(again.stderr, '');
});

test('30-chromium.sh: not root and no chromium: exit 1 with one line saying what to install', async (t) => {
  const { setup, calls } = await stubs(t, 1000);
  const r = await setup().then(
    () => assert.fail('setup must fail without root'),
    (err: { code: number; stderr: string }) => err,
  );
  assert.equal(r.code, 1);
  assert.match(
    r.stderr.trim(),
    /^30-chromium: .*chromium is missing; run as root: apt-get update && apt-get install -y --no-install-recommends chromium$/,
  );
  assert.deepEqual(await calls(), []);
});
