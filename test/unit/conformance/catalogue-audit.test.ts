/**
 * The catalogue and the driver audit are one list of driver statements: every audited requirement
 * is a driver-side statement of the catalogue under the audit's ID, with the audit's section, level
 * and text; no statement ID is used twice; every other driver-side statement says why the audit
 * cannot see it; and no catalogue entry restates an audited one under another ID.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { auditedStatement } from '../../../src/conformance/audited-statement.js';
import { CATALOGUE, FAMILIES } from '../../../src/conformance/catalogue.js';
import type { Statement } from '../../../src/conformance/statement.js';
import { DRIVER_REQUIREMENTS, type DriverRequirement } from '../../../src/spec/driver-requirements.js';

const AUDITED: readonly DriverRequirement[] = Object.values(DRIVER_REQUIREMENTS);
/** A statement ID quoted in prose (a reason that points at the statement the audit records instead). */
const QUOTED_ID = new RegExp(`\\b(?:${FAMILIES.join('|')})/[a-z0-9]+(?:-[a-z0-9]+)*`, 'g');

/** The slug of an ID without a leading `driver-` (the catalogue's own driver entries carry it). */
function bareSlug(id: string): string {
  return id.slice(id.indexOf('/') + 1).replace(/^driver-/, '');
}

/** Every way `statements` and `requirements` fail to be one list, as "<id>: <rule>". */
function auditProblems(statements: readonly Statement[], requirements: readonly DriverRequirement[]): string[] {
  const problems: string[] = [];
  const byId = new Map<string, Statement[]>();
  for (const s of statements) byId.set(s.id, [...(byId.get(s.id) ?? []), s]);
  for (const [id, same] of byId) if (same.length > 1) problems.push(`${id}: ${same.length} statements share the ID`);
  const audited = new Set(requirements.map((r) => r.id));
  for (const r of requirements) {
    const s = byId.get(r.id)?.[0];
    if (s === undefined) problems.push(`${r.id}: audited but not in the catalogue`);
    else if (s.side !== 'driver' || s.audited !== true || s.check !== undefined || s.uncheckable !== undefined)
      problems.push(`${r.id}: not an audited driver-side statement`);
    else if (s.section !== r.section || s.level !== r.level || s.text !== r.text)
      problems.push(`${r.id}: ${s.section} ${s.level} "${s.text}" differs from the audit's ${r.section} ${r.level} "${r.text}"`);
  }
  const drivers = statements.filter((s) => s.side === 'driver');
  for (const s of drivers) {
    if (s.audited === true && !audited.has(s.id)) problems.push(`${s.id}: marked audited but no DRIVER_REQUIREMENTS entry has its ID`);
    if (s.audited !== true && (s.uncheckable === undefined || s.uncheckable.trim() === ''))
      problems.push(`${s.id}: a driver-side statement the audit does not record needs the reason (uncheckable)`);
  }
  for (const s of statements) {
    if (s.side === 'device' && s.audited !== undefined) problems.push(`${s.id}: a device-side statement cannot be audited`);
    for (const quoted of s.uncheckable?.match(QUOTED_ID) ?? [])
      if (!byId.has(quoted)) problems.push(`${s.id}: its reason names ${quoted}, which is not in the catalogue`);
  }
  // The same statement under two IDs: two driver entries of one section whose slugs differ only by
  // the catalogue's `driver-` prefix.
  const seen = new Map<string, string>();
  for (const s of drivers) {
    const key = `${s.family}|${s.section}|${bareSlug(s.id)}`;
    const other = seen.get(key);
    if (other !== undefined) problems.push(`${s.id}: restates ${other} (same section, same slug but for driver-)`);
    else seen.set(key, s.id);
  }
  return problems;
}

test('every audited requirement is one driver-side statement of the catalogue, under its ID, section, level and text', () => {
  assert.deepEqual(auditProblems(CATALOGUE, AUDITED), []);
  for (const r of AUDITED) {
    const s = CATALOGUE.find((c) => c.id === r.id);
    assert.ok(s !== undefined && s.id.startsWith(`${s.family}/`), r.id);
  }
});

test('auditedStatement takes everything but the family from the requirement', () => {
  const r = DRIVER_REQUIREMENTS.statusNoClear;
  assert.deepEqual(auditedStatement('status', r), {
    id: r.id,
    section: r.section,
    level: r.level,
    side: 'driver',
    family: 'status',
    text: r.text,
    audited: true,
  });
});

test('the rules catch each planted breach', () => {
  const r = DRIVER_REQUIREMENTS.statusNoClear;
  const good = auditedStatement('status', r);
  const unaudited: Statement = {
    id: 'status/driver-sets-steps',
    section: '2.1.1',
    level: 'MUST',
    side: 'driver',
    family: 'status',
    text: 'A step is marked when done.',
    uncheckable: 'its own state',
  };
  assert.deepEqual(auditProblems([good, unaudited], [r]), []);
  // The duplicate this file exists for: the catalogue's own entry next to the audited one.
  const duplicate: Statement = { ...unaudited, id: 'status/driver-no-clear', level: 'MUST NOT', text: 'Never clears a bit.' };
  assert.deepEqual(auditProblems([good, unaudited, duplicate], [r]), [
    'status/driver-no-clear: restates status/no-clear (same section, same slug but for driver-)',
  ]);
  assert.deepEqual(auditProblems([unaudited], [r]), ['status/no-clear: audited but not in the catalogue']);
  assert.deepEqual(auditProblems([good, good, unaudited], [r]), [
    'status/no-clear: 2 statements share the ID',
    'status/no-clear: restates status/no-clear (same section, same slug but for driver-)',
  ]);
  assert.deepEqual(auditProblems([{ ...good, level: 'MUST' }, unaudited], [r]), [
    `status/no-clear: 2.1.1 MUST "${r.text}" differs from the audit's 2.1.1 MUST NOT "${r.text}"`,
  ]);
  const restated: Statement = { ...unaudited, id: r.id, level: r.level, text: r.text };
  assert.deepEqual(auditProblems([restated, unaudited], [r]), ['status/no-clear: not an audited driver-side statement']);
  const silent: Statement = { ...good, id: unaudited.id, audited: undefined };
  assert.deepEqual(auditProblems([good, silent], [r]), [
    'status/driver-sets-steps: a driver-side statement the audit does not record needs the reason (uncheckable)',
  ]);
  assert.deepEqual(auditProblems([good, { ...unaudited, uncheckable: 'audited as status/never-clears' }], [r]), [
    'status/driver-sets-steps: its reason names status/never-clears, which is not in the catalogue',
  ]);
  assert.deepEqual(auditProblems([good, { ...unaudited, audited: true }], [r]), [
    'status/driver-sets-steps: marked audited but no DRIVER_REQUIREMENTS entry has its ID',
  ]);
});
