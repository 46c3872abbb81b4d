// ESLint and Prettier, as CI runs them, fail on a planted violation: the checks are live, not decoration.
// The planted text goes through stdin under a real file's name, so nothing in the tree is touched.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
const FILE = 'src/cli/fill-pattern.ts';
const bin = (pkg: string, path: string): string => join(ROOT, 'node_modules', pkg, path);

function run(args: string[], input: string): { status: number | null; out: string } {
  const r = spawnSync(process.execPath, args, { cwd: ROOT, input, encoding: 'utf8', timeout: 120_000 });
  return { status: r.status, out: r.stdout + r.stderr };
}

const original = readFileSync(join(ROOT, FILE), 'utf8');

test('lint: a planted any and a floating promise fail ESLint under their rule names; the file as it is passes', () => {
  const eslint = (text: string) => run([bin('eslint', 'bin/eslint.js'), '--stdin', '--stdin-filename', FILE], text);
  assert.equal(eslint(original).status, 0);
  const planted = eslint(`${original}\nexport function planted(x: any): void {\n  Promise.resolve(x);\n}\n`);
  assert.equal(planted.status, 1, planted.out);
  assert.match(planted.out, /@typescript-eslint\/no-explicit-any/);
  assert.match(planted.out, /@typescript-eslint\/no-floating-promises/);
});

test('format: a planted double-quoted, unindented line fails Prettier; the file as it is passes', () => {
  const prettier = (text: string) => run([bin('prettier', 'bin/prettier.cjs'), '--check', '--stdin-filepath', FILE], text);
  assert.equal(prettier(original).status, 0);
  const planted = prettier(`${original}\nexport const planted = "double quotes";\n`);
  assert.notEqual(planted.status, 0, planted.out);
});
