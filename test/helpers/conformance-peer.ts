/**
 * What the peer tests hold a peer's conformance run to: every check passes or does not apply,
 * except the peer's listed deviations, each of which must fail wherever it applies (a violation, or
 * a fault the device's answer caused), so that a peer that fixes one shows up.
 */

import type { CheckResult } from '../../src/conformance/result.js';

export interface PeerJudgement {
  /** Results the test does not accept, as "<id> via <interface>: what happened". */
  readonly unexpected: readonly string[];
  readonly passed: number;
  /** "<id> via <interface> (why)". */
  readonly notApplicable: readonly string[];
}

/** Judges `results`; `deviation` names the listed deviation a result falls under, if any. */
export function judgePeerResults(results: readonly CheckResult[], deviation: (r: CheckResult) => string | undefined): PeerJudgement {
  const unexpected: string[] = [];
  const notApplicable: string[] = [];
  let passed = 0;
  for (const r of results) {
    if (r.verdict === 'not-checkable') continue;
    const where = `${r.statement} via ${r.via ?? '-'}`;
    const listed = deviation(r);
    if (r.verdict === 'pass') {
      passed++;
      if (listed !== undefined) unexpected.push(`${where}: passes; the listed deviation (${listed}) is gone`);
    } else if (r.verdict === 'not-applicable') notApplicable.push(`${where} (${r.reason ?? ''})`);
    else if (r.verdict !== 'fail' || listed === undefined)
      unexpected.push(`${where}: ${r.verdict}${r.error === undefined ? '' : ` ${r.error}`}: ${r.reason ?? ''}`);
  }
  return { unexpected, passed, notApplicable };
}
