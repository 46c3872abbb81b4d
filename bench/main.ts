/**
 * `npm run bench`: runs every bench/*.bench.js module in one process, so each figure is measured
 * beside its reference (a peer or a plain copy) in the same run. Usage: npm run bench [-- NAME...]
 */
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export interface BenchModule {
  /** Runs the benchmark and prints its table; resolves when done. */
  run(): Promise<void>;
}

const here = dirname(fileURLToPath(import.meta.url));
const wanted = process.argv.slice(2);
const files = readdirSync(here)
  .filter((f) => f.endsWith('.bench.js'))
  .filter((f) => wanted.length === 0 || wanted.some((w) => f.includes(w)))
  .sort();
for (const file of files) {
  const mod = (await import(pathToFileURL(join(here, file)).href)) as BenchModule;
  console.log(`\n## ${file.replace('.bench.js', '')}`);
  await mod.run();
}
