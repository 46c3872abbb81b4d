/**
 * The fuzz command's own errors: a mistake in how it is called is one line and exit code 2, never a
 * stack trace; --help prints the usage and succeeds.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const MAIN = fileURLToPath(new URL('../../../fuzz/main.js', import.meta.url));

function fuzz(...args: string[]) {
  return spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8', timeout: 30_000 });
}

test('fuzz --help prints the usage and exits 0', () => {
  const r = fuzz('--help');
  assert.equal(r.status, 0);
  assert.match(r.stdout, /^usage: npm run fuzz -- /);
});

for (const [args, message] of [
  [['--bogus'], /^fuzz: Unknown option '--bogus'/],
  [['--target', 'no-such-target'], /^fuzz: no fuzz target no-such-target/],
  [['--target', 'split-ring', '--time', 'soon'], /^fuzz: --time needs a non-negative number, got soon/],
  [[], /^fuzz: name a target/],
] as const) {
  test(`fuzz ${args.join(' ') || '(no arguments)'}: one line of error, exit 2, no stack trace`, () => {
    const r = fuzz(...args);
    assert.equal(r.status, 2);
    assert.match(r.stderr, message);
    assert.doesNotMatch(r.stderr, /^\s+at /m);
  });
}
