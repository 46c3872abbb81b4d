/** Who listens to which function's interrupts: the registry every PciBus implementation keeps. */

import type { Bdf, InterruptEvent } from './pci-bus.js';

export type InterruptListener = (event: InterruptEvent) => void;

export class InterruptListeners {
  private readonly byFn = new Map<Bdf, Set<InterruptListener>>();

  /** Add `listener` for `fn`; returns the unsubscribe function (as PciBus.onInterrupt does). */
  add(fn: Bdf, listener: InterruptListener): () => void {
    let set = this.byFn.get(fn);
    if (set === undefined) this.byFn.set(fn, (set = new Set()));
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0) this.byFn.delete(fn);
    };
  }

  /** Whether anyone listens to `fn`. */
  has(fn: Bdf): boolean {
    return this.byFn.has(fn);
  }

  /** Call `fn`'s listeners with `event`, synchronously. */
  emit(fn: Bdf, event: InterruptEvent): void {
    const set = this.byFn.get(fn);
    if (set !== undefined) for (const l of [...set]) l(event);
  }

  clear(): void {
    this.byFn.clear();
  }
}
