/**
 * The conformance engine: runs every applicable device-side statement of a catalogue against a
 * target, one check at a time, through each interface the check applies to. Each check gets a
 * fresh context over a bus that keeps its last accesses as evidence and a time budget; the device
 * is reset after each check, and replaced (a fresh session from the target) when a check hung, the
 * session died or the device did not reset. A failing check never stops the run.
 */

import { assignBars, type PciBar } from '../bus/bars.js';
import { walkCapabilities } from '../bus/capabilities.js';
import { readConfigSpace, type ConfigSpaceSnapshot } from '../bus/config-space-reader.js';
import { ConformanceViolation, ProbeError, VirtioError } from '../errors.js';
import {
  deviceTypeName,
  VIRTIO_ID_BLOCK,
  VIRTIO_ID_CONSOLE,
  VIRTIO_ID_NET,
  VIRTIO_ID_RNG,
  VIRTIO_PCI_TRANSITIONAL_ID_MAX,
  VIRTIO_PCI_TRANSITIONAL_ID_MIN,
  VIRTIO_PCI_VENDOR_ID,
} from '../spec/ids.js';
import { PCI_CAP_ID_VNDR } from '../spec/pci.js';
import { VIRTIO_PCI_CAP_COMMON_CFG } from '../spec/virtio-pci.js';
import type { RecordedAccess } from '../testing/recording-bus.js';
import { RecordingBus } from '../testing/recording-bus.js';
import { decideTransport, readVirtioCap, virtioDeviceType, type ProbeResult } from '../transport/pci/probe.js';
import { FunctionCheckContext } from './context.js';
import { countVerdicts, failsRun, type CheckResult, type EvidenceLine, type TargetResults, type Verdict } from './result.js';
import type { Family, Interface, Statement } from './statement.js';
import type { ConformanceTarget, TargetSession } from './target.js';

/** Accesses kept as a failing check's evidence. */
export const EVIDENCE_ACCESSES = 64;
/** Default time any one wait of a check may take (ctx.timeoutMs). */
export const DEFAULT_CHECK_TIMEOUT_MS = 2000;
/** Default time a whole check (applies, run) may take before it is reported as hung. */
export const DEFAULT_CHECK_BUDGET_MS = 15000;

export interface RunOptions {
  /** Only statements of these families (default: all). */
  readonly families?: readonly Family[];
  /** ctx.timeoutMs of every check. */
  readonly timeoutMs?: number;
  /** The time budget of one check, past which it is hung. */
  readonly budgetMs?: number;
  /** Called after each result, with how many of the planned results are done. */
  readonly onProgress?: (done: number, total: number, result: CheckResult) => void;
}

/** What the engine learns of the function once, on the first session. */
export interface FunctionFacts {
  readonly deviceType: number;
  /** The interfaces the function offers, modern first. */
  readonly interfaces: readonly Interface[];
  readonly transitional: boolean;
}

/**
 * The device type and interfaces of `fn`: both of the probe's decisions, from one read of its
 * configuration space. A function the probe refuses (a broken capability list, an ID out of range:
 * what checks are there to report) is still run: its facts then come from the IDs, the capability
 * list as far as it goes, and BAR0.
 */
export async function functionFacts(session: TargetSession): Promise<FunctionFacts> {
  const bars = await assignBars(session.bus, session.fn);
  const cfg = await readConfigSpace(session.bus, session.fn);
  let first: ProbeResult;
  try {
    first = decideTransport(cfg, bars);
  } catch (err) {
    if (!(err instanceof ProbeError)) throw err;
    return factsWithoutProbe(cfg, bars);
  }
  const interfaces: Interface[] = [first.kind];
  if (first.kind === 'modern') {
    try {
      decideTransport(cfg, bars, { forceLegacy: true });
      interfaces.push('legacy');
    } catch {
      // Modern only.
    }
  }
  return { deviceType: first.deviceType, interfaces, transitional: interfaces.length === 2 };
}

/** Facts of a function the probe refused, read the way the probe would have (spec 4.1.2: IDs; 4.1.4: capabilities; 4.1.4.10: BAR0). */
function factsWithoutProbe(cfg: ConfigSpaceSnapshot, bars: readonly PciBar[]): FunctionFacts {
  const virtio = cfg.vendorId === VIRTIO_PCI_VENDOR_ID;
  // 0 (reserved) where the IDs name no device type: device-type checks then do not apply.
  const deviceType = (virtio ? virtioDeviceType(cfg.deviceId, cfg.subsystemId) : undefined) ?? 0;
  const hasCommonCfg = walkCapabilities(cfg).caps.some(
    (c) => c.id === PCI_CAP_ID_VNDR && readVirtioCap(cfg, c.offset).cfgType === VIRTIO_PCI_CAP_COMMON_CFG,
  );
  const transitionalId = cfg.deviceId >= VIRTIO_PCI_TRANSITIONAL_ID_MIN && cfg.deviceId <= VIRTIO_PCI_TRANSITIONAL_ID_MAX;
  const interfaces: Interface[] = [];
  if (hasCommonCfg || !transitionalId) interfaces.push('modern');
  if (transitionalId && bars.some((b) => b.index === 0 && b.kind === 'io')) interfaces.push('legacy');
  if (interfaces.length === 0) interfaces.push('modern');
  return { deviceType, interfaces, transitional: interfaces.length === 2 };
}

/** One access as evidence text. */
export function formatAccess(a: RecordedAccess): EvidenceLine {
  const width = a.size * 2;
  const arrow = a.op.endsWith('Read') ? '->' : '<-';
  return `${a.op} 0x${a.addr.toString(16)}/${a.size} ${arrow} 0x${(a.value >>> 0).toString(16).padStart(width, '0')}`;
}

/** One planned result: a statement through one interface, or why it is not run. */
interface Planned {
  readonly statement: Statement;
  readonly via: Interface | undefined;
  /** Set when the statement is reported without running (not checkable, interface missing). */
  readonly skip?: { readonly verdict: Verdict; readonly reason: string };
}

/** The device type each device-type family is about (spec 5); the other families apply to every type. */
const FAMILY_DEVICE_TYPE: Partial<Readonly<Record<Family, number>>> = {
  net: VIRTIO_ID_NET,
  blk: VIRTIO_ID_BLOCK,
  console: VIRTIO_ID_CONSOLE,
  entropy: VIRTIO_ID_RNG,
};

function plan(statements: readonly Statement[], facts: FunctionFacts): Planned[] {
  const out: Planned[] = [];
  for (const statement of statements) {
    if (statement.side !== 'device') continue;
    const type = FAMILY_DEVICE_TYPE[statement.family];
    if (type !== undefined && type !== facts.deviceType) {
      const reason = `a ${statement.family} statement; the function's device type is ${facts.deviceType} (${deviceTypeName(facts.deviceType)})`;
      out.push({ statement, via: undefined, skip: { verdict: 'not-applicable', reason } });
      continue;
    }
    const check = statement.check;
    if (check === undefined) {
      out.push({ statement, via: undefined, skip: { verdict: 'not-checkable', reason: statement.uncheckable ?? 'no check' } });
      continue;
    }
    const vias = check.via ?? [facts.interfaces[0]!];
    for (const via of vias) {
      out.push(
        facts.interfaces.includes(via)
          ? { statement, via }
          : { statement, via, skip: { verdict: 'not-applicable', reason: `the function offers no ${via} interface` } },
      );
    }
  }
  return out;
}

/** A check's own outcome, before the engine attaches what it knows. */
interface Outcome {
  readonly verdict: Verdict;
  readonly reason?: string;
  readonly error?: string;
}

const HUNG = Symbol('hung');
const DIED = Symbol('died');

function errorName(err: unknown): string {
  if (err instanceof VirtioError) return err.code;
  return err instanceof Error ? err.name : typeof err;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Resolves `value` after `ms`, and a function that cancels the timer. */
function timer<T>(ms: number, value: T): { promise: Promise<T>; cancel(): void } {
  let handle: ReturnType<typeof setTimeout> | undefined;
  const promise = new Promise<T>((resolve) => (handle = setTimeout(() => resolve(value), ms)));
  return { promise, cancel: () => clearTimeout(handle) };
}

/** A session and whether it has ended on its own. */
class LiveSession {
  ended: string | undefined;
  readonly endedSignal: Promise<typeof DIED>;

  constructor(readonly session: TargetSession) {
    this.endedSignal = new Promise((resolve) => {
      void session.ended?.then((why) => {
        this.ended = why;
        resolve(DIED);
      });
    });
  }
}

/** Runs the catalogue's device-side statements (`statements`) against `target`. */
export async function runConformance(
  target: ConformanceTarget,
  statements: readonly Statement[],
  options: RunOptions = {},
): Promise<TargetResults> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_CHECK_TIMEOUT_MS;
  const budgetMs = options.budgetMs ?? DEFAULT_CHECK_BUDGET_MS;
  const families = options.families;
  const chosen = families === undefined ? statements : statements.filter((s) => families.includes(s.family));

  let live: LiveSession | undefined = new LiveSession(await target.open());
  const results: CheckResult[] = [];
  try {
    const facts = await functionFacts(live.session);
    const planned = plan(chosen, facts);
    let unavailable: string | undefined;
    for (const p of planned) {
      let result: CheckResult;
      if (p.skip !== undefined) {
        result = resultOf(p, { verdict: p.skip.verdict, reason: p.skip.reason }, 0);
      } else {
        if (live === undefined && unavailable === undefined) {
          try {
            live = new LiveSession(await target.open());
          } catch (err) {
            unavailable = errorText(err);
          }
        }
        if (live === undefined) {
          result = resultOf(p, { verdict: 'died', reason: `no fresh device: ${unavailable ?? 'the target did not open'}` }, 0);
        } else {
          const ran = await runOne(live, facts, p, timeoutMs, budgetMs);
          result = ran.result;
          if (ran.replace) {
            await live.session.close();
            live = undefined;
          }
        }
      }
      results.push(result);
      options.onProgress?.(results.length, planned.length, result);
    }
  } finally {
    await live?.session.close();
  }
  return {
    label: target.label,
    describe: target.describe,
    results,
    counts: countVerdicts(results),
    failingMusts: results.filter(failsRun).length,
  };
}

function resultOf(
  p: Planned,
  outcome: Outcome,
  durationMs: number,
  extra: { evidence?: readonly EvidenceLine[]; notes?: readonly string[] } = {},
): CheckResult {
  const s = p.statement;
  return {
    statement: s.id,
    section: s.section,
    level: s.level,
    family: s.family,
    text: s.text,
    via: p.via,
    verdict: outcome.verdict,
    ...(outcome.reason === undefined ? {} : { reason: outcome.reason }),
    ...(outcome.error === undefined ? {} : { error: outcome.error }),
    ...(extra.evidence === undefined || extra.evidence.length === 0 ? {} : { evidence: extra.evidence }),
    ...(extra.notes === undefined || extra.notes.length === 0 ? {} : { notes: extra.notes }),
    durationMs,
  };
}

/**
 * Runs one check through `p.via` within the budget; then closes what it opened and resets the
 * device. `replace` says the session must not be used again (hung, died, or no reset).
 */
async function runOne(
  live: LiveSession,
  facts: FunctionFacts,
  p: Planned,
  timeoutMs: number,
  budgetMs: number,
): Promise<{ result: CheckResult; replace: boolean }> {
  const { session } = live;
  const check = p.statement.check!;
  const bus = new RecordingBus(session.bus, { keep: EVIDENCE_ACCESSES });
  const ctx = new FunctionCheckContext({
    bus,
    fn: session.fn,
    deviceType: facts.deviceType,
    via: p.via!,
    transitional: facts.transitional,
    timeoutMs,
    statement: p.statement,
  });
  const started = performance.now();
  const work: Promise<Outcome> = (async (): Promise<Outcome> => {
    const reason = await check.applies?.(ctx);
    if (reason !== undefined) return { verdict: 'not-applicable', reason };
    await check.run(ctx);
    return { verdict: 'pass' };
  })().catch((err: unknown): Outcome => {
    if (live.ended !== undefined) return { verdict: 'died', reason: `${live.ended} (the check saw: ${errorText(err)})` };
    if (err instanceof ConformanceViolation) return { verdict: 'fail', reason: err.message };
    return { verdict: 'fail', reason: errorText(err), error: errorName(err) };
  });
  const budget = timer(budgetMs, HUNG);
  const raced = await Promise.race([work, budget.promise, live.endedSignal]);
  budget.cancel();
  const durationMs = Math.round(performance.now() - started);
  let outcome: Outcome;
  if (raced === HUNG) outcome = { verdict: 'hung', reason: `no answer within ${budgetMs} ms` };
  else if (raced === DIED) outcome = { verdict: 'died', reason: live.ended ?? 'the session ended' };
  else outcome = raced;
  const evidence = outcome.verdict === 'pass' || outcome.verdict === 'not-applicable' ? undefined : bus.log.map(formatAccess);
  const result = resultOf(p, outcome, durationMs, { ...(evidence === undefined ? {} : { evidence }), notes: [...ctx.notes] });
  if (outcome.verdict === 'hung' || outcome.verdict === 'died') return { result, replace: true };
  return { result, replace: !(await closeAndReset(ctx, budgetMs)) };
}

/** Closes what the check opened and resets the device through the check's interface; false when that did not finish. */
async function closeAndReset(ctx: FunctionCheckContext, budgetMs: number): Promise<boolean> {
  const cleanUp = (async (): Promise<boolean> => {
    await ctx.close();
    const transport = await ctx.transport();
    await transport.reset();
    return true;
  })().catch(() => false);
  const budget = timer(budgetMs, false);
  const done = await Promise.race([cleanUp, budget.promise]);
  budget.cancel();
  return done;
}
