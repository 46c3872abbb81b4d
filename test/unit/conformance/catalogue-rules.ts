/**
 * The catalogue's house rules, as a function the tests apply to the catalogue and to planted bad
 * statements: stable well-formed IDs, unique, prefixed by their family; a device-side statement has
 * a check or the reason it has none (never both); a driver-side statement has no check; sections
 * are spec section numbers; the paraphrase is one line.
 */

import { isFamily } from '../../../src/conformance/catalogue.js';
import type { Statement } from '../../../src/conformance/statement.js';

const ID = /^[a-z][a-z0-9-]*\/[a-z0-9]+(-[a-z0-9]+)*$/;
const SECTION = /^[1-9]\d*(\.[1-9]\d*)*$/;
const LEVELS = new Set(['MUST', 'MUST NOT', 'SHOULD', 'SHOULD NOT']);

/** Every rule a statement of `statements` breaks, as "<id>: <rule>". */
export function catalogueProblems(statements: readonly Statement[]): string[] {
  const problems: string[] = [];
  const seen = new Set<string>();
  for (const s of statements) {
    const say = (rule: string): void => void problems.push(`${s.id}: ${rule}`);
    if (seen.has(s.id)) say('ID used twice');
    seen.add(s.id);
    if (!ID.test(s.id)) say('ID is not <family>/<slug> in lower case with dashes');
    if (!isFamily(s.family)) say(`unknown family ${String(s.family)}`);
    if (s.id.split('/')[0] !== s.family) say(`ID prefix is not its family ${s.family}`);
    if (!SECTION.test(s.section)) say(`section ${JSON.stringify(s.section)} is not a spec section number like 4.1.4.3`);
    if (!LEVELS.has(s.level)) say(`level ${s.level}`);
    if (s.text.trim() === '' || s.text.includes('\n')) say('paraphrase is empty or more than one line');
    const hasCheck = s.check !== undefined;
    const hasReason = s.uncheckable !== undefined && s.uncheckable.trim() !== '';
    if (s.side === 'device' && hasCheck === hasReason) say('a device-side statement needs a check or the reason it has none, not both');
    if (s.side === 'driver' && hasCheck) say('a driver-side statement has no check (the audit records it)');
    if (s.side !== 'device' && s.side !== 'driver') say(`side ${String(s.side)}`);
  }
  return problems;
}
