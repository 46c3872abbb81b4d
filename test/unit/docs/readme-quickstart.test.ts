// The README's quick starts run exactly as printed: each JavaScript block is run with node against the
// built package (importing 'virtio-ts' through the package's own `exports`) and must print the output
// block the README shows after it; each TypeScript block must typecheck against the package's types.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
const QUICKSTARTS = ['emulator', 'driver'] as const;
const PARTS = { js: 'js', ts: 'ts', output: 'text' } as const;
type Part = keyof typeof PARTS;

/**
 * The fenced block right after `<!-- quickstart: NAME PART -->` (blank lines may sit between); the
 * fence must carry the part's language. Throws, naming the block, if it is
 * missing, doubled or in another language.
 */
function quickstartBlock(markdown: string, name: string, part: Part): string {
  const marker = `<!-- quickstart: ${name} ${part} -->`;
  const at = markdown.indexOf(marker);
  if (at < 0) throw new Error(`README has no "${marker}" block`);
  if (markdown.indexOf(marker, at + 1) >= 0) throw new Error(`README has "${marker}" twice`);
  const fence = /^\n*```(\w*)\n([\s\S]*?)\n```$/m.exec(markdown.slice(at + marker.length));
  if (!fence || fence.index !== 0) throw new Error(`"${marker}" is not followed by a fenced block`);
  if (fence[1] !== PARTS[part]) throw new Error(`"${marker}" block is \`\`\`${fence[1]}, not \`\`\`${PARTS[part]}`);
  return fence[2]!;
}

const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');

test('the quick-start parser finds a block, and refuses a missing, doubled or mislabelled one', () => {
  const md = 'x\n<!-- quickstart: a js -->\n```js\nconsole.log(1);\n```\n';
  assert.equal(quickstartBlock(md, 'a', 'js'), 'console.log(1);');
  assert.throws(() => quickstartBlock(md, 'a', 'ts'), /no "<!-- quickstart: a ts -->" block/);
  assert.throws(() => quickstartBlock(md + md, 'a', 'js'), /twice/);
  assert.throws(() => quickstartBlock(md.replace('```js', '```ts'), 'a', 'js'), /is ```ts, not ```js/);
  assert.throws(() => quickstartBlock('<!-- quickstart: a js -->\ntext\n```js\nx\n```\n', 'a', 'js'), /not followed by a fenced block/);
});

test('the README has every quick-start block: JavaScript, its output and TypeScript, for each quick start', () => {
  for (const name of QUICKSTARTS)
    for (const part of Object.keys(PARTS) as Part[]) assert.ok(quickstartBlock(readme, name, part).length > 0);
});

for (const name of QUICKSTARTS) {
  test(`quick start "${name}": the JavaScript block runs as printed and prints the README's output`, (t) => {
    const dir = mkdtempSync(join(ROOT, '.quickstart-')); // inside the package, so 'virtio-ts' resolves to it
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, `${name}.mjs`);
    writeFileSync(file, quickstartBlock(readme, name, 'js') + '\n');
    const run = spawnSync(process.execPath, [file], { cwd: dir, encoding: 'utf8', timeout: 60_000 });
    assert.equal(run.stderr, '', 'nothing on stderr');
    assert.equal(run.status, 0, `exit status (signal ${run.signal})`);
    assert.equal(run.stdout, quickstartBlock(readme, name, 'output') + '\n');
  });
}

test('quick starts: the TypeScript blocks typecheck against the package, strict', (t) => {
  const dir = mkdtempSync(join(ROOT, '.quickstart-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  for (const name of QUICKSTARTS) writeFileSync(join(dir, `${name}.mts`), quickstartBlock(readme, name, 'ts') + '\n');
  // The project's compiler options (strict, noUncheckedIndexedAccess, NodeNext), over these files only.
  writeFileSync(
    join(dir, 'tsconfig.json'),
    JSON.stringify({ extends: '../tsconfig.json', compilerOptions: { noEmit: true, rootDir: '.' }, include: ['*.mts'] }),
  );
  const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  const run = spawnSync(process.execPath, [tsc, '-p', join(dir, 'tsconfig.json')], { cwd: dir, encoding: 'utf8', timeout: 120_000 });
  assert.equal(run.status, 0, `tsc failed:\n${run.stdout}${run.stderr}`);
});
