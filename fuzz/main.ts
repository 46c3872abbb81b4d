/**
 * `npm run fuzz -- --target NAME --time SECONDS`: coverage-guided fuzzing of one target (or
 * `--all`), `--ci` for every target for a bounded time, `--unguided` for plain mutation without
 * coverage, `--list` for the targets, `--uncovered FILE` for the blocks a campaign never ran,
 * `--jobs N` for N campaigns of each target at once. Each campaign runs in a worker thread watched by
 * this thread: a worker that stops making progress for `--hang-ms` is ended and its input saved as a hang, and one that outgrows its heap limit is saved
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
/** Most campaigns of one target run at once by --jobs. */
const MAX_JOBS = 32;
/** Seed distance between jobs: a campaign adds one per restart (at most MAX_RESTARTS), so jobs never share a seed. */
const JOB_SEED_STRIDE = 1000;

const USAGE = `usage: npm run fuzz -- (--target NAME... | --all | --ci | --list) [options]
  --time S              seconds per target (default 60)      --runs N        stop after N inputs
  --seed N              campaign seed                         --unguided      plain mutation, no coverage
  --save-corpus         keep new coverage inputs in fuzz/corpus/<target>/
  --write-seeds         write each target's seed inputs       --json FILE     summaries as JSON
  --uncovered FILE      list blocks the campaign never ran    --max-batch N, --input-timeout-ms N, --hang-ms N
  --jobs N              N campaigns of each target at once (1..${MAX_JOBS}, default 1; --ci runs one), seeds
                        ${JOB_SEED_STRIDE} apart, --runs shared out between them
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
        jobs: { type: 'string', default: '1' },
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

function jobsOption(text: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < 1 || n > MAX_JOBS)
    throw new FuzzUsageError(`--jobs needs a whole number from 1 to ${MAX_JOBS}, got ${text}`);
  return n;
}

interface Summary extends CampaignStats {
  /** The seed of the campaign's first worker (each restart adds one). */
  readonly seed: number;
  /** Findings matching fuzz/known-open.ts: saved and printed, not counted in the exit code. */
  readonly knownOpen: number;
  readonly knownOpenFiles: readonly string[];
  readonly restarts: number;
  readonly findingFiles: readonly string[];
  /** Every corpus entry the workers kept (including restarts), by content hash. */
  readonly corpus: ReadonlyMap<string, Uint8Array>;
  /** Campaigns run at once (--jobs); when more than one, each one's summary. */
  readonly jobs: number;
  readonly perJob: readonly Summary[];
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

/** One line of figures; `label` names the target and, among several jobs, the job. */
function line(s: CampaignStats, label: string, jobs = 1): string {
  const cov = !s.guided
    ? ''
    : jobs === 1
      ? ` blocks ${s.blocksCovered}/${s.blocksKnown} corpus ${s.corpusSize} batch ${s.batch}`
      : ` blocks ${s.blocksCovered}/${s.blocksKnown} (the best job's, not a union) corpus ${s.corpusSize} (union)`;
  const from = jobs === 1 ? '' : ` from ${jobs} jobs`;
  return `[${label}] ${s.execs} execs${from} (${Math.round(s.execsPerSecond)}/s) in ${s.seconds.toFixed(0)} s${cov} findings ${s.findings}`;
}

/**
 * Runs `jobs` campaigns of one target at once, each with its own seed and share of the runs, and
 * merges their figures: wall-clock-bound targets (waits, timeouts) use a fraction of a core each.
 */
async function campaigns(options: CampaignOptions, hangMs: number, jobs: number): Promise<Summary> {
  if (jobs === 1) return campaign(options, hangMs, options.targetName);
  const parts = await Promise.all(
    Array.from({ length: jobs }, (_, k) => {
      // Infinity % jobs is NaN, so an unbounded campaign stays unbounded.
      const runs = Math.floor(options.runs / jobs) + (k < options.runs % jobs ? 1 : 0);
      const job = { ...options, runs, seed: options.seed + k * JOB_SEED_STRIDE };
      return campaign(job, hangMs, `${options.targetName} job ${k + 1}`);
    }),
  );
  for (const [k, p] of parts.entries()) console.log(line(p, `${options.targetName} job ${k + 1}`));
  // Coverage stays inside each worker's tracker, so blocks covered are the best job's figures.
  const best = parts.reduce((a, b) => (b.blocksCovered > a.blocksCovered ? b : a));
  const sum = (f: (s: Summary) => number): number => parts.reduce((n, s) => n + f(s), 0);
  const execs = sum((s) => s.execs);
  const seconds = Math.max(...parts.map((s) => s.seconds));
  const corpus = new Map(parts.flatMap((s) => [...s.corpus]));
  // Every job replays the same corpus, so one input can be every job's finding: count its file once.
  const findingFiles = [...new Set(parts.flatMap((s) => s.findingFiles))];
  const knownOpenFiles = [...new Set(parts.flatMap((s) => s.knownOpenFiles))];
  return {
    ...best,
    execs,
    seconds,
    execsPerSecond: execs / seconds,
    corpusSize: corpus.size,
    coverageTakes: sum((s) => s.coverageTakes),
    findings: findingFiles.length,
    seed: options.seed,
    knownOpen: knownOpenFiles.length,
    knownOpenFiles,
    restarts: sum((s) => s.restarts),
    findingFiles,
    corpus,
    jobs,
    perJob: parts,
  };
}

/**
 * Runs a campaign in workers, restarting after a hang until the time or runs are used up. `label`
 * prefixes its progress and finding lines.
 */
async function campaign(options: CampaignOptions, hangMs: number, label: string): Promise<Summary> {
  const corpus = new Map<string, Uint8Array>();
  const findingFiles: string[] = [];
  const knownFiles: string[] = [];
  let execsBefore = 0;
  let secondsBefore = 0;
  let restarts = 0;
  let last: CampaignStats | undefined;
  /** The last worker's figures, with the execs and seconds of every worker of the campaign. */
  const summary = (stats: CampaignStats, execs: number, seconds: number): Summary => ({
    ...stats,
    execs,
    seconds,
    execsPerSecond: execs / seconds,
    findings: findingFiles.length,
    seed: options.seed,
    knownOpen: knownFiles.length,
    knownOpenFiles: knownFiles,
    restarts,
    findingFiles,
    corpus,
    jobs: 1,
    perJob: [],
  });
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
            `[${label}] ${known === undefined ? 'FINDING' : 'KNOWN OPEN'} ${m.finding.kind}: ${m.finding.message.split('\n')[0]} -> ${file}`,
          );
        } else if (m.type === 'progress') {
          last = m.stats;
          console.error(line(m.stats, label));
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
      return summary(s, execsBefore + s.execs, secondsBefore + s.seconds);
    }
    // The worker is gone: the input it was running is the finding.
    const lost = outcome.lost!;
    const len = Atomics.load(counters, 1);
    const input = new Uint8Array(heartbeat, HEARTBEAT_INPUT, len).slice();
    const file = saveFinding(options.targetName, { kind: lost.kind, signature: lost.kind, message: lost.why, stack: lost.why, input });
    findingFiles.push(file);
    console.error(`[${label}] FINDING ${lost.kind}: ${lost.why} -> ${file}`);
    execsBefore += Atomics.load(counters, 0);
    secondsBefore += (performance.now() - started) / 1000;
    restarts++;
    // Keep going while workers make progress between deaths (each death is a saved finding); give
    // up when one dies before its first progress report twice, or after MAX_RESTARTS.
    if (last === undefined && restarts > 1) throw new Error(`[${label}] campaign keeps dying at start (${lost.kind}); see ${file}`);
    if (restarts > MAX_RESTARTS || execsBefore >= options.runs || secondsBefore >= options.seconds) {
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
      return summary(stats, execsBefore, secondsBefore);
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
  const jobs = jobsOption(values.jobs);
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
    const s = await campaigns(options, numberOption('hang-ms', values['hang-ms'], 10000), values.ci ? 1 : jobs);
    summaries.push(s);
    console.log(line(s, s.target, s.jobs));
    if (values['save-corpus'] && s.guided) saveCorpus(n, s.corpus);
  }
  console.log(
    '\n| target | mode | inputs | execs/s | blocks covered | corpus | seconds | findings | known open |\n|---|---|---:|---:|---:|---:|---:|---:|---:|',
  );
  for (const s of summaries) {
    const mode = `${s.guided ? 'guided' : 'unguided'}${s.jobs > 1 ? `, ${s.jobs} jobs` : ''}`;
    const blocks = s.guided ? `${s.blocksCovered}/${s.blocksKnown}${s.jobs > 1 ? ' (best job)' : ''}` : '-';
    console.log(
      `| ${s.target} | ${mode} | ${s.execs} | ${Math.round(s.execsPerSecond)} | ${blocks} | ${s.corpusSize} | ${s.seconds.toFixed(0)} | ${s.findings} | ${s.knownOpen} |`,
    );
  }
  if (values.uncovered !== undefined) {
    writeFileSync(
      values.uncovered,
      summaries
        .map(
          (s) =>
            `# ${s.target}: ${s.blocksKnown - s.blocksCovered} blocks never run${s.jobs > 1 ? ` by the best of ${s.jobs} jobs` : ''}\n${(s.uncovered ?? []).join('\n')}\n`,
        )
        .join('\n'),
    );
  }
  if (values.json !== undefined)
    writeFileSync(
      values.json,
      JSON.stringify(
        summaries.map(({ corpus: _c, perJob, ...rest }) => ({
          ...rest,
          perJob: perJob.map(({ corpus: _j, perJob: _p, jobs: _n, ...job }) => job),
        })),
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
