/**
 * scripts/lib/debian-backports.sh derives the backports source from the machine's own Debian
 * archive entry (deb822 *.sources first, then one-line lists), never from a built-in mirror, and
 * writes the private apt state's sources.list from it. Run against apt configurations in temp dirs,
 * with a stub apt-get on PATH: no network, no package touched.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';

const run = promisify(execFile);
const LIB = fileURLToPath(new URL('../../../../scripts/lib/debian-backports.sh', import.meta.url));

/** An apt configuration dir with these files, and an os-release naming bookworm. */
async function aptEtc(t: { after: (fn: () => Promise<void>) => void }, files: Readonly<Record<string, string>>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'virtio-ts-apt-etc-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await mkdir(join(dir, 'sources.list.d'));
  await writeFile(join(dir, 'os-release'), 'ID=debian\nVERSION_CODENAME=bookworm\n');
  for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text);
  return dir;
}

/** Runs `script` with the library sourced, against the apt configuration in `etc`. */
async function withLib(
  etc: string,
  script: string,
  path = process.env['PATH'] ?? '',
): Promise<{ code: number; stdout: string; stderr: string }> {
  return run('bash', ['-c', `set -euo pipefail; die() { echo "die: $*" >&2; exit 1; }; . ${LIB}; ${script}`], {
    env: { PATH: path, VIRTIO_TS_APT_ETC: etc, VIRTIO_TS_OS_RELEASE: join(etc, 'os-release') },
  }).then(
    (r) => ({ code: 0, ...r }),
    (err: { code: number; stdout: string; stderr: string }) => err,
  );
}

const SECURITY =
  'Types: deb\nURIs: http://security.example/debian-security\nSuites: bookworm-security\nComponents: main\nSigned-By: /keys/security.gpg\n';

test('deb822: the paragraph whose Suites has the bare codename, with its keyring (not -security, not disabled)', async (t) => {
  const etc = await aptEtc(t, {
    'sources.list.d/debian.sources': [
      SECURITY,
      'Types: deb\nURIs: http://off.example/debian\nSuites: bookworm\nComponents: main\nEnabled: no\n',
      'Types: deb-src deb\n# a comment\nURIs: http://mirror.example/debian http://second.example/debian\nSuites: bookworm bookworm-updates\nComponents: main\nSigned-By: /keys/archive.gpg\n',
    ].join('\n'),
  });
  const r = await withLib(etc, 'debian_archive_source');
  assert.equal(r.stdout, 'http://mirror.example/debian bookworm /keys/archive.gpg\n', r.stderr);
});

test('one-line lists: options in brackets, signed-by kept; none gives "-"; a deb822 entry wins over them', async (t) => {
  const withKey = await aptEtc(t, {
    'sources.list':
      '# deb http://old.example/debian bookworm main\ndeb http://updates.example/debian bookworm-updates main\ndeb [arch=amd64 signed-by=/keys/k.gpg] http://mirror.example/debian bookworm main contrib\n',
  });
  assert.equal((await withLib(withKey, 'debian_archive_source')).stdout, 'http://mirror.example/debian bookworm /keys/k.gpg\n');
  const noKey = await aptEtc(t, { 'sources.list.d/extra.list': 'deb http://plain.example/debian bookworm main\n' });
  assert.equal((await withLib(noKey, 'debian_archive_source')).stdout, 'http://plain.example/debian bookworm -\n');
  const both = await aptEtc(t, {
    'sources.list': 'deb http://line.example/debian bookworm main\n',
    'sources.list.d/debian.sources': 'Types: deb\nURIs: http://deb822.example/debian\nSuites: bookworm\nComponents: main\n',
  });
  assert.equal((await withLib(both, 'debian_archive_source')).stdout, 'http://deb822.example/debian bookworm -\n');
});

test('no Debian archive configured: backports_apt_init fails saying what it looked for', async (t) => {
  const etc = await aptEtc(t, { 'sources.list.d/debian.sources': SECURITY });
  const r = await withLib(etc, `backports_apt_init ${join(etc, 'state')}`);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^die: no Debian archive for suite bookworm found in .*sources\.list/m);
});

test('backports_apt_init: SUITE-backports from the same archive and keyring, in a private state (apt-get only sees its options)', async (t) => {
  const etc = await aptEtc(t, {
    'sources.list.d/debian.sources':
      'Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm\nComponents: main\nSigned-By: /keys/archive.gpg\n',
  });
  const bin = join(etc, 'bin');
  await mkdir(bin);
  await writeFile(join(bin, 'apt-get'), `#!/bin/bash\necho "$*" >> ${join(etc, 'apt-get.log')}\n`);
  await chmod(join(bin, 'apt-get'), 0o755);
  const state = join(etc, 'state');
  const r = await withLib(
    etc,
    `backports_apt_init ${state}; backports_apt_init ${state}; echo "\${BACKPORTS_APT[*]}"`,
    `${bin}:${process.env['PATH'] ?? ''}`,
  );
  assert.equal(r.code, 0, r.stderr);
  assert.equal(
    await readFile(join(state, 'sources.list'), 'utf8'),
    'deb [signed-by=/keys/archive.gpg] http://mirror.example/debian bookworm-backports main\n',
  );
  const options = `-o Dir::Etc::SourceList=${state}/sources.list -o Dir::Etc::SourceParts=/dev/null -o Dir::State::Lists=${state}/lists -o Dir::Cache=${state}/cache`;
  assert.equal(r.stdout, `${options}\n`);
  // One update: the second call finds the lists fresh.
  assert.equal(await readFile(join(etc, 'apt-get.log'), 'utf8'), `${options} update -qq\n`);
});
