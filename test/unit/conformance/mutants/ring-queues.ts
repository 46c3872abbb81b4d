/**
 * What the ring families' mutants are made of: our device with its device rings wrapped through the
 * device core's ring seam (VirtioPciFunctionOptions.deviceRing), so that a wrapper breaks one rule of
 * the ring while the device model above it and the core's notifications stay ours. The wrapper sees
 * the ring's options (guest memory, the areas, the size, the features) to poke raw memory the way a
 * broken ring would.
 */

import { deviceRing, type DeviceRingOptions } from '../../../../src/queue/rings.js';
import type { DescriptorChain, DeviceQueue, RingPosition } from '../../../../src/queue/types.js';
import type { Mutant } from './mutant.js';
import { plug, type Plugging } from './pci-function-mutant.js';

/** A DeviceQueue passing everything to `inner`; mutants override what they break. */
export class QueueWrapper implements DeviceQueue {
  constructor(
    protected readonly inner: DeviceQueue,
    protected readonly options: DeviceRingOptions,
  ) {}
  get index(): number {
    return this.inner.index;
  }
  get size(): number {
    return this.inner.size;
  }
  pop(): DescriptorChain | null {
    return this.inner.pop();
  }
  pushUsed(head: number, len: number): void {
    this.inner.pushUsed(head, len);
  }
  needsInterrupt(): boolean {
    return this.inner.needsInterrupt();
  }
  setNotification(enabled: boolean): void {
    this.inner.setNotification(enabled);
  }
  hasAvailable(): boolean {
    return this.inner.hasAvailable();
  }
  position(): RingPosition {
    return this.inner.position();
  }
}

/** A chain seen through `map`: buffer i of the view is buffer map[i] of `chain`, `view` replaced when given. */
export function remappedChain(
  chain: DescriptorChain,
  map: readonly number[],
  view: (i: number) => Uint8Array = (i) => chain.view(map[i]!),
): DescriptorChain {
  const readable = map.filter((k) => k < chain.readable).length;
  const bytes = (from: number, to: number): number => map.slice(from, to).reduce((n, k) => n + chain.len(k), 0);
  return {
    head: chain.head,
    count: map.length,
    readable,
    readableBytes: bytes(0, readable),
    writableBytes: bytes(readable, map.length),
    addr: (i) => chain.addr(map[i]!),
    len: (i) => chain.len(map[i]!),
    view,
  };
}

/** Builds the mutant's ring from the seam's options. */
export type RingMutation = (options: DeviceRingOptions) => DeviceQueue;

/** The mutant of our device of `plugging` whose rings `mutate` builds. */
export function ringMutant(breaks: string, plugging: Plugging, mutate: RingMutation): Mutant {
  return {
    breaks,
    original: (machine) => plug(machine, plugging),
    mutant: (machine) => plug(machine, { ...plugging, deviceRing: mutate }),
  };
}

/** A mutation wrapping the usual ring with `wrap`. */
export function wrapRing(wrap: (inner: DeviceQueue, options: DeviceRingOptions) => DeviceQueue): RingMutation {
  return (options) => wrap(deviceRing(options), options);
}
