/**
 * Replays every fuzz corpus file (seeds, regressions, coverage corpus kept by campaigns) and every
 * seed generator through its target: a change that breaks a guarantee on any input ever kept fails
 * here, on every CI run, in seconds. An input that still hits a finding listed in
 * fuzz/known-open.ts (reported to its owner, not fixed yet) is reported as TODO, not as a pass.
 * Files named `open-*` (inputs of open findings) replay in a worker thread, so that background
 * rejections of a misbehaving driver stay there.
 */

import { test, type TestContext } from 'node:test';
import { Worker } from 'node:worker_threads';
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { knownOpen } from '../../../fuzz/known-open.js';
import type { ReplayOutcome, ReplayRequest } from '../../../fuzz/engine/replay-worker.js';
import { TARGETS } from '../../../fuzz/targets/index.js';

const CORPUS = fileURLToPath(new URL('../../../../fuzz/corpus/', import.meta.url));

async function replay(t: TestContext, target: string, run: () => void | Promise<void>): Promise<void> {
  try {
    await run();
  } catch (err) {
    const known = knownOpen(target, err instanceof Error ? err.message : String(err));
    if (known !== undefined) t.todo(`known open finding: ${known.summary}`);
    throw err;
  }
}

/** Run one input in a worker; throws its failure message. */
async function isolated(target: string, data: Uint8Array): Promise<void> {
  const request: ReplayRequest = { target, data };
  const worker = new Worker(new URL('../../../fuzz/engine/replay-worker.js', import.meta.url), { workerData: request });
  const outcome = await new Promise<ReplayOutcome>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  await worker.terminate();
  if (!outcome.ok) throw new Error(outcome.message);
}

for (const [name, load] of Object.entries(TARGETS)) {
  test(`fuzz corpus replays clean: ${name}`, async (t) => {
    const target = await load();
    const dir = join(CORPUS, name);
    const files = existsSync(dir)
      ? readdirSync(dir)
          .filter((f) => f.endsWith('.bin'))
          .sort()
      : [];
    // A target without corpus files would replay nothing: every target keeps at least its seeds.
    if (files.length === 0) throw new Error(`no corpus in ${dir}: run \`npm run fuzz -- --target ${name} --write-seeds\``);
    for (const f of files) {
      const data = new Uint8Array(readFileSync(join(dir, f)));
      await t.test(f, (st) => replay(st, name, () => (f.startsWith('open-') ? isolated(name, data) : target.run(data))));
    }
    for (const seed of target.seeds()) await t.test(`seed generator: ${seed.name}`, (st) => replay(st, name, () => target.run(seed.data)));
  });
}
