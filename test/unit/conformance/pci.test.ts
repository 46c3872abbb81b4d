/**
 * The PCI transport's checks (families pci-*) on our devices and on their mutants: each executable
 * check passes (or does not apply, for a stated reason) on the unmodified device, and fails with its
 * own ConformanceViolation on the mutant that breaks its rule, through at least one interface.
 * Every executable check has a mutant; the statement IDs are unique and well formed.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Bdf } from '../../../src/bus/pci-bus.js';
import type { Statement } from '../../../src/conformance/statement.js';
import { pciCapabilitiesStatements } from '../../../src/conformance/statements/pci-capabilities.js';
import { pciCfgAccessStatements } from '../../../src/conformance/statements/pci-cfg-access.js';
import { pciCommonCfgStatements } from '../../../src/conformance/statements/pci-common-cfg.js';
import { pciHeaderStatements } from '../../../src/conformance/statements/pci-header.js';
import { pciIsrStatements } from '../../../src/conformance/statements/pci-isr.js';
import { pciLegacyStatements } from '../../../src/conformance/statements/pci-legacy.js';
import { pciMsixStatements } from '../../../src/conformance/statements/pci-msix.js';
import { pciNotifyStatements } from '../../../src/conformance/statements/pci-notify.js';
import { Machine } from '../../../src/platform/machine.js';
import { functionFacts, runCheck } from '../../helpers/conformance-run.js';
import type { Mutant, Mutants } from './mutants/mutant.js';
import { pciCapabilitiesMutants } from './mutants/pci-capabilities.js';
import { pciCfgAccessMutants } from './mutants/pci-cfg-access.js';
import { pciCommonCfgMutants } from './mutants/pci-common-cfg.js';
import { pciHeaderMutants } from './mutants/pci-header.js';
import { pciIsrMutants } from './mutants/pci-isr.js';
import { pciLegacyMutants } from './mutants/pci-legacy.js';
import { pciMsixMutants } from './mutants/pci-msix.js';
import { pciNotifyMutants } from './mutants/pci-notify.js';

const FAMILIES: readonly (readonly [string, readonly Statement[], Mutants])[] = [
  ['pci-header', pciHeaderStatements, pciHeaderMutants],
  ['pci-capabilities', pciCapabilitiesStatements, pciCapabilitiesMutants],
  ['pci-common-cfg', pciCommonCfgStatements, pciCommonCfgMutants],
  ['pci-notify', pciNotifyStatements, pciNotifyMutants],
  ['pci-isr', pciIsrStatements, pciIsrMutants],
  ['pci-cfg-access', pciCfgAccessStatements, pciCfgAccessMutants],
  ['pci-legacy', pciLegacyStatements, pciLegacyMutants],
  ['pci-msix', pciMsixStatements, pciMsixMutants],
];

const TIMEOUT_MS = 500;

/** A new machine with one function plugged by `plug`. */
function fresh(plug: (m: Machine) => Bdf): { bus: Machine['bus']; fn: Bdf } {
  const machine = new Machine();
  return { bus: machine.bus, fn: plug(machine) };
}

/**
 * Checks our devices fail today, with what fixes them; such a check must fail on ours (so that the
 * entry goes once the fix is merged) and still fail on its mutant.
 */
const KNOWN_FAILURES: ReadonlyMap<string, string> = new Map<string, string>([]);

for (const [family, statements, mutants] of FAMILIES) {
  test(`${family}: IDs are unique, in the family, and each statement has a check or a reason`, () => {
    const ids = statements.map((s) => s.id);
    assert.equal(new Set(ids).size, ids.length);
    for (const s of statements) {
      assert.ok(s.id.startsWith(`${family}/`), s.id);
      assert.equal(s.family, family, s.id);
      if (s.side === 'device')
        assert.ok((s.check === undefined) !== (s.uncheckable === undefined), `${s.id}: a check or a reason, not both`);
      else assert.equal(s.check, undefined, `${s.id}: driver statements have no check`);
    }
    const executable = statements.filter((s) => s.check !== undefined).map((s) => s.id);
    assert.deepEqual(Object.keys(mutants).sort(), [...executable].sort(), 'one mutant per executable check');
  });

  for (const statement of statements.filter((s) => s.check !== undefined)) {
    const mutant: Mutant | undefined = mutants[statement.id];
    test(`${statement.id}: passes on ours, fails on the mutant (${mutant?.breaks ?? 'no mutant'})`, async () => {
      assert.ok(mutant, 'no mutant');
      const probeMachine = new Machine();
      const known = await functionFacts(probeMachine.bus, mutant.original(probeMachine));
      const original = await runCheck(statement, known, () => fresh(mutant.original), TIMEOUT_MS);
      const knownFailure = KNOWN_FAILURES.get(statement.id);
      for (const o of original) {
        if (o.kind === 'error') throw o.error;
        if (knownFailure === undefined) assert.notEqual(o.kind, 'violation', `ours fails: ${o.kind === 'violation' ? o.message : ''}`);
      }
      if (knownFailure !== undefined)
        assert.ok(
          original.some((o) => o.kind === 'violation'),
          `ours passes now: drop the known failure (${knownFailure})`,
        );
      const broken = await runCheck(statement, known, () => fresh(mutant.mutant), TIMEOUT_MS);
      assert.ok(
        broken.some((o) => o.kind === 'violation'),
        `the check does not fail on its mutant: ${JSON.stringify(broken.map((o) => (o.kind === 'error' ? String(o.error) : o)))}`,
      );
    });
  }
}
