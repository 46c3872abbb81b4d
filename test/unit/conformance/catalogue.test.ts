/** The catalogue keeps its house rules (catalogue-rules.ts), which catch each planted breach. */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CATALOGUE, FAMILIES } from '../../../src/conformance/catalogue.js';
import type { Statement } from '../../../src/conformance/statement.js';
import { catalogueProblems } from './catalogue-rules.js';
import { deviceIdStatement, driverStatement, uncheckableStatement } from './fixtures/example-statements.js';

test('the catalogue keeps every rule', () => {
  assert.deepEqual(catalogueProblems(CATALOGUE), []);
});

test('every family is listed once, and every statement belongs to one of them', () => {
  assert.equal(new Set(FAMILIES).size, FAMILIES.length);
  for (const s of CATALOGUE) assert.ok(FAMILIES.includes(s.family), s.id);
});

test('the rules pass good statements and catch each planted breach', () => {
  assert.deepEqual(catalogueProblems([deviceIdStatement, uncheckableStatement, driverStatement]), []);
  const planted: Statement[] = [
    deviceIdStatement,
    { ...deviceIdStatement }, // the same ID again
    { ...uncheckableStatement, id: 'status/Bad_Slug' },
    { ...uncheckableStatement, id: 'features/in-status', family: 'status' },
    { ...uncheckableStatement, id: 'status/section', section: 'section 2.1' },
    { ...uncheckableStatement, id: 'status/both', check: deviceIdStatement.check! },
    { ...uncheckableStatement, id: 'status/neither', uncheckable: undefined },
    { ...driverStatement, id: 'status/driver-check', check: deviceIdStatement.check! },
    { ...uncheckableStatement, id: 'status/two-lines', text: 'one\ntwo' },
  ];
  assert.deepEqual(catalogueProblems(planted), [
    'pci-header/example-device-id: ID used twice',
    'status/Bad_Slug: ID is not <family>/<slug> in lower case with dashes',
    'features/in-status: ID prefix is not its family status',
    'status/section: section "section 2.1" is not a spec section number like 4.1.4.3',
    'status/both: a device-side statement needs a check or the reason it has none, not both',
    'status/neither: a device-side statement needs a check or the reason it has none, not both',
    'status/driver-check: a driver-side statement has no check (the audit records it)',
    'status/two-lines: paraphrase is empty or more than one line',
  ]);
});
