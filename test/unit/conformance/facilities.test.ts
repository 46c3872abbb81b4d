/**
 * The basic facilities' and initialisation's checks (families status, features, notifications,
 * device-config, reset, initialization) on our devices and on their mutants: every executable
 * check passes on the unmodified device through each interface it applies to, and fails with its
 * own ConformanceViolation on the mutant that breaks its rule (issue 14, "no vacuous check").
 */

import { describe as suite, test } from 'node:test';
import assert from 'node:assert/strict';
import { Machine } from '../../../src/platform/machine.js';
import { ConformanceViolation } from '../../../src/errors.js';
import type { Statement } from '../../../src/conformance/statement.js';
import type { Mutants } from './mutants/mutant.js';
import { runCheck, type Outcome } from '../../helpers/run-check.js';
import { statusStatements } from '../../../src/conformance/statements/status.js';
import { featuresStatements } from '../../../src/conformance/statements/features.js';
import { notificationsStatements } from '../../../src/conformance/statements/notifications.js';
import { deviceConfigStatements } from '../../../src/conformance/statements/device-config.js';
import { resetStatements } from '../../../src/conformance/statements/reset.js';
import { initializationStatements } from '../../../src/conformance/statements/initialization.js';
import { statusMutants } from './mutants/status.js';
import { featuresMutants } from './mutants/features.js';
import { notificationsMutants } from './mutants/notifications.js';
import { deviceConfigMutants } from './mutants/device-config.js';
import { resetMutants } from './mutants/reset.js';
import { initializationMutants } from './mutants/initialization.js';

/**
 * Checks our devices fail today for findings another branch fixes (issue 14, item 6); they run as
 * `todo` until then, and their mutants must still fail.
 */
const KNOWN_FINDINGS: ReadonlyMap<string, string> = new Map<string, string>([]);

function describe(o: Outcome): string {
  return `${o.via}: ${o.result === 'fail' ? String(o.error) : o.result === 'n/a' ? `n/a (${o.why})` : 'pass'}`;
}

const FAMILIES: readonly (readonly [string, readonly Statement[], Mutants])[] = [
  ['status', statusStatements, statusMutants],
  ['features', featuresStatements, featuresMutants],
  ['notifications', notificationsStatements, notificationsMutants],
  ['device-config', deviceConfigStatements, deviceConfigMutants],
  ['reset', resetStatements, resetMutants],
  ['initialization', initializationStatements, initializationMutants],
];

for (const [family, statements, mutants] of FAMILIES) {
  suite(`conformance family ${family}`, () => {
    test("IDs are the family's, unique, and every statement has a check, a reason, or is the driver's", () => {
      const ids = statements.map((s) => s.id);
      assert.equal(new Set(ids).size, ids.length);
      for (const s of statements) {
        assert.ok(s.id.startsWith(`${family}/`), s.id);
        assert.equal(s.family, family, s.id);
        if (s.side === 'device') assert.ok((s.check === undefined) !== (s.uncheckable === undefined), `${s.id}: a check xor a reason`);
        else assert.equal(s.check, undefined, `${s.id}: driver statements have no device check`);
      }
      const executable = statements.filter((s) => s.check !== undefined).map((s) => s.id);
      assert.deepEqual(Object.keys(mutants).sort(), [...executable].sort(), 'one mutant per executable check');
    });

    for (const statement of statements.filter((s) => s.check !== undefined)) {
      const mutant = mutants[statement.id]!;
      const known = KNOWN_FINDINGS.get(statement.id);
      test(`${statement.id}: passes on our device`, { todo: known }, async () => {
        const machine = new Machine();
        const outcomes = await runCheck(machine.bus, mutant.original(machine), statement);
        assert.ok(outcomes.length > 0, 'ran through no interface');
        for (const o of outcomes) {
          if (o.result === 'fail') throw o.error;
          assert.equal(o.result, 'pass', `${o.via}: not applicable: ${o.result === 'n/a' ? o.why : ''}`);
        }
      });
      test(`${statement.id}: fails on the mutant (${mutant.breaks})`, async () => {
        const machine = new Machine();
        const outcomes = await runCheck(machine.bus, mutant.mutant(machine), statement);
        // The statement's own violation through at least one interface (a mutant may also break
        // what the other interface needs to start, as a dead device would).
        const violations = outcomes.filter((o) => o.result === 'fail' && o.error instanceof ConformanceViolation);
        assert.ok(violations.length > 0, `no violation on the mutant: ${outcomes.map(describe).join('; ')}`);
        for (const o of violations) if (o.result === 'fail') assert.equal((o.error as ConformanceViolation).statement, statement.id);
      });
    }
  });
}
