/**
 * The ring checks through the legacy interface of our transitional devices, which the harness
 * (mutants.test.ts) does not reach for the checks whose mutants are modern: each check that runs
 * through either interface passes on one of our transitional rng and blk at least, and fails on neither.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { machineTarget } from '../../../src/cli/conformance-targets.js';
import { runConformance } from '../../../src/conformance/runner.js';
import { eventSuppressionStatements } from '../../../src/conformance/statements/event-suppression.js';
import { splitRingStatements } from '../../../src/conformance/statements/split-ring.js';
import { blk, plug, rng } from './mutants/pci-function-mutant.js';

test('the split ring checks through the legacy interface of our transitional devices', async () => {
  const both = [...splitRingStatements, ...eventSuppressionStatements].filter((s) => (s.check?.via ?? []).length > 1);
  assert.ok(both.length > 10);
  const results = [];
  for (const plugging of [rng({ mode: 'transitional' }), blk({ mode: 'transitional' })]) {
    const target = machineTarget(`ours:${plugging.kind}`, `our transitional ${plugging.kind}`, (m) => plug(m, plugging));
    const run = await runConformance(target, both);
    results.push(...run.results.filter((r) => r.via === 'legacy'));
  }
  assert.deepEqual(
    results
      .filter((r) => r.verdict !== 'pass' && r.verdict !== 'not-applicable')
      .map((r) => `${r.statement}: ${r.verdict} ${r.reason ?? ''}`),
    [],
  );
  for (const s of both)
    assert.ok(
      results.some((r) => r.statement === s.id && r.verdict === 'pass'),
      `${s.id}: ${results
        .filter((r) => r.statement === s.id)
        .map((r) => r.reason)
        .join('; ')}`,
    );
});
