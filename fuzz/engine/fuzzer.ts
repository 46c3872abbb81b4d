/**
 * The campaign loop: pick a corpus entry, mutate it, run it, keep it if it reached new coverage.
 *
 * Coverage is taken per batch, not per input: a take costs several times a typical run (the
 * inspector serialises the report), so B inputs run back to back and one take says whether any of
 * them ran a block never run before. Only then is each input of the batch run again alone, with a
 * take after each, to find the ones to keep (targets are deterministic from a fresh state, so a rerun
 * covers the same blocks). B doubles after every batch with nothing new, up to `maxBatch`, and halves
 * after one with something new. Summed counts hide each input's hit-count buckets, so one batch in
 * `preciseEvery` is run input by input, where a new bucket (a loop run more times than ever) also
 * earns a place in the corpus; `preciseEvery` starts at PRECISE_MIN and doubles up to PRECISE_MAX
 * while precise batches find nothing, so a mature campaign spends little on them.
 */

import { createHash } from 'node:crypto';
import { CoverageTracker } from './coverage.js';
import { Mutator } from './mutator.js';
import { Rng } from './rng.js';
import type { FuzzTargetModule } from './target.js';
import { GuaranteeViolation, describe } from './guarantees.js';

export interface CampaignOptions {
  readonly targetName: string;
  /** Stop after this many seconds of fuzzing. */
  readonly seconds: number;
  /** Stop after this many executions (whichever comes first). */
  readonly runs: number;
  readonly seed: number;
  /** Coverage-guided (default) or unguided: mutate seeds only, no coverage. */
  readonly guided: boolean;
  /** Largest batch between coverage takes. */
  readonly maxBatch: number;
  /** Wall-clock bound per input in ms: slower is a 'hang' finding. */
  readonly inputTimeoutMs: number;
  /** Entries to start from besides the target's seeds (an earlier run's corpus, or replayed files). */
  readonly initialCorpus: readonly Uint8Array[];
  /** Report the blocks never executed at the end (guided only). */
  readonly listUncovered: boolean;
}

export interface Finding {
  readonly kind: string;
  /** Dedup key: kind plus the first line of the message and the top frame in our code. */
  readonly signature: string;
  readonly message: string;
  readonly stack: string;
  readonly input: Uint8Array;
}

export interface CampaignStats {
  readonly target: string;
  readonly guided: boolean;
  readonly execs: number;
  readonly seconds: number;
  readonly execsPerSecond: number;
  readonly corpusSize: number;
  readonly blocksCovered: number;
  readonly blocksKnown: number;
  readonly coverageTakes: number;
  readonly batch: number;
  readonly findings: number;
  /** "file:line" of blocks never executed, when asked for. */
  readonly uncovered?: readonly string[];
}

export interface CampaignHooks {
  /** Called before each run with the input (the watchdog keeps it in case the run never returns). */
  beforeRun(input: Uint8Array, execs: number): void;
  onCorpusEntry(input: Uint8Array): void;
  onFinding(finding: Finding): void;
  onProgress(stats: CampaignStats): void;
}

/** URL fragment of the code whose coverage counts: our compiled sources, not the harness. */
export const COVERAGE_SCOPE = '/dist/src/';
/** Bounds of the share of batches run with a coverage take per input (see the file comment). */
const PRECISE_MIN = 8;
const PRECISE_MAX = 128;

export async function runCampaign(
  loadTarget: () => Promise<FuzzTargetModule>,
  opts: CampaignOptions,
  hooks: CampaignHooks,
): Promise<CampaignStats> {
  // Coverage must be on before the target's modules compile, so the import comes after.
  const tracker = opts.guided ? new CoverageTracker(COVERAGE_SCOPE) : undefined;
  const target = await loadTarget();
  const rng = new Rng(opts.seed);
  const mutator = new Mutator(rng, target.shape);
  const corpus: Uint8Array[] = [];
  const signatures = new Set<string>();
  let findings = 0;
  let execs = 0;
  let takes = 0;
  let batch = 1;
  let batches = 0;
  let preciseEvery = PRECISE_MIN;
  const started = performance.now();
  const deadline = started + opts.seconds * 1000;

  const stats = (): CampaignStats => {
    const seconds = (performance.now() - started) / 1000;
    return {
      target: opts.targetName,
      guided: opts.guided,
      execs,
      seconds,
      execsPerSecond: execs / Math.max(seconds, 1e-9),
      corpusSize: corpus.length,
      blocksCovered: tracker?.blocksCovered ?? 0,
      blocksKnown: tracker?.blocksKnown ?? 0,
      coverageTakes: takes,
      batch,
      findings,
    };
  };

  /** Runs one input; records a finding and returns false if a guarantee broke. */
  const exec = async (input: Uint8Array): Promise<boolean> => {
    hooks.beforeRun(input, execs);
    execs++;
    const t0 = performance.now();
    try {
      const r = target.run(input);
      if (r instanceof Promise) await r;
    } catch (err) {
      report(err, input);
      return false;
    }
    const ms = performance.now() - t0;
    if (ms > opts.inputTimeoutMs) {
      report(new GuaranteeViolation('hang', `one input ran ${ms.toFixed(0)} ms (bound ${opts.inputTimeoutMs} ms)`), input);
      return false;
    }
    return true;
  };

  const report = (err: unknown, input: Uint8Array): void => {
    const kind = err instanceof GuaranteeViolation ? err.kind : 'escaped-exception';
    const message = describe(err);
    const stack = err instanceof Error ? (err.stack ?? message) : message;
    const signature = `${kind}|${message.split('\n')[0]!.replace(/0x[0-9a-f]+|\d+/g, 'N')}|${topFrame(stack)}`;
    if (signatures.has(signature)) return;
    signatures.add(signature);
    findings++;
    hooks.onFinding({ kind, signature, message, stack, input: input.slice() });
  };

  const keep = (input: Uint8Array): void => {
    corpus.push(input);
    hooks.onCorpusEntry(input);
  };

  tracker?.reset();
  const starts = [...target.seeds().map((s) => s.data), ...opts.initialCorpus];
  for (const input of starts) {
    const ok = await exec(input);
    // Unguided campaigns mutate every passing seed; guided ones keep the seeds that cover something.
    if (tracker === undefined) {
      if (ok) keep(input);
      continue;
    }
    takes++;
    if (tracker.take() > 0 || corpus.length === 0) keep(input);
  }
  if (corpus.length === 0) keep(new Uint8Array(8));

  let lastProgress = performance.now();
  const pending: Uint8Array[] = [];
  while (execs < opts.runs && performance.now() < deadline) {
    pending.length = 0;
    let found = false;
    const sampled = tracker !== undefined && batch > 1 && ++batches % preciseEvery === 0;
    const precise = tracker !== undefined && (batch === 1 || sampled);
    for (let i = 0; i < batch && execs < opts.runs; i++) {
      const parent = pickParent(corpus, rng);
      const other = corpus.length > 1 ? corpus[rng.below(corpus.length)] : undefined;
      const child = mutator.mutate(parent, other);
      pending.push(child);
      await exec(child);
      if (precise) {
        takes++;
        if (tracker.take() > 0) {
          keep(child);
          found = true;
        }
      }
    }
    if (tracker !== undefined && !precise) {
      takes++;
      if (tracker.takeNewBlocks() > 0) {
        for (const child of pending) {
          await exec(child);
          takes++;
          if (tracker.take() > 0) keep(child);
        }
        found = true;
      }
    }
    if (tracker !== undefined) batch = found ? Math.max(1, batch >> 1) : Math.min(opts.maxBatch, batch * 2);
    if (sampled) preciseEvery = found ? PRECISE_MIN : Math.min(PRECISE_MAX, preciseEvery * 2);
    const now = performance.now();
    if (now - lastProgress > 2000) {
      lastProgress = now;
      hooks.onProgress(stats());
    }
  }
  const final = stats();
  const uncovered = opts.listUncovered ? tracker?.uncovered() : undefined;
  tracker?.close();
  return uncovered === undefined ? final : { ...final, uncovered };
}

/** Favour recent entries (they found new code last), but keep visiting old ones. */
function pickParent(corpus: readonly Uint8Array[], rng: Rng): Uint8Array {
  if (corpus.length > 8 && rng.oneIn(2)) return corpus[corpus.length - 1 - rng.below(Math.min(corpus.length, 32))]!;
  return corpus[rng.below(corpus.length)]!;
}

/** The first stack frame in our compiled code, for deduplicating findings. */
function topFrame(stack: string): string {
  for (const line of stack.split('\n')) {
    const m = /\/dist\/((?:src|fuzz)\/[^:)]+):(\d+)/.exec(line);
    if (m !== null) return `${m[1]}:${m[2]}`;
  }
  return '';
}

/** Short content hash for finding and corpus file names. */
export function inputHash(input: Uint8Array): string {
  return createHash('sha1').update(input).digest('hex').slice(0, 12);
}
