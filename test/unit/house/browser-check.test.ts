// `npm run check:browser`: today's browser-safe modules pass; a Node import or a Node global planted in a
// module fails the check, each named.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));

function checkBrowser(...modules: string[]): { status: number | null; out: string } {
  const r = spawnSync(process.execPath, [join(ROOT, 'scripts/check-browser.mjs'), ...modules], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 120_000,
  });
  return { status: r.status, out: r.stdout + r.stderr };
}

test('check:browser: the main entry, virtio-ts/v86 and every module they import bundle for the browser and typecheck without Node', () => {
  const r = checkBrowser();
  assert.equal(r.status, 0, r.out);
  assert.match(r.out, /src\/index\.ts, src\/v86\.ts \(\d+ modules with their imports\) bundle for the browser/);
});

test('check:browser: a planted node:fs import and a Buffer use fail the check, each named', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'virtio-ts-browser-plant-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'package.json'), '{ "type": "module" }\n');
  // a browser-safe module of the project, plus the two things a browser lacks
  const memory = join(ROOT, 'src/memory/guest-memory.js');
  const planted = join(dir, 'planted.ts');
  writeFileSync(planted, `import 'node:fs';\nexport * from ${JSON.stringify(memory)};\nexport const bytes = Buffer.from('x');\n`);
  const r = checkBrowser(planted);
  assert.equal(r.status, 1, r.out);
  assert.match(r.out, /Node built-ins in the browser bundle:\n\s+\S*planted\.ts imports node:fs\n/);
  assert.match(r.out, /typecheck without Node's types failed:\n\S*planted\.ts\(3,\d+\): error TS2591: Cannot find name 'Buffer'/);
});

test('check:browser: a node:fs import or a Buffer use anywhere the main entry reaches fails the check', (t) => {
  // A copy of src/ with the two planted deep below src/index.ts, where the console device used to need Node.
  const dir = mkdtempSync(join(tmpdir(), 'virtio-ts-browser-entry-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  cpSync(join(ROOT, 'src'), join(dir, 'src'), { recursive: true });
  writeFileSync(join(dir, 'package.json'), '{ "type": "module" }\n');
  const port = join(dir, 'src/device/console/console-port.ts');
  writeFileSync(port, `import 'node:fs';\n${readFileSync(port, 'utf8')}`);
  const batch = join(dir, 'src/device/console/tx-batch.ts');
  writeFileSync(batch, `${readFileSync(batch, 'utf8')}export const planted = Buffer.alloc(1);\n`);
  const r = checkBrowser(join(dir, 'src/index.ts'));
  assert.equal(r.status, 1, r.out);
  assert.match(r.out, /Node built-ins in the browser bundle:\n\s+\S*src\/device\/console\/console-port\.ts imports node:fs\n/);
  assert.match(r.out, /\S*src\/device\/console\/tx-batch\.ts\(\d+,\d+\): error TS2591: Cannot find name 'Buffer'/);
});
