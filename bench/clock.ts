/**
 * Wall and CPU time of the timed regions of a benchmark, summed over many regions, so that every
 * figure can be given both ways: on this shared machine the CPU time (user + system of this process)
 * is what the code cost, the wall time what a caller waited.
 */

export class Clock {
  wallMs = 0;
  cpuMs = 0;
  private wall0 = 0;
  private cpu0: NodeJS.CpuUsage = { user: 0, system: 0 };

  start(): void {
    this.cpu0 = process.cpuUsage();
    this.wall0 = performance.now();
  }

  stop(): void {
    this.wallMs += performance.now() - this.wall0;
    const cpu = process.cpuUsage(this.cpu0);
    this.cpuMs += (cpu.user + cpu.system) / 1000;
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
