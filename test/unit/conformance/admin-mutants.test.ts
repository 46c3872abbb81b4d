/**
 * Family 'admin' through the mutant harness on its own (mutants.test.ts runs it with the whole
 * catalogue): every admin check passes on our owner device and fails on its mutant.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { adminStatements } from '../../../src/conformance/statements/admin.js';
import { checkMutants } from './mutant-harness.js';
import { adminMutants } from './mutants/admin.js';

test('admin: every check passes on our owner device and fails on its mutant', async () => {
  const { missing, problems } = await checkMutants(adminStatements, adminMutants);
  assert.deepEqual(missing, []);
  assert.equal(problems.length, 0, problems.map((p) => p.text).join('\n'));
});
