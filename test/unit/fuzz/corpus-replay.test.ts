/**
 * Replays every fuzz corpus file (seeds, regressions, coverage corpus kept by campaigns) and every
 * seed generator through its target: a change that breaks a guarantee on any input ever kept fails
 * here, on every CI run, in seconds. Files named `open-*` are findings in someone else's code that
 * are not fixed yet: they run as TODO (reported, not counted green) until the fix lands, when the
 * file is renamed `regress-*`.
 */

import { test } from 'node:test';
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { TARGETS } from '../../../fuzz/targets/index.js';

const CORPUS = fileURLToPath(new URL('../../../../fuzz/corpus/', import.meta.url));

/** Open findings: corpus file -> what is wrong and whose code it is (see fuzz/RESULTS.md). */
const OPEN: Readonly<Record<string, string>> = {
  'hostile-device/open-console-write-never-settles.bin':
    'console driver: ConsoleDriverPort.write waits forever (60 s slices, no overall timeout) when the device never consumes its transmit buffer',
  'hostile-device/seed-console-used-id-never-submitted.bin': 'same finding as open-console-write-never-settles.bin',
  'hostile-device/open-console-rx-zero-length-livelock.bin':
    'console driver: a device returning every receive buffer with used len 0 makes the receive loop re-post and kick forever in microtasks, starving timers (the process hangs)',
};

for (const [name, load] of Object.entries(TARGETS)) {
  test(`fuzz corpus replays clean: ${name}`, async (t) => {
    const target = await load();
    const dir = join(CORPUS, name);
    const files = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.bin')).sort() : [];
    // A target without corpus files would replay nothing: every target keeps at least its seeds.
    if (files.length === 0) throw new Error(`no corpus in ${dir}: run \`npm run fuzz -- --target ${name} --write-seeds\``);
    for (const f of files) {
      const key = `${name}/${f}`;
      const data = new Uint8Array(readFileSync(join(dir, f)));
      await t.test(f, OPEN[key] === undefined ? {} : { todo: OPEN[key] }, async () => {
        await target.run(data);
      });
    }
    for (const seed of target.seeds()) {
      const key = `${name}/seed-${seed.name}.bin`;
      await t.test(`seed generator: ${seed.name}`, OPEN[key] === undefined ? {} : { todo: OPEN[key] }, async () => {
        await target.run(seed.data);
      });
    }
  });
}
