/**
 * A virtual clock for one fuzz run: `setTimeout`, `clearTimeout` and `Date.now` as the code under
 * test sees them while it is installed. Time stands still while anything else can run (microtasks,
 * ticks, immediates) and jumps to the earliest pending timer once nothing else can, so every wait
 * still ends by its own timer, in the order of the timers' due times, as on an infinitely fast
 * machine. A run then no longer sits out its driver timeouts in wall-clock time (a device that never
 * answers made each wait cost its full 3 ms), and it replays the same way whatever the machine's load:
 * whether a timer fires before other work depends only on the run, not on how fast it ran.
 *
 * Timers still pending at uninstall never fire (the harness counts them first, as it counts real
 * timers left behind); a run's timers cannot fire during a later run.
 */

const realSetTimeout = globalThis.setTimeout;
const realClearTimeout = globalThis.clearTimeout;
const realSetImmediate = globalThis.setImmediate;
const realDateNow = Date.now;
/** Node's bounds of a timer's delay: anything outside [1, 2^31 - 1] ms, or NaN, is 1 ms. */
const TIMEOUT_MAX = 2 ** 31 - 1;

interface Pending {
  readonly due: number;
  readonly fire: () => void;
}

/** What the code under test gets back from `setTimeout` while the clock is installed. */
class VirtualTimeout {}

export class VirtualClock {
  /** The real setTimeout, for bounds that must stay in wall-clock time (a run's hang bound). */
  static readonly realSetTimeout = realSetTimeout;
  static readonly realClearTimeout = realClearTimeout;

  private now = realDateNow();
  /** Pending timers; a Map keeps insertion order, so equal due times fire in the order they were set. */
  private readonly timers = new Map<VirtualTimeout, Pending>();
  private installed = false;
  private pumping = false;

  /** Timers set and neither fired nor cleared. */
  get pending(): number {
    return this.timers.size;
  }

  install(): void {
    if (this.installed) throw new Error('virtual clock already installed');
    this.installed = true;
    const setTimeout = (callback: (...args: unknown[]) => void, ms?: number, ...args: unknown[]): VirtualTimeout => {
      const delay = ms !== undefined && ms >= 1 && ms <= TIMEOUT_MAX ? ms : 1;
      const handle = new VirtualTimeout();
      this.timers.set(handle, { due: this.now + delay, fire: () => callback(...args) });
      this.schedulePump();
      return handle;
    };
    globalThis.setTimeout = setTimeout as unknown as typeof globalThis.setTimeout;
    globalThis.clearTimeout = (handle: VirtualTimeout | NodeJS.Timeout | string | number | undefined): void => {
      if (handle instanceof VirtualTimeout) this.timers.delete(handle);
      else realClearTimeout(handle);
    };
    Date.now = () => this.now;
  }

  /** Restore the real functions; timers still pending are dropped. */
  uninstall(): void {
    if (!this.installed) return;
    this.installed = false;
    globalThis.setTimeout = realSetTimeout;
    globalThis.clearTimeout = realClearTimeout;
    Date.now = realDateNow;
    this.timers.clear();
  }

  private schedulePump(): void {
    if (this.pumping) return;
    this.pumping = true;
    realSetImmediate(() => this.pump());
  }

  /** In the check phase: fire the earliest timer if nothing else is left to run, else look again next turn. */
  private pump(): void {
    this.pumping = false;
    if (!this.installed || this.timers.size === 0) return;
    // Another immediate pending (this one is not listed while it runs): other work comes first.
    if (process.getActiveResourcesInfo().includes('Immediate')) {
      this.schedulePump();
      return;
    }
    let first: [VirtualTimeout, Pending] | undefined;
    for (const entry of this.timers) if (first === undefined || entry[1].due < first[1].due) first = entry;
    const [handle, timer] = first!;
    this.timers.delete(handle);
    this.now = Math.max(this.now, timer.due);
    if (this.timers.size > 0) this.schedulePump();
    timer.fire();
  }
}
