/**
 * Wall and CPU time of the timed regions of a benchmark, summed over many regions, so that every
 * figure can be given both ways. The CPU time is the main thread's (Linux's per-thread scheduler
 * statistics, nanoseconds), where the code under test runs: on this shared machine it is what the
 * code cost, while the wall time also holds the time other processes had the core. The whole
 * process's user + system time would count V8's compiler and GC helper threads too, which made
 * short runs of the same code differ by 3x. Elsewhere the process's time stands in for it.
 */

import { openSync, readSync } from 'node:fs';

/** The main thread's scheduler statistics, kept open: one pread per reading. */
const schedstat = ((): number | undefined => {
  try {
    return openSync('/proc/thread-self/schedstat', 'r');
  } catch {
    return undefined;
  }
})();
const text = Buffer.alloc(64);

/** Milliseconds of CPU time of this thread (of the process where Linux's schedstat is missing). */
export function cpuMs(): number {
  if (schedstat !== undefined) {
    const n = readSync(schedstat, text, 0, text.length, 0);
    let ns = 0;
    for (let i = 0; i < n && text[i] !== 0x20; i++) ns = ns * 10 + text[i]! - 0x30;
    return ns / 1e6;
  }
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

/** CPU time one start()/stop() pair costs by itself: the median of empty pairs, at load. */
const READ_COST_MS = ((): number => {
  const costs: number[] = [];
  for (let i = 0; i < 201; i++) {
    const c0 = cpuMs();
    costs.push(cpuMs() - c0);
  }
  return costs.sort((x, y) => x - y)[100]!;
})();

export class Clock {
  wallMs = 0;
  cpuMs = 0;
  private wall0 = 0;
  private cpu0 = 0;

  start(): void {
    this.cpu0 = cpuMs();
    this.wall0 = performance.now();
  }

  stop(): void {
    this.wallMs += performance.now() - this.wall0;
    // Less what reading the clock costs, so that short regions are not overcharged.
    this.cpuMs += Math.max(0, cpuMs() - this.cpu0 - READ_COST_MS);
  }

  /** `units` per second of wall and of CPU time. */
  rates(units: number): { wall: number; cpu: number } {
    return { wall: units / (this.wallMs / 1000), cpu: units / (this.cpuMs / 1000) };
  }
}
/** A rate as `12.3 M` / `456 k` / `789`. */
export function si(rate: number): string {
  if (rate >= 1e6) return `${(rate / 1e6).toFixed(2)} M`;
  if (rate >= 1e4) return `${(rate / 1e3).toFixed(0)} k`;
  return rate.toFixed(0);
}
