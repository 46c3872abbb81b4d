/**
 * No vacuous check: every executable statement of the catalogue has a mutant, passes on the
 * unmodified device and fails on the mutant (mutant-harness.ts); the harness itself catches a
 * planted vacuous check, a check that fails on the original, and a missing mutant.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CATALOGUE } from '../../../src/conformance/catalogue.js';
import type { Statement } from '../../../src/conformance/statement.js';
import { checkMutants, loadAllMutants, mutantsExportName } from './mutant-harness.js';
import { deviceIdMutant, deviceIdStatement, uncheckableStatement } from './fixtures/example-statements.js';

/**
 * Statements our unmodified devices break today, found by the engine's first pass and fixed on
 * another branch (issue 14, item 6): their checks run as `todo` below until the fix lands (then the
 * entry goes), and their mutants must still fail.
 */
const KNOWN_FINDINGS: ReadonlyMap<string, string> = new Map<string, string>([]);

/** The catalogue through the harness, once for the tests below. */
const catalogueFindings = loadAllMutants().then((mutants) => checkMutants(CATALOGUE, mutants));

test('every executable statement has a mutant', async () => {
  const { missing } = await catalogueFindings;
  assert.equal(missing.length, 0, `${missing.length} executable statements have no mutant: ${missing.join(', ')}`);
});

test('every check passes (or does not apply, for a reason) on our device and fails on its mutant', async () => {
  const { problems } = await catalogueFindings;
  const unexpected = problems.filter((p) => !(p.on === 'original' && KNOWN_FINDINGS.has(p.statement)));
  assert.equal(unexpected.length, 0, unexpected.map((p) => p.text).join('\n'));
});

for (const [id, finding] of KNOWN_FINDINGS) {
  test(`${id} passes on our device`, { todo: finding }, async () => {
    const { problems } = await catalogueFindings;
    const onOriginal = problems.find((p) => p.statement === id && p.on === 'original');
    assert.equal(onOriginal, undefined, onOriginal?.text);
  });
}

test('every mutant belongs to a statement of the catalogue', async () => {
  const ids = new Set(CATALOGUE.map((s) => s.id));
  const strays = Object.keys(await loadAllMutants()).filter((id) => !ids.has(id));
  assert.deepEqual(strays, []);
});

test('the harness catches a vacuous check, a check failing on the original, and a missing mutant', async () => {
  const vacuous: Statement = { ...deviceIdStatement, id: 'pci-header/example-vacuous', check: { run: () => Promise.resolve() } };
  const alwaysFails: Statement = {
    ...deviceIdStatement,
    id: 'pci-header/example-always-fails',
    check: { run: (ctx) => Promise.resolve(ctx.require(false, 'planted')) },
  };
  const unmutated: Statement = { ...deviceIdStatement, id: 'pci-header/example-unmutated' };
  const findings = await checkMutants([deviceIdStatement, vacuous, alwaysFails, unmutated, uncheckableStatement], {
    [deviceIdStatement.id]: deviceIdMutant,
    [vacuous.id]: deviceIdMutant,
    [alwaysFails.id]: deviceIdMutant,
  });
  assert.deepEqual(findings.missing, ['pci-header/example-unmutated']);
  assert.deepEqual(
    findings.problems.map((p) => p.text),
    [
      'pci-header/example-vacuous: does not fail on its mutant (the device ID is outside the virtio range): modern: pass',
      'pci-header/example-always-fails: on the unmodified device modern: fail (planted)',
    ],
  );
});

test("a family's mutants export is named after the family in camel case", () => {
  assert.equal(mutantsExportName('pci-common-cfg'), 'pciCommonCfgMutants');
  assert.equal(mutantsExportName('status'), 'statusMutants');
});
