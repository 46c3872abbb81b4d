// Runs the compiled test files with node's test runner. Usage: node scripts/test.mjs [unit|peer|all] [filter]
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

const [suite = 'all', filter = ''] = process.argv.slice(2);
const roots = { unit: ['dist/test/unit'], peer: ['dist/test/peer'], all: ['dist/test/unit', 'dist/test/peer'] }[suite];
if (!roots) {
  console.error(`unknown suite ${suite}: use unit, peer or all`);
  process.exit(2);
}
function walk(dir) {
  let out = [];
  let names;
  try {
    names = readdirSync(dir);
  } catch {
    return out;
  }
  for (const name of names) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out = out.concat(walk(p));
    else if (name.endsWith('.test.js') && p.includes(filter)) out.push(p);
  }
  return out;
}
const files = roots.flatMap(walk).sort();
if (files.length === 0) {
  console.error('no test files found (did the build run?)');
  process.exit(1);
}
const r = spawnSync(process.execPath, ['--test', '--test-concurrency=2', ...files], { stdio: 'inherit' });
process.exit(r.status ?? 1);
