// The README's "In the browser" snippet is the page's own wiring: the block after
// `<!-- browser: plug-devices ts -->` must be, line for line, the part of web/src/plug-devices.ts
// between its readme-browser markers (which `npm run check:browser` typechecks and the page runs),
// and under 30 lines, as the README promises.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
const MARKER = '<!-- browser: plug-devices ts -->';

/** The text between `start` and `end` in `text`; throws naming what is missing or doubled. */
function between(text: string, start: string, end: string, where: string): string {
  const at = text.indexOf(start);
  if (at < 0 || text.indexOf(start, at + 1) >= 0) throw new Error(`${where}: "${start}" must appear exactly once`);
  const to = text.indexOf(end, at + start.length);
  if (to < 0) throw new Error(`${where}: no "${end}" after "${start}"`);
  return text.slice(at + start.length, to);
}

test('README: the browser snippet is web/src/plug-devices.ts word for word, in under 30 lines', () => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const source = readFileSync(join(ROOT, 'web', 'src', 'plug-devices.ts'), 'utf8');
  const block = between(readme, `${MARKER}\n\`\`\`ts\n`, '\n```\n', 'README.md');
  const code = between(source, '// readme-browser: start\n', '// readme-browser: end', 'web/src/plug-devices.ts').replace(/\n$/, '');
  assert.equal(block, code);
  assert.ok(block.split('\n').length < 30, `${block.split('\n').length} lines`);
  assert.match(block, /new V86PciAdapter\(emulator\)/);
});
