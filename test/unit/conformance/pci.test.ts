/**
 * The PCI transport's checks (families pci-*) on our devices and on their mutants: each executable
 * check passes (or does not apply, for a stated reason) on the unmodified device, and fails with its
 * own ConformanceViolation on the mutant that breaks its rule, through at least one interface.
 * Every executable check has a mutant; the statement IDs are unique and well formed.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assignBars } from '../../../src/bus/bars.js';
import type { Bdf } from '../../../src/bus/pci-bus.js';
import { readConfigSpace } from '../../../src/bus/config-space-reader.js';
import { FunctionCheckContext } from '../../../src/conformance/context.js';
import type { Interface, Statement } from '../../../src/conformance/statement.js';
import { pciCapabilitiesStatements } from '../../../src/conformance/statements/pci-capabilities.js';
import { pciCfgAccessStatements } from '../../../src/conformance/statements/pci-cfg-access.js';
import { pciCommonCfgStatements } from '../../../src/conformance/statements/pci-common-cfg.js';
import { pciHeaderStatements } from '../../../src/conformance/statements/pci-header.js';
import { pciIsrStatements } from '../../../src/conformance/statements/pci-isr.js';
import { pciLegacyStatements } from '../../../src/conformance/statements/pci-legacy.js';
import { pciMsixStatements } from '../../../src/conformance/statements/pci-msix.js';
import { pciNotifyStatements } from '../../../src/conformance/statements/pci-notify.js';
import { ConformanceViolation } from '../../../src/errors.js';
import { Machine } from '../../../src/platform/machine.js';
import { decideTransport } from '../../../src/transport/pci/probe.js';
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

type Outcome = { kind: 'pass' } | { kind: 'n/a'; reason: string } | { kind: 'violation'; message: string } | { kind: 'error'; error: unknown };

/** The interfaces and device type of the unmodified function, as the engine finds them. */
async function facts(machine: Machine, fn: Bdf): Promise<{ deviceType: number; interfaces: Interface[] }> {
  const bars = await assignBars(machine.bus, fn);
  const cfg = await readConfigSpace(machine.bus, fn);
  const first = decideTransport(cfg, bars);
  const interfaces: Interface[] = [first.kind];
  try {
    if (first.kind === 'modern') interfaces.push(decideTransport(cfg, bars, { forceLegacy: true }).kind);
  } catch {
    // Modern only.
  }
  return { deviceType: first.deviceType, interfaces };
}

/** Runs `statement`'s check on a fresh machine with `plug`'s function through each interface it applies to. */
async function run(statement: Statement, plug: (m: Machine) => Bdf, known: Awaited<ReturnType<typeof facts>>): Promise<Outcome[]> {
  const check = statement.check!;
  const outcomes: Outcome[] = [];
  for (const via of check.via ?? [known.interfaces[0]!]) {
    if (!known.interfaces.includes(via)) continue;
    const machine = new Machine();
    const fn = plug(machine);
    const ctx = new FunctionCheckContext({
      bus: machine.bus,
      fn,
      deviceType: known.deviceType,
      via,
      transitional: known.interfaces.length === 2,
      timeoutMs: TIMEOUT_MS,
      statement,
    });
    try {
      const reason = await check.applies?.(ctx);
      if (reason !== undefined) outcomes.push({ kind: 'n/a', reason });
      else {
        await check.run(ctx);
        outcomes.push({ kind: 'pass' });
      }
    } catch (error) {
      if (error instanceof ConformanceViolation && error.statement === statement.id) outcomes.push({ kind: 'violation', message: error.message });
      else outcomes.push({ kind: 'error', error });
    } finally {
      await ctx.close();
    }
  }
  return outcomes;
}

/** Statement IDs whose check our device fails today, each with the issue that fixes it (kept empty when fixed). */
const KNOWN_FAILURES: ReadonlyMap<string, string> = new Map();

for (const [family, statements, mutants] of FAMILIES) {
  test(`${family}: IDs are unique, in the family, and each statement has a check or a reason`, () => {
    const ids = statements.map((s) => s.id);
    assert.equal(new Set(ids).size, ids.length);
    for (const s of statements) {
      assert.ok(s.id.startsWith(`${family}/`), s.id);
      assert.equal(s.family, family, s.id);
      if (s.side === 'device') assert.ok((s.check === undefined) !== (s.uncheckable === undefined), `${s.id}: a check or a reason, not both`);
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
      const known = await facts(probeMachine, mutant.original(probeMachine));
      const original = await run(statement, (m) => mutant.original(m), known);
      const knownFailure = KNOWN_FAILURES.get(statement.id);
      for (const o of original) {
        if (o.kind === 'error') throw o.error;
        if (knownFailure === undefined) assert.notEqual(o.kind, 'violation', `ours fails: ${o.kind === 'violation' ? o.message : ''}`);
      }
      const broken = await run(statement, (m) => mutant.mutant(m), known);
      assert.ok(
        broken.some((o) => o.kind === 'violation'),
        `the check does not fail on its mutant: ${JSON.stringify(broken.map((o) => (o.kind === 'error' ? String(o.error) : o)))}`,
      );
    });
  }
}
