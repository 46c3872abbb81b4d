/**
 * Wall and CPU time of the timed regions of a benchmark, summed over many regions, so that every
 * figure can be given both ways: on this shared machine the CPU time is what the code cost, while
 * the wall time also holds the time other processes had the core. The CPU time is the process's
 * (user + system, getrusage: exact to the microsecond), so it also counts V8's compiler and GC
 * helper threads, which burst during warm-up; `node --single-threaded` would move their work onto
 * the main thread, but it also changes what V8 optimises (the console bench fell 5x under it), so
 * `npm run bench` does not use it. Linux's per-thread schedstat is no substitute: it is updated at
 * scheduler ticks only.
 */

/** Milliseconds of CPU time of this process. */
export function cpuMs(): number {
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
