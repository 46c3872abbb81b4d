/**
 * What a conformance run produces: one result per (statement, interface), and the summary the CLI,
 * the reports and the README table are made from. Serialised as JSON with a versioned schema, so
 * field names here are stable.
 */

import type { Family, Interface, Level } from './statement.js';

/**
 * The verdict of one statement through one interface:
 * - pass: the check ran and the device conformed;
 * - fail: the device broke the statement (ConformanceViolation), or the check could not complete
 *   because the device misbehaved (an error other than a violation: `error` says which);
 * - not-applicable: the check does not apply to this function (`reason`);
 * - not-checkable: the statement cannot be checked from the driver side (`reason`);
 * - hung: the check ran past its time budget (the engine moved on with a fresh device);
 * - died: the session ended under the check (the emulator exited); the run went on with a fresh one.
 */
export type Verdict = 'pass' | 'fail' | 'not-applicable' | 'not-checkable' | 'hung' | 'died';

export const VERDICTS: readonly Verdict[] = ['pass', 'fail', 'not-applicable', 'not-checkable', 'hung', 'died'];

/** One access of the check's last ones, as text: "configWrite 0x04/2 = 0x0007". */
export type EvidenceLine = string;

export interface CheckResult {
  readonly statement: string;
  readonly section: string;
  readonly level: Level;
  readonly family: Family;
  /** The statement's paraphrase: what is required. */
  readonly text: string;
  /** The interface the check ran through; undefined for a statement that is not checkable. */
  readonly via: Interface | undefined;
  readonly verdict: Verdict;
  /** For not-applicable and not-checkable: why. For fail, hung and died: what was found. */
  readonly reason?: string;
  /** For a fail that was not a violation: the error's code (ERR_...), or its class name. */
  readonly error?: string;
  /** For fail, hung and died: the last accesses the check made, oldest first. */
  readonly evidence?: readonly EvidenceLine[];
  /** What the check noted (ctx.note), in order. */
  readonly notes?: readonly string[];
  readonly durationMs: number;
}

export type VerdictCounts = Readonly<Record<Verdict, number>>;

export interface TargetResults {
  readonly label: string;
  readonly describe: string;
  readonly results: readonly CheckResult[];
  readonly counts: VerdictCounts;
  /** Results that fail the run: a MUST or MUST NOT that failed, hung or died. */
  readonly failingMusts: number;
}

/** The verdicts that mean the device did not show conformance to the statement. */
export function isFailure(verdict: Verdict): boolean {
  return verdict === 'fail' || verdict === 'hung' || verdict === 'died';
}

/** Whether a result fails the run (the CLI's exit status 1): a MUST or MUST NOT not shown to hold. */
export function failsRun(result: CheckResult): boolean {
  return (result.level === 'MUST' || result.level === 'MUST NOT') && isFailure(result.verdict);
}

export function countVerdicts(results: readonly CheckResult[]): VerdictCounts {
  const counts = Object.fromEntries(VERDICTS.map((v) => [v, 0])) as Record<Verdict, number>;
  for (const r of results) counts[r.verdict] += 1;
  return counts;
}

/** "12 pass, 1 fail, 3 n/a, 2 not checkable" (hung and died only when there are any). */
export function summaryLine(counts: VerdictCounts): string {
  const parts = [
    `${counts.pass} pass`,
    `${counts.fail} fail`,
    `${counts['not-applicable']} n/a`,
    `${counts['not-checkable']} not checkable`,
  ];
  if (counts.hung > 0) parts.push(`${counts.hung} hung`);
  if (counts.died > 0) parts.push(`${counts.died} died`);
  return parts.join(', ');
}
