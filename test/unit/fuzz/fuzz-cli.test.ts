/**
 * The fuzz command's own errors: a mistake in how it is called is one line and exit code 2, never a
 * stack trace; --help prints the usage and succeeds. --jobs runs several campaigns and merges them.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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
  [['--target', 'split-ring', '--jobs', '0'], /^fuzz: --jobs needs a whole number from 1 to 32, got 0/],
  [['--target', 'split-ring', '--jobs', 'x'], /^fuzz: --jobs needs a whole number from 1 to 32, got x/],
  [['--target', 'split-ring', '--jobs', '33'], /^fuzz: --jobs needs a whole number from 1 to 32, got 33/],
  [['--target', 'split-ring', '--jobs', '1.5'], /^fuzz: --jobs needs a whole number from 1 to 32, got 1.5/],
] as const) {
  test(`fuzz ${args.join(' ') || '(no arguments)'}: one line of error, exit 2, no stack trace`, () => {
    const r = fuzz(...args);
    assert.equal(r.status, 2);
    assert.match(r.stderr, message);
    assert.doesNotMatch(r.stderr, /^\s+at /m);
  });
}

interface JobJson {
  readonly execs: number;
  readonly seed: number;
  readonly findings: number;
}

test('fuzz --jobs 2 shares --runs between two campaigns with their own seeds and merges their summaries', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fuzz-jobs-'));
  try {
    const json = join(dir, 'summary.json');
    // Unguided: a guided campaign reruns a batch that found new blocks, which may pass --runs.
    const r = fuzz('--target', 'guest-memory', '--runs', '400', '--jobs', '2', '--unguided', '--seed', '5', '--json', json);
    assert.equal(r.status, 0, r.stderr);
    const [summary, ...rest] = JSON.parse(readFileSync(json, 'utf8')) as Array<JobJson & { jobs: number; perJob: JobJson[] }>;
    assert.equal(rest.length, 0);
    assert.equal(summary!.jobs, 2);
    assert.equal(summary!.execs, 400);
    assert.equal(summary!.findings, 0);
    assert.deepEqual(
      summary!.perJob.map((j) => [j.execs, j.seed, j.findings]),
      [
        [200, 5, 0],
        [200, 1005, 0],
      ],
    );
    assert.match(r.stdout, /^\[guest-memory job 1\] 200 execs /m);
    assert.match(r.stdout, /^\[guest-memory job 2\] 200 execs /m);
    assert.match(r.stdout, /^\[guest-memory\] 400 execs from 2 jobs /m);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
