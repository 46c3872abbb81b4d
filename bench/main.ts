/**
 * `npm run bench`: runs every bench/*.bench.js module in one process, so each figure is measured
 * beside its reference (a peer or a plain copy) in the same run. Usage: npm run bench [-- NAME...]
 * A bench that needs a peer (QEMU) checks for it before any bench runs, as the peer tests do: a
 * missing peer is one line saying how to get it, and exit status 1.
 */
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { VirtioError } from '../src/errors.js';

export interface BenchModule {
  /** Throws a VirtioError saying how to get the bench's peer when it is missing. */
  checkPeer?(): void;
  /** Runs the benchmark and prints its table; resolves when done. */
  run(): Promise<void>;
}

const here = dirname(fileURLToPath(import.meta.url));
const wanted = process.argv.slice(2);
const files = readdirSync(here)
  .filter((f) => f.endsWith('.bench.js'))
  .filter((f) => wanted.length === 0 || wanted.some((w) => f.includes(w)))
  .sort();
const benches = await Promise.all(
  files.map(async (file) => ({
    name: file.replace('.bench.js', ''),
    mod: (await import(pathToFileURL(join(here, file)).href)) as BenchModule,
  })),
);
let missing = 0;
for (const { name, mod } of benches) {
  try {
    mod.checkPeer?.();
  } catch (err) {
    if (!(err instanceof VirtioError)) throw err;
    console.error(`bench ${name}: ${err.message} (${err.code})`);
    missing++;
  }
}
if (missing > 0) process.exit(1);
for (const { name, mod } of benches) {
  console.log(`\n## ${name}`);
  await mod.run();
}
