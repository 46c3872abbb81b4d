/**
 * Coverage feedback from V8's own precise block coverage (the engine behind `c8`), read in-process
 * through node:inspector. Jazzer.js cannot load here, and V8 already counts every basic block once
 * block coverage is on, so no instrumentation step is needed.
 *
 * How it works: `Profiler.startPreciseCoverage({ callCount: true, detailed: true })` makes V8 compile
 * every function loaded afterwards with a counter per block; `Profiler.takePreciseCoverage` returns,
 * for each function run since the last take, its nested source ranges with hit counts, and resets
 * the counters. V8 merges a block into its parent when both have the same count, so a block that ran
 * can vanish from the report; we therefore remember every range ever reported for a function (its
 * blocks) and give each the count of the innermost reported range that contains it. A feature is
 * (block, log2 bucket of its count), as AFL buckets edge hits, so more iterations of a guest-bounded
 * loop count as progress. Only scripts whose URL contains `scope` (our compiled src/) are kept.
 */

import { readFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { fileURLToPath } from 'node:url';

interface Range {
  readonly startOffset: number;
  readonly endOffset: number;
  readonly count: number;
}
interface FunctionCoverage {
  readonly functionName: string;
  readonly ranges: readonly Range[];
}
interface ScriptCoverage {
  readonly url: string;
  readonly functions: readonly FunctionCoverage[];
}

/** Hit-count buckets: 1, 2, 3, 4-7, 8-15, 16-31, 32-127, 128+. */
const BUCKETS = 8;
function bucket(count: number): number {
  if (count <= 3) return count - 1;
  if (count < 8) return 3;
  if (count < 16) return 4;
  if (count < 32) return 5;
  if (count < 128) return 6;
  return 7;
}

/** The blocks of one function seen so far, each with a global id. */
interface FunctionBlocks {
  /** Block ranges as [start, end, id]. */
  readonly blocks: Array<[number, number, number]>;
  /** rangeKey of each block, to add only ranges not seen before. */
  readonly keys: Set<number>;
}

/** A range's start and end offsets as one number (exact for scripts below 2 MiB, far above ours); no string per range per take. */
function rangeKey(r: Range): number {
  return r.startOffset * 0x20_0000 + r.endOffset;
}

export class CoverageTracker {
  private readonly session = new Session();
  /** Script URL -> the function's start offset -> its blocks. */
  private readonly functions = new Map<string, Map<number, FunctionBlocks>>();
  private blockCount = 0;
  /** Feature id -> seen; grows as blocks are discovered. */
  private seen = new Uint8Array(1 << 12);
  private readonly coveredBlocks = new Set<number>();
  /** Scratch: features of the last take. */
  private readonly lastFeatures: number[] = [];

  constructor(private readonly scope: string) {
    this.session.connect();
    this.post('Profiler.enable');
    this.post('Profiler.startPreciseCoverage', { callCount: true, detailed: true });
  }

  /** Number of distinct blocks ever executed in scope. */
  get blocksCovered(): number {
    return this.coveredBlocks.size;
  }
  /** Number of distinct blocks known in scope (executed or seen unexecuted in a run function). */
  get blocksKnown(): number {
    return this.blockCount;
  }

  /** Forget counts accumulated so far (e.g. by module loading) without scoring them. */
  reset(): void {
    this.post('Profiler.takePreciseCoverage');
  }

  /** Collect the coverage since the last take; mark its features seen and return how many were new. */
  take(): number {
    let fresh = 0;
    for (const f of this.collect()) {
      if (this.seen[f] === 0) {
        fresh++;
        this.seen[f] = 1;
        this.coveredBlocks.add(Math.floor(f / BUCKETS));
      }
    }
    return fresh;
  }

  /**
   * Collect the coverage since the last take and return how many blocks in it never ran before,
   * marking nothing. Counts summed over a batch of inputs say nothing about any one input's hit
   * buckets, so a batch is judged by new blocks only.
   */
  takeNewBlocks(): number {
    let fresh = 0;
    for (const f of this.collect()) if (!this.coveredBlocks.has(Math.floor(f / BUCKETS))) fresh++;
    return fresh;
  }

  /** The features (block id * BUCKETS + bucket) of the code run since the last take. */
  private collect(): number[] {
    const result = this.post('Profiler.takePreciseCoverage') as { result: ScriptCoverage[] };
    const out = this.lastFeatures;
    out.length = 0;
    for (const script of result.result) {
      if (!script.url.includes(this.scope)) continue;
      let functions = this.functions.get(script.url);
      if (functions === undefined) this.functions.set(script.url, (functions = new Map()));
      for (const fn of script.functions) {
        const first = fn.ranges[0];
        if (first === undefined || first.count === 0) continue;
        const blocks = this.blocksOf(functions, first.startOffset, fn.ranges);
        effectiveCounts(blocks.blocks, fn.ranges, out);
      }
    }
    if (this.seen.length < this.blockCount * BUCKETS) {
      const grown = new Uint8Array(Math.max(this.seen.length * 2, this.blockCount * BUCKETS));
      grown.set(this.seen);
      this.seen = grown;
    }
    return out;
  }

  /**
   * Known blocks never executed, as "file:line" of their first byte (dist JavaScript, whose lines
   * follow the TypeScript closely), for finding what a campaign does not reach.
   */
  uncovered(): string[] {
    const out: string[] = [];
    const sources = new Map<string, string>();
    for (const [url, functions] of this.functions) {
      let text = sources.get(url);
      for (const fb of functions.values()) {
        for (const [start, , id] of fb.blocks) {
          if (this.coveredBlocks.has(id)) continue;
          if (text === undefined) {
            text = readFileSync(fileURLToPath(url), 'utf8');
            sources.set(url, text);
          }
          let line = 1;
          for (let i = text.indexOf('\n'); i !== -1 && i < start; i = text.indexOf('\n', i + 1)) line++;
          out.push(`${url.slice(url.indexOf('/dist/') + 6)}:${line}`);
        }
      }
    }
    return [...new Set(out)].sort();
  }

  private blocksOf(functions: Map<number, FunctionBlocks>, start: number, ranges: readonly Range[]): FunctionBlocks {
    let fb = functions.get(start);
    if (fb === undefined) {
      fb = { blocks: [], keys: new Set() };
      functions.set(start, fb);
    }
    for (const r of ranges) {
      const k = rangeKey(r);
      if (fb.keys.has(k)) continue;
      fb.keys.add(k);
      fb.blocks.push([r.startOffset, r.endOffset, this.blockCount++]);
    }
    return fb;
  }

  private post(method: string, params?: object): unknown {
    // declared through a cast: the callback assigns it, which narrowing from a null literal would not see
    let error = null as Error | null;
    let value: unknown;
    // A same-thread inspector session answers synchronously.
    this.session.post(method, params ?? {}, (err, res) => {
      error = err;
      value = res;
    });
    if (error !== null) throw error;
    return value;
  }

  close(): void {
    this.session.disconnect();
  }
}

/**
 * For each known block, the count of the innermost reported range containing it, and a feature for
 * every block that ran. Reported ranges nest and come outer-first, so the last one containing a
 * block is the innermost; functions have few ranges, so the quadratic scan is cheap.
 */
function effectiveCounts(blocks: ReadonlyArray<readonly [number, number, number]>, ranges: readonly Range[], out: number[]): void {
  for (const [start, end, id] of blocks) {
    let count = 0;
    for (const r of ranges) {
      if (r.startOffset > start) break;
      if (r.endOffset >= end) count = r.count;
    }
    if (count > 0) out.push(id * BUCKETS + bucket(count));
  }
}
