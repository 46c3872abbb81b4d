/**
 * The device-type families (blk, net, console, entropy): every executable check passes (or does not
 * apply, for a stated reason) on our unmodified device and fails with its statement's
 * ConformanceViolation on its mutant. Also: every executable check has a mutant, and every mutant a
 * check. (The engine's general harness will take this over for every family.)
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Bdf } from '../../../src/bus/pci-bus.js';
import type { Statement } from '../../../src/conformance/statement.js';
import { functionFacts, runCheck, type Outcome } from '../../helpers/conformance-run.js';
import { blkStatements } from '../../../src/conformance/statements/blk.js';
import { consoleStatements } from '../../../src/conformance/statements/console.js';
import { entropyStatements } from '../../../src/conformance/statements/entropy.js';
import { netStatements } from '../../../src/conformance/statements/net.js';
import { Machine } from '../../../src/platform/machine.js';
import { blkMutants } from './mutants/blk.js';
import { consoleMutants } from './mutants/console.js';
import { entropyMutants } from './mutants/entropy.js';
import type { Mutants } from './mutants/mutant.js';
import { netMutants } from './mutants/net.js';

const FAMILIES: readonly (readonly [string, readonly Statement[], Mutants])[] = [
  ['blk', blkStatements, blkMutants],
  ['net', netStatements, netMutants],
  ['console', consoleStatements, consoleMutants],
  ['entropy', entropyStatements, entropyMutants],
];

/**
 * Checks our device fails today, for a finding another branch fixes (issue 14 item 6); each still
 * has to fail on its mutant. Remove an entry once the fix is merged.
 */
const KNOWN_FINDINGS: ReadonlyMap<string, string> = new Map<string, string>([]);

/** The check's outcome through the first interface it names (or the function's first), as the engine runs it. */
async function runOn(statement: Statement, machine: Machine, fn: Bdf): Promise<Outcome> {
  const outcomes = await runCheck(statement, await functionFacts(machine.bus, fn), () => ({ bus: machine.bus, fn }), 2000);
  const first = outcomes[0];
  assert.ok(first, `${statement.id}: no interface of the function is one the check names`);
  if (first.kind === 'error') throw first.error;
  return first;
}

for (const [family, statements, mutants] of FAMILIES) {
  test(`${family}: every executable check has a mutant and every mutant a check`, () => {
    const executable = statements.filter((s) => s.check).map((s) => s.id);
    assert.deepEqual(Object.keys(mutants).sort(), [...executable].sort());
    for (const s of statements) {
      assert.equal(s.family, family, s.id);
      assert.ok(s.id.startsWith(`${family}/`), s.id);
      assert.ok((s.check === undefined) !== (s.uncheckable === undefined) || s.side === 'driver', `${s.id}: a check or a reason`);
      if (s.side === 'driver') assert.equal(s.check, undefined, s.id);
    }
  });

  for (const statement of statements.filter((s) => s.check)) {
    const mutant = mutants[statement.id];
    test(`${statement.id}: passes on ours, fails on its mutant (${mutant?.breaks ?? 'no mutant'})`, async () => {
      assert.ok(mutant, 'a mutant');
      const ours = new Machine();
      const original = await runOn(statement, ours, mutant.original(ours));
      const known = KNOWN_FINDINGS.get(statement.id);
      if (known === undefined) {
        // Not applicable is allowed (ours may not offer the feature; the mutant then offers it, wrongly).
        assert.notEqual(original.kind, 'violation', original.kind === 'violation' ? original.message : '');
      } else assert.equal(original.kind, 'violation', `known finding no longer seen: ${known}`);
      const broken = new Machine();
      const result = await runOn(statement, broken, mutant.mutant(broken));
      assert.equal(
        result.kind,
        'violation',
        `the check ${result.kind === 'n/a' ? `did not apply: ${result.reason}` : 'passed'} on the mutant`,
      );
    });
  }
}
