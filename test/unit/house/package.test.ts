// What the published package holds (npm pack), what prepack compiles, and `virtio-ts --version`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string; bin: Record<string, string> };

test('npm pack lists only the compiled library and CLI, README, LICENSE, CHANGELOG and package.json', () => {
  // --ignore-scripts: prepack would rebuild dist/src under the tests running from it
  const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
  const [packed] = JSON.parse(out) as [{ files: { path: string }[] }];
  const paths = packed.files.map((f) => f.path);
  const extra = paths.filter(
    (p) => !/^dist\/src\/.+\.(js|d\.ts)$/.test(p) && !['README.md', 'LICENSE', 'CHANGELOG.md', 'package.json'].includes(p),
  );
  assert.deepEqual(extra, []);
  for (const needed of [
    'README.md',
    'LICENSE',
    'CHANGELOG.md',
    'package.json',
    'dist/src/index.js',
    'dist/src/index.d.ts',
    pkg.bin['virtio-ts']!,
  ]) {
    assert.ok(paths.includes(needed), `${needed} is packed`);
  }
});

test('prepack compiles src/ only (tsconfig.build.json)', () => {
  const tsc = join(ROOT, 'node_modules/typescript/bin/tsc');
  const out = execFileSync(process.execPath, [tsc, '-p', 'tsconfig.build.json', '--listFilesOnly'], { cwd: ROOT, encoding: 'utf8' });
  const own = out
    .trim()
    .split('\n')
    .map((f) => relative(ROOT, f))
    .filter((f) => !f.startsWith('node_modules/'));
  assert.ok(own.includes('src/index.ts'));
  assert.deepEqual(
    own.filter((f) => !f.startsWith('src/')),
    [],
  );
});

test('virtio-ts --version prints the version of the package.json beside dist/', (t) => {
  const main = join(ROOT, 'dist/src/cli/main.js');
  assert.equal(execFileSync(process.execPath, [main, '--version'], { encoding: 'utf8' }).trim(), pkg.version);
  // read at run time, from the installed location: another package.json, another version
  const dir = mkdtempSync(join(tmpdir(), 'virtio-ts-version-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  cpSync(join(ROOT, 'dist/src'), join(dir, 'dist/src'), { recursive: true });
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'), 'dir');
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'virtio-ts', version: '9.8.7-test', type: 'module' }));
  assert.equal(execFileSync(process.execPath, [join(dir, 'dist/src/cli/main.js'), '-V'], { encoding: 'utf8' }).trim(), '9.8.7-test');
});
