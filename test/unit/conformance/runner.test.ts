/**
 * The conformance engine on the in-process machine: verdicts per statement and interface, the
 * evidence of a failure (bounded), a device that hangs or a session that dies under a check (the run
 * goes on with a fresh device), a target that cannot give a fresh one, and the exit rule.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Bdf, PciBus } from '../../../src/bus/pci-bus.js';
import { machineTarget, oursTarget } from '../../../src/cli/conformance-targets.js';
import { failsRun, type CheckResult } from '../../../src/conformance/result.js';
import { EVIDENCE_ACCESSES, runConformance } from '../../../src/conformance/runner.js';
import type { CheckContext, Statement } from '../../../src/conformance/statement.js';
import type { ConformanceTarget } from '../../../src/conformance/target.js';
import { BusError, DeviceFaultError } from '../../../src/errors.js';
import type { AccessSize } from '../../../src/memory/access-size.js';
import { Machine } from '../../../src/platform/machine.js';
import { RecordingBus } from '../../../src/testing/recording-bus.js';
import { RngDevice } from '../../../src/device/rng/rng-device.js';
import { VirtioPciFunction } from '../../../src/transport/pci/virtio-pci-function.js';
import {
  deviceIdMutant,
  deviceIdStatement,
  driverStatement,
  legacyOnlyStatement,
  overrideConfig,
  plugRng,
  resetStatement,
  uncheckableStatement,
} from './fixtures/example-statements.js';

const rows = (results: readonly CheckResult[]): string[] => results.map((r) => `${r.statement} ${r.via ?? '-'} ${r.verdict}`);

/** A statement whose check reads one byte of config space at `offset` (an access nothing else makes). */
function readsByte(id: string, offset: number): Statement {
  return {
    id,
    section: '4.1.2',
    level: 'MUST',
    side: 'device',
    family: 'pci-header',
    text: `reads config byte 0x${offset.toString(16)}`,
    check: {
      async run(ctx: CheckContext) {
        await ctx.bus.configRead(ctx.fn, offset, 1);
      },
    },
  };
}

/** Whose check throws `err`. */
function throws(id: string, err: Error): Statement {
  return { ...readsByte(id, 0), check: { run: () => Promise.reject(err) } };
}

/** A bus that calls `trap` on a one-byte config read at `offset` instead of reading. */
class TrapBus extends RecordingBus {
  constructor(
    inner: PciBus,
    private readonly offset: number,
    private readonly trap: () => Promise<number>,
  ) {
    super(inner, { keep: 1 });
  }
  override configRead(fn: Bdf, offset: number, size: AccessSize): Promise<number> {
    return offset === this.offset && size === 1 ? this.trap() : super.configRead(fn, offset, size);
  }
}

/** Our rng on machines whose first session's bus is wrapped by `wrap`; counts the sessions opened. */
function trappedTarget(wrap: (bus: PciBus) => { bus: PciBus; ended?: Promise<string> }): ConformanceTarget & { opened: number } {
  const target = {
    label: 'trapped',
    describe: 'our rng, the first session trapped',
    opened: 0,
    open: () => {
      const machine = new Machine();
      const fn = plugRng(machine);
      target.opened += 1;
      const wrapped = target.opened === 1 ? wrap(machine.bus) : { bus: machine.bus };
      return Promise.resolve({ ...wrapped, fn, close: () => machine.bus.close() });
    },
  };
  return target;
}

test('a transitional function: each check through its interfaces, not applicable and not checkable with reasons, driver statements left to the audit', async () => {
  const target = oursTarget('ours:rng,mode=transitional', { type: 'rng', mode: 'transitional', msix: true, ring: 'split' });
  const run = await runConformance(target, [deviceIdStatement, resetStatement, legacyOnlyStatement, uncheckableStatement, driverStatement]);
  assert.deepEqual(rows(run.results), [
    'pci-header/example-device-id modern pass',
    'status/example-reset-reads-zero modern pass',
    'status/example-reset-reads-zero legacy pass',
    'pci-legacy/example-legacy-only modern not-applicable',
    'status/example-uncheckable - not-checkable',
  ]);
  assert.equal(run.results[3]!.reason, 'the function is not legacy-only');
  assert.equal(run.results[4]!.reason, 'the device decides it internally');
  assert.deepEqual(run.counts, { pass: 3, fail: 0, 'not-applicable': 1, 'not-checkable': 1, hung: 0, died: 0 });
  assert.equal(run.failingMusts, 0);
});

test("a device type's statements apply only to that type", async () => {
  const blkOnly: Statement = { ...deviceIdStatement, id: 'blk/example', family: 'blk' };
  const entropyOnly: Statement = { ...deviceIdStatement, id: 'entropy/example', family: 'entropy' };
  const run = await runConformance(oursTarget('o', { type: 'rng', mode: 'modern', msix: true, ring: 'split' }), [blkOnly, entropyOnly]);
  assert.deepEqual(rows(run.results), ['blk/example - not-applicable', 'entropy/example modern pass']);
  assert.equal(run.results[0]!.reason, "a blk statement; the function's device type is 4 (entropy source)");
});

test('a modern-only function: a legacy check is not applicable; a legacy-only function runs default checks through legacy', async () => {
  const modern = await runConformance(oursTarget('m', { type: 'rng', mode: 'modern', msix: false, ring: 'split' }), [resetStatement]);
  assert.deepEqual(rows(modern.results), [
    'status/example-reset-reads-zero modern pass',
    'status/example-reset-reads-zero legacy not-applicable',
  ]);
  assert.equal(modern.results[1]!.reason, 'the function offers no legacy interface');
  const legacy = await runConformance(oursTarget('l', { type: 'rng', mode: 'legacy', msix: false, ring: 'split' }), [
    deviceIdStatement,
    legacyOnlyStatement,
  ]);
  assert.deepEqual(rows(legacy.results), ['pci-header/example-device-id legacy pass', 'pci-legacy/example-legacy-only legacy pass']);
});

test('a function the probe refuses (its capability list loops) is still run: checks that need the probe fail with its error', async () => {
  const looping = machineTarget(
    'looping',
    'capability 0x40 points to itself',
    (m) =>
      m.plug((host) => {
        const fn = new VirtioPciFunction(new RngDevice(), host);
        const first = fn.configRead(0x40, 4);
        return overrideConfig(fn, 0x40, ((first & ~0xff00) | (0x40 << 8)) >>> 0);
      }).bdf,
  );
  const run = await runConformance(looping, [deviceIdStatement, resetStatement]);
  assert.deepEqual(rows(run.results), [
    'pci-header/example-device-id modern pass',
    'status/example-reset-reads-zero modern fail',
    'status/example-reset-reads-zero legacy not-applicable',
  ]);
  assert.equal(run.results[1]!.error, 'ERR_PROBE_BAD_CAPABILITY');
});

test('a violation fails with what was found, the notes and the accesses the check made', async () => {
  const run = await runConformance(
    machineTarget('mutant', 'device ID out of range', (m) => deviceIdMutant.mutant(m)),
    [deviceIdStatement],
  );
  const r = run.results[0]!;
  assert.equal(r.verdict, 'fail');
  assert.equal(r.reason, 'device ID 0x2000');
  assert.equal(r.error, undefined);
  assert.deepEqual(r.notes, ['read device ID 0x2000']);
  assert.deepEqual(r.evidence, ['configRead 0x2/2 -> 0x2000']);
  assert.equal(run.failingMusts, 1);
});

test('evidence keeps only the last accesses of a long check', async () => {
  const chatty: Statement = {
    ...deviceIdStatement,
    check: {
      async run(ctx: CheckContext) {
        for (let i = 0; i < 200; i++) await ctx.bus.configRead(ctx.fn, (i % 64) * 4, 4);
        ctx.require(false, 'planted');
      },
    },
  };
  const run = await runConformance(oursTarget('o', { type: 'rng', mode: 'modern', msix: true, ring: 'split' }), [chatty]);
  const evidence = run.results[0]!.evidence!;
  assert.equal(evidence.length, EVIDENCE_ACCESSES);
  // The 200th read (i = 199) is of dword 199 % 64 = 7.
  assert.match(evidence.at(-1)!, /^configRead 0x1c\/4 -> /);
});

test('an error other than a violation fails the check with its code; a plain exception with its class', async () => {
  const run = await runConformance(oursTarget('o', { type: 'rng', mode: 'modern', msix: true, ring: 'split' }), [
    throws('pci-header/device-fault', new DeviceFaultError('ERR_DEVICE_TIMEOUT', 'no answer')),
    throws('pci-header/type-error', new TypeError('broken check')),
    deviceIdStatement,
  ]);
  assert.deepEqual(
    run.results.map((r) => [r.verdict, r.error, r.reason]),
    [
      ['fail', 'ERR_DEVICE_TIMEOUT', 'no answer'],
      ['fail', 'TypeError', 'broken check'],
      ['pass', undefined, undefined],
    ],
  );
});

test('a device that hangs on a register is reported hung, and the run goes on with a fresh device', async () => {
  const target = trappedTarget((bus) => ({ bus: new TrapBus(bus, 0x2f, () => new Promise<number>(() => undefined)) }));
  const started = Date.now();
  const run = await runConformance(target, [readsByte('pci-header/hangs', 0x2f), deviceIdStatement, readsByte('pci-header/after', 0x2f)], {
    budgetMs: 100,
  });
  assert.deepEqual(rows(run.results), [
    'pci-header/hangs modern hung',
    'pci-header/example-device-id modern pass',
    'pci-header/after modern pass',
  ]);
  assert.equal(run.results[0]!.reason, 'no answer within 100 ms');
  assert.equal(target.opened, 2);
  assert.equal(run.failingMusts, 1);
  assert.ok(Date.now() - started < 5000);
});

test('a session that dies under a check is reported died, and the run goes on with a fresh one', async () => {
  let die!: (why: string) => void;
  const ended = new Promise<string>((resolve) => (die = resolve));
  const target = trappedTarget((bus) => ({
    bus: new TrapBus(bus, 0x2e, () => {
      die('QEMU exited');
      return Promise.reject(new BusError('connection closed'));
    }),
    ended,
  }));
  const run = await runConformance(target, [readsByte('pci-header/dies', 0x2e), deviceIdStatement]);
  assert.deepEqual(rows(run.results), ['pci-header/dies modern died', 'pci-header/example-device-id modern pass']);
  assert.match(run.results[0]!.reason!, /^QEMU exited/);
  assert.equal(target.opened, 2);
});

test('a target that cannot give a fresh device: the remaining checks are reported died, with why', async () => {
  let opened = 0;
  const target: ConformanceTarget = {
    label: 'once',
    describe: 'opens once',
    open: () => {
      opened += 1;
      if (opened > 1) return Promise.reject(new BusError('QEMU did not start'));
      const machine = new Machine();
      const fn = plugRng(machine);
      return Promise.resolve({
        bus: new TrapBus(machine.bus, 0x2f, () => new Promise<number>(() => undefined)),
        fn,
        close: () => machine.bus.close(),
      });
    },
  };
  const run = await runConformance(target, [readsByte('pci-header/hangs', 0x2f), deviceIdStatement, resetStatement], { budgetMs: 50 });
  assert.deepEqual(
    run.results.map((r) => `${r.verdict}: ${r.reason}`),
    [
      'hung: no answer within 50 ms',
      'died: no fresh device: QEMU did not start',
      'died: no fresh device: QEMU did not start',
      'not-applicable: the function offers no legacy interface',
    ],
  );
  assert.equal(opened, 2);
});

test('the exit rule: a MUST or MUST NOT that failed, hung or died fails the run; a SHOULD does not', () => {
  const r = (level: CheckResult['level'], verdict: CheckResult['verdict']): CheckResult => ({
    statement: 'x/y',
    section: '2.1',
    level,
    family: 'status',
    text: '',
    via: 'modern',
    verdict,
    durationMs: 0,
  });
  assert.equal(failsRun(r('MUST', 'fail')), true);
  assert.equal(failsRun(r('MUST NOT', 'hung')), true);
  assert.equal(failsRun(r('MUST', 'died')), true);
  assert.equal(failsRun(r('SHOULD', 'fail')), false);
  assert.equal(failsRun(r('MUST', 'not-applicable')), false);
  assert.equal(failsRun(r('MUST', 'pass')), false);
});
