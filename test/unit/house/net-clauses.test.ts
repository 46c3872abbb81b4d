// Net clause numbers in src/ and docs/ follow virtio 1.4's numbering of 5.1 (as its LaTeX nests the
// sections: 5.1.6 is "Device and driver capabilities", device operation is 5.1.9), not an older
// spec's (where device operation was 5.1.6): every 5.1.x reference names a section 1.4 has.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));

/** The sections of 1.4's 5.1 that the code and docs may cite (counted from device-types/net/description.tex). */
// prettier-ignore
const NET_SECTIONS_1_4 = new Set([
  '5.1.1', '5.1.2', '5.1.3', '5.1.3.1', '5.1.3.2', '5.1.4', '5.1.4.1', '5.1.4.2', '5.1.4.3', '5.1.5', '5.1.6', '5.1.7',
  '5.1.8', '5.1.8.1', '5.1.9', '5.1.9.1', '5.1.9.2', '5.1.9.2.1', '5.1.9.2.2', '5.1.9.2.3', '5.1.9.3', '5.1.9.3.1',
  '5.1.9.3.2', '5.1.9.4', '5.1.9.4.1', '5.1.9.4.2', '5.1.9.4.3', '5.1.9.4.4', '5.1.9.4.5', '5.1.9.5', '5.1.9.5.1', '5.1.9.5.1.1', '5.1.9.5.1.2', '5.1.9.5.2', '5.1.9.5.2.1',
  '5.1.9.5.2.2', '5.1.9.5.2.3', '5.1.9.5.3', '5.1.9.5.3.1', '5.1.9.5.3.2', '5.1.9.5.4', '5.1.9.5.4.1', '5.1.9.5.4.2',
  '5.1.9.5.5', '5.1.9.5.6', '5.1.9.5.6.1', '5.1.9.5.6.2', '5.1.9.5.6.3', '5.1.9.5.6.4', '5.1.9.5.7', '5.1.9.5.8',
  '5.1.9.5.9', '5.1.9.5.10', '5.1.9.6', '5.1.9.7', '5.1.9.8',
]);

function* files(dir: string): Generator<string> {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    // docs/api is TypeDoc's output (ignored by git, rebuilt from docs/ by `npm run docs`).
    if (entry.isDirectory()) {
      if (path !== join(ROOT, 'docs', 'api')) yield* files(path);
    } else if (/\.(ts|md)$/.test(entry.name)) yield path;
  }
}

/** Every "5.1.x" clause reference in `text` (not a part of a longer number such as 4.1.5.1.3). */
export function netClauses(text: string): string[] {
  return [...text.matchAll(/(?<![\d.])5\.1\.\d+(?:\.\d+)*/g)].map((m) => m[0]);
}

test('every net clause number in src/ and docs/ is a section of virtio 1.4', () => {
  const wrong: string[] = [];
  let seen = 0;
  for (const dir of ['src', 'docs'])
    for (const path of files(join(ROOT, dir)))
      for (const clause of netClauses(readFileSync(path, 'utf8'))) {
        seen++;
        if (!NET_SECTIONS_1_4.has(clause)) wrong.push(`${path.slice(ROOT.length)}: ${clause}`);
      }
  assert.ok(seen > 20, `net clauses found: ${seen}`);
  assert.deepEqual(wrong, []);
});

test('an older numbering is caught: device operation at 5.1.6.x', () => {
  assert.deepEqual(
    netClauses('the control queue (5.1.6.5.1), 4.1.5.1.3 and 5.1.9.5.1').filter((c) => !NET_SECTIONS_1_4.has(c)),
    ['5.1.6.5.1'],
  );
});
