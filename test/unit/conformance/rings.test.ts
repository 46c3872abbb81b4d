/**
 * The ring families' checks (split-ring, packed-ring, event-suppression) on our devices and on their
 * mutants: each executable check passes (or does not apply, for a stated reason) on the unmodified
 * device and fails with its statement's ConformanceViolation on the mutant that breaks its rule.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Bdf } from '../../../src/bus/pci-bus.js';
import { FunctionCheckContext } from '../../../src/conformance/context.js';
import type { Statement } from '../../../src/conformance/statement.js';
import { eventSuppressionStatements } from '../../../src/conformance/statements/event-suppression.js';
import { packedRingStatements } from '../../../src/conformance/statements/packed-ring.js';
import { splitRingStatements } from '../../../src/conformance/statements/split-ring.js';
import { ConformanceViolation } from '../../../src/errors.js';
import { Machine } from '../../../src/platform/machine.js';
import { probe } from '../../../src/transport/pci/probe.js';
import { PCI_DEVICE_ID } from '../../../src/spec/pci.js';
import { eventSuppressionMutants } from './mutants/event-suppression.js';
import type { Mutant, Mutants } from './mutants/mutant.js';
import { packedRingMutants } from './mutants/packed-ring.js';
import { splitRingMutants } from './mutants/split-ring.js';
import { blkDevice, rngDevice } from './mutants/ring-queues.js';

/** Time a check may wait; short, since a mutant that hangs a request makes a check wait all of it. */
const TIMEOUT_MS = 300;

/** Run `statement`'s check on the function `plug` puts into a fresh machine: undefined when it passed, else the reason it did not apply or the error. */
async function run(
  statement: Statement,
  plug: (machine: Machine) => Bdf,
  via = statement.check!.via?.[0] ?? 'modern',
): Promise<{ notApplicable?: string; error?: Error }> {
  const machine = new Machine();
  const fn = plug(machine);
  const check = statement.check!;
  const facts = await probe(machine.bus, fn, { forceLegacy: via === 'legacy' });
  const deviceId = await machine.bus.configRead(fn, PCI_DEVICE_ID, 2);
  const ctx = new FunctionCheckContext({
    bus: machine.bus,
    fn,
    deviceType: facts.deviceType,
    via,
    transitional: deviceId >= 0x1000 && deviceId <= 0x103f,
    timeoutMs: TIMEOUT_MS,
    statement,
  });
  try {
    const reason = await check.applies?.(ctx);
    if (reason !== undefined) return { notApplicable: reason };
    await check.run(ctx);
    return {};
  } catch (error) {
    return { error: error instanceof Error ? error : new Error(String(error)) };
  } finally {
    await ctx.close();
  }
}

/** Statements whose feature our devices do not offer: not applicable on ours (the mutant offers it), for this reason. */
const NOT_OFFERED_BY_OURS: ReadonlyMap<string, RegExp> = new Map([['event-suppression/notify-on-empty', /NOTIFY_ON_EMPTY/]]);

function family(name: string, statements: readonly Statement[], mutants: Mutants): void {
  const executable = statements.filter((s) => s.check !== undefined);
  test(`${name}: every executable device statement has a mutant, every other statement says why or belongs to the driver`, () => {
    assert.deepEqual(
      executable.map((s) => s.id).filter((id) => mutants[id] === undefined),
      [],
    );
    assert.deepEqual(
      Object.keys(mutants).filter((id) => !executable.some((s) => s.id === id)),
      [],
    );
    for (const s of statements) {
      assert.ok(s.id.startsWith(`${name}/`), s.id);
      assert.equal(s.family, name);
      if (s.side === 'driver') assert.equal(s.check, undefined, s.id);
      else assert.ok((s.check === undefined) !== (s.uncheckable === undefined), `${s.id}: a check or a reason`);
    }
    assert.equal(new Set(statements.map((s) => s.id)).size, statements.length, 'IDs are unique');
  });
  for (const statement of executable) {
    const mutant: Mutant = mutants[statement.id]!;
    test(`${statement.id}: passes on ours, fails on the mutant that ${mutant.breaks}`, async () => {
      const ours = await run(statement, (m) => mutant.original(m));
      const reason = NOT_OFFERED_BY_OURS.get(statement.id);
      if (reason === undefined) assert.equal(ours.notApplicable, undefined, `not applicable on ours: ${ours.notApplicable}`);
      else assert.match(ours.notApplicable ?? 'applied', reason);
      assert.equal(ours.error, undefined, `fails on ours: ${ours.error?.message}`);
      const broken = await run(statement, (m) => mutant.mutant(m));
      assert.ok(
        broken.error instanceof ConformanceViolation,
        `on the mutant: ${broken.notApplicable ?? broken.error?.message ?? 'passed'}`,
      );
      assert.equal(broken.error.statement, statement.id);
    });
  }
}

/** The checks that run through either interface, on the legacy interface of our transitional rng and blk: each passes on one at least, fails on neither. */
test('the split ring checks through the legacy interface of our transitional devices', async () => {
  const both = [...splitRingStatements, ...eventSuppressionStatements].filter((s) => (s.check?.via ?? []).length > 1);
  assert.ok(both.length > 10);
  for (const statement of both) {
    const outcomes = [];
    for (const device of [rngDevice, blkDevice])
      outcomes.push(await run(statement, (m) => m.plugVirtio(device(), { mode: 'transitional' }).bdf, 'legacy'));
    assert.deepEqual(
      outcomes.filter((o) => o.error !== undefined).map((o) => `${statement.id}: ${o.error!.message}`),
      [],
    );
    assert.ok(
      outcomes.some((o) => o.notApplicable === undefined),
      `${statement.id}: ${outcomes.map((o) => o.notApplicable).join('; ')}`,
    );
  }
});

family('split-ring', splitRingStatements, splitRingMutants);
family('packed-ring', packedRingStatements, packedRingMutants);
family('event-suppression', eventSuppressionStatements, eventSuppressionMutants);
