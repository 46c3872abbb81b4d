/**
 * `npm run fuzz -- --target NAME --time SECONDS`: coverage-guided fuzzing of one target (or
 * `--all`), `--ci` for every target for a bounded time, `--unguided` for plain mutation without
 * coverage, `--list` for the targets, `--uncovered FILE` for the blocks a campaign never ran. Each
 * campaign runs in a worker thread watched by this thread: a worker that stops making progress for
 * `--hang-ms` is ended and its input saved as a hang, and one that outgrows its heap limit is saved
 * as unbounded memory growth. Findings go to fuzz/findings/<target>/ (not committed) for triage; the
 * exit code is 1 if there were any not listed in fuzz/known-open.ts.
 */

import { mkdirSync, readdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';
import { inputHash, type CampaignOptions, type CampaignStats, type Finding } from './engine/fuzzer.js';
import { HEARTBEAT_INPUT, type WorkerInput, type WorkerMessage } from './engine/protocol.js';
import { TARGETS } from './targets/index.js';
import { knownOpen } from './known-open.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CORPUS_DIR = join(ROOT, 'fuzz', 'corpus');
const FINDINGS_DIR = join(ROOT, 'fuzz', 'findings');
/** Heap limit per campaign worker: a target that grows without bound dies here, as a finding. */
const WORKER_HEAP_MB = 768;
/** CI mode: seconds per target, keeping the whole run well under 5 minutes. */
const CI_SECONDS_PER_TARGET = 15;
/** Worker deaths (hangs, heap exhaustion) a campaign survives before it stops early. */
const MAX_RESTARTS = 50;
/** Coverage corpus files kept per target by --save-corpus. */
const SAVED_CORPUS_MAX = 200;

const USAGE = `usage: npm run fuzz -- (--target NAME... | --all | --ci | --list) [options]
  --time S              seconds per target (default 60)      --runs N        stop after N inputs
  --seed N              campaign seed                         --unguided      plain mutation, no coverage
  --save-corpus         keep new coverage inputs in fuzz/corpus/<target>/
  --write-seeds         write each target's seed inputs       --json FILE     summaries as JSON
  --uncovered FILE      list blocks the campaign never ran    --max-batch N, --input-timeout-ms N, --hang-ms N
`;

/** A mistake in how the command was called: reported as one line and exit code 2, never a stack trace. */
class FuzzUsageError extends Error {}

function parseOptions() {
  try {
    return parseArgs({
      options: {
        target: { type: 'string', multiple: true },
        all: { type: 'boolean', default: false },
        ci: { type: 'boolean', default: false },
        time: { type: 'string', default: '60' },
        runs: { type: 'string' },
        unguided: { type: 'boolean', default: false },
        seed: { type: 'string' },
        'max-batch': { type: 'string', default: '64' },
        'input-timeout-ms': { type: 'string', default: '2000' },
        'hang-ms': { type: 'string', default: '10000' },
        'save-corpus': { type: 'boolean', default: false },
        'write-seeds': { type: 'boolean', default: false },
        json: { type: 'string' },
        uncovered: { type: 'string' },
        list: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (err) {
    throw new FuzzUsageError(err instanceof Error ? err.message : String(err));
  }
}

let values: ReturnType<typeof parseOptions>['values'];

function numberOption(name: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isFinite(n) || n < 0) throw new FuzzUsageError(`--${name} needs a non-negative number, got ${text}`);
  return n;
}

interface Summary extends CampaignStats {
  /** Findings matching fuzz/known-open.ts: saved and printed, not counted in the exit code. */
  readonly knownOpen: number;
  readonly restarts: number;
  readonly findingFiles: string[];
  /** Every corpus entry the workers kept (including restarts), by content hash. */
  readonly corpus: ReadonlyMap<string, Uint8Array>;
}

function readCorpus(target: string): Uint8Array[] {
  const dir = join(CORPUS_DIR, target);
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith('.bin'))
    .sort()
    .map((f) => new Uint8Array(readFileSync(join(dir, f))));
}

function saveFinding(target: string, f: Finding): string {
  const dir = join(FINDINGS_DIR, target);
  mkdirSync(dir, { recursive: true });
  const base = join(dir, `${f.kind}-${inputHash(f.input)}`);
  writeFileSync(`${base}.bin`, f.input);
  writeFileSync(`${base}.txt`, `${f.signature}\n\n${f.stack}\n`);
  return `${base}.bin`;
}

function line(s: CampaignStats): string {
  const cov = s.guided ? ` blocks ${s.blocksCovered}/${s.blocksKnown} corpus ${s.corpusSize} batch ${s.batch}` : '';
  return `[${s.target}] ${s.execs} execs (${Math.round(s.execsPerSecond)}/s) in ${s.seconds.toFixed(0)} s${cov} findings ${s.findings}`;
}

/** Runs a campaign in workers, restarting after a hang until the time or runs are used up. */
async function campaign(options: CampaignOptions, hangMs: number): Promise<Summary> {
  const corpus = new Map<string, Uint8Array>();
  const findingFiles: string[] = [];
  const knownFiles: string[] = [];
  let execsBefore = 0;
  let secondsBefore = 0;
  let restarts = 0;
  let last: CampaignStats | undefined;
  for (;;) {
    const heartbeat = new SharedArrayBuffer(HEARTBEAT_INPUT + 65536);
    const counters = new Int32Array(heartbeat, 0, 2);
    const data: WorkerInput = {
      options: {
        ...options,
        seconds: Math.max(0, options.seconds - secondsBefore),
        runs: Math.max(0, options.runs - execsBefore),
        seed: options.seed + restarts,
        initialCorpus: restarts === 0 ? options.initialCorpus : [...corpus.values()],
      },
      heartbeat,
    };
    const worker = new Worker(new URL('./engine/worker.js', import.meta.url), {
      workerData: data,
      resourceLimits: { maxOldGenerationSizeMb: WORKER_HEAP_MB },
    });
    const started = performance.now();
    const outcome = await new Promise<{ stats?: CampaignStats; lost?: { kind: string; why: string } }>((resolve) => {
      let beat = 0;
      let beatAt = performance.now();
      const timer = setInterval(() => {
        const now = Atomics.load(counters, 0);
        if (now !== beat) {
          beat = now;
          beatAt = performance.now();
        } else if (performance.now() - beatAt > hangMs) {
          clearInterval(timer);
          void worker.terminate();
          resolve({ lost: { kind: 'hang', why: `no progress for ${hangMs} ms` } });
        }
      }, 250);
      worker.on('message', (m: WorkerMessage) => {
        if (m.type === 'corpus') corpus.set(inputHash(m.input), m.input);
        else if (m.type === 'finding') {
          const file = saveFinding(options.targetName, m.finding);
          const known = knownOpen(options.targetName, m.finding.message);
          if (known === undefined) findingFiles.push(file);
          else knownFiles.push(file);
          console.error(
            `[${options.targetName}] ${known === undefined ? 'FINDING' : 'KNOWN OPEN'} ${m.finding.kind}: ${m.finding.message.split('\n')[0]} -> ${file}`,
          );
        } else if (m.type === 'progress') {
          last = m.stats;
          console.error(line(m.stats));
        } else {
          clearInterval(timer);
          resolve({ stats: m.stats });
        }
      });
      worker.on('error', (err: Error & { code?: string }) => {
        clearInterval(timer);
        const oom = err.code === 'ERR_WORKER_OUT_OF_MEMORY';
        resolve({ lost: { kind: oom ? 'memory-growth' : 'worker-error', why: `${err.code ?? ''} ${err.message}` } });
      });
      worker.on('exit', () => {
        clearInterval(timer);
        resolve({ lost: { kind: 'worker-exit', why: 'worker exited before finishing' } });
      });
    });
    if (outcome.stats !== undefined) {
      const s = outcome.stats;
      const execs = execsBefore + s.execs;
      const seconds = secondsBefore + s.seconds;
      return {
        ...s,
        execs,
        seconds,
        execsPerSecond: execs / seconds,
        findings: findingFiles.length,
        knownOpen: knownFiles.length,
        restarts,
        findingFiles,
        corpus,
      };
    }
    // The worker is gone: the input it was running is the finding.
    const lost = outcome.lost!;
    const len = Atomics.load(counters, 1);
    const input = new Uint8Array(heartbeat, HEARTBEAT_INPUT, len).slice();
    const file = saveFinding(options.targetName, { kind: lost.kind, signature: lost.kind, message: lost.why, stack: lost.why, input });
    findingFiles.push(file);
    console.error(`[${options.targetName}] FINDING ${lost.kind}: ${lost.why} -> ${file}`);
    execsBefore += Atomics.load(counters, 0);
    secondsBefore += (performance.now() - started) / 1000;
    restarts++;
    // Keep going while workers make progress between deaths (each death is a saved finding); give
    // up when one dies before its first progress report twice, or after MAX_RESTARTS.
    if (last === undefined && restarts > 1)
      throw new Error(`[${options.targetName}] campaign keeps dying at start (${lost.kind}); see ${file}`);
    if (restarts > MAX_RESTARTS || execsBefore >= options.runs || secondsBefore >= options.seconds) {
      const seconds = secondsBefore;
      const stats = last ?? {
        target: options.targetName,
        guided: options.guided,
        execs: 0,
        seconds: 0,
        execsPerSecond: 0,
        corpusSize: 0,
        blocksCovered: 0,
        blocksKnown: 0,
        coverageTakes: 0,
        batch: 0,
        findings: 0,
      };
      return {
        ...stats,
        execs: execsBefore,
        seconds,
        execsPerSecond: execsBefore / seconds,
        findings: findingFiles.length,
        knownOpen: knownFiles.length,
        restarts,
        findingFiles,
        corpus,
      };
    }
    last = undefined;
  }
}

async function main(): Promise<number> {
  if (values.list) {
    for (const [name, load] of Object.entries(TARGETS)) console.log(`${name.padEnd(22)} ${(await load()).description}`);
    return 0;
  }
  const names = values.all || values.ci ? Object.keys(TARGETS) : (values.target ?? []).flatMap((t) => t.split(','));
  if (names.length === 0) throw new FuzzUsageError('name a target with --target NAME (see --list), or use --all / --ci');
  for (const n of names) if (TARGETS[n] === undefined) throw new FuzzUsageError(`no fuzz target ${n} (see --list)`);

  if (values['write-seeds']) {
    for (const n of names) {
      const dir = join(CORPUS_DIR, n);
      mkdirSync(dir, { recursive: true });
      const seeds = (await TARGETS[n]!()).seeds();
      for (const s of seeds) writeFileSync(join(dir, `seed-${s.name}.bin`), s.data);
      console.log(`${n}: wrote ${seeds.length} seeds to ${dir}`);
    }
    return 0;
  }

  const seconds = values.ci ? CI_SECONDS_PER_TARGET : numberOption('time', values.time, 60);
  const summaries: Summary[] = [];
  for (const n of names) {
    const options: CampaignOptions = {
      targetName: n,
      seconds,
      runs: numberOption('runs', values.runs, Number.POSITIVE_INFINITY),
      seed: numberOption('seed', values.seed, Date.now() % 0x7fffffff),
      guided: !values.unguided,
      maxBatch: numberOption('max-batch', values['max-batch'], 64),
      inputTimeoutMs: numberOption('input-timeout-ms', values['input-timeout-ms'], 2000),
      initialCorpus: readCorpus(n),
      listUncovered: values.uncovered !== undefined,
    };
    const s = await campaign(options, numberOption('hang-ms', values['hang-ms'], 10000));
    summaries.push(s);
    console.log(line(s));
    if (values['save-corpus'] && s.guided) saveCorpus(n, s.corpus);
  }
  console.log(
    '\n| target | mode | inputs | execs/s | blocks covered | corpus | seconds | findings | known open |\n|---|---|---:|---:|---:|---:|---:|---:|---:|',
  );
  for (const s of summaries) {
    const mode = s.guided ? 'guided' : 'unguided';
    const blocks = s.guided ? `${s.blocksCovered}/${s.blocksKnown}` : '-';
    console.log(
      `| ${s.target} | ${mode} | ${s.execs} | ${Math.round(s.execsPerSecond)} | ${blocks} | ${s.corpusSize} | ${s.seconds.toFixed(0)} | ${s.findings} | ${s.knownOpen} |`,
    );
  }
  if (values.uncovered !== undefined) {
    writeFileSync(
      values.uncovered,
      summaries
        .map((s) => `# ${s.target}: ${s.blocksKnown - s.blocksCovered} blocks never run\n${(s.uncovered ?? []).join('\n')}\n`)
        .join('\n'),
    );
  }
  if (values.json !== undefined)
    writeFileSync(
      values.json,
      JSON.stringify(
        summaries.map(({ corpus: _c, ...rest }) => rest),
        null,
        2,
      ),
    );
  return summaries.some((s) => s.findings > 0) ? 1 : 0;
}

/**
 * Keep what a campaign learned: entries not yet on disk (small ones only, at most
 * SAVED_CORPUS_MAX per target) become fuzz/corpus/<target>/cov-<hash>.bin, which the next campaign
 * starts from and CI replays.
 */
function saveCorpus(target: string, corpus: ReadonlyMap<string, Uint8Array>): void {
  const dir = join(CORPUS_DIR, target);
  mkdirSync(dir, { recursive: true });
  const onDisk = new Set(readCorpus(target).map(inputHash));
  let saved = readdirSync(dir).filter((f) => f.startsWith('cov-')).length;
  for (const [hash, input] of corpus) {
    if (saved >= SAVED_CORPUS_MAX) break;
    if (onDisk.has(hash) || input.length > 4096) continue;
    writeFileSync(join(dir, `cov-${hash}.bin`), input);
    saved++;
  }
}

try {
  values = parseOptions().values;
  if (values.help) process.stdout.write(USAGE);
  else process.exitCode = await main();
} catch (err) {
  if (!(err instanceof FuzzUsageError)) throw err;
  process.stderr.write(`fuzz: ${err.message}\n${USAGE}`);
  process.exitCode = 2;
}
