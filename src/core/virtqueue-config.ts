/**
 * One virtqueue's configuration as the driver programs it through its transport (4.1.4.3:
 * queue_size, queue_enable, queue_desc, queue_driver, queue_device), in transport-neutral words.
 * The device core decides when a field may change; this holds the values.
 */

import { joinU64 } from '../memory/guest-memory.js';

/** The three ring areas (4.1.4.3: queue_desc, queue_driver, queue_device). */
export type RingArea = 'desc' | 'driver' | 'device';
export const RING_AREAS: readonly RingArea[] = ['desc', 'driver', 'device'];

/** One virtqueue's configuration as the driver programs it. */
export class VirtqueueConfig {
  size: number;
  enabled = false;
  /** A queue reset (2.6.1.1) waiting for the queue's old operations: queue_reset reads 1 meanwhile. */
  resetPending = false;
  /** lo, hi halves of desc, driver, device. */
  private readonly halves = new Uint32Array(6);

  constructor(
    readonly index: number,
    readonly maxSize: number,
  ) {
    this.size = maxSize;
  }

  ringHalf(area: RingArea, half: 0 | 1): number {
    return this.halves[RING_AREAS.indexOf(area) * 2 + half]!;
  }
  setRingHalf(area: RingArea, half: 0 | 1, value: number): void {
    this.halves[RING_AREAS.indexOf(area) * 2 + half] = value >>> 0;
  }
  /** The 64-bit address (joined, never truncated). */
  ringAddress(area: RingArea): number {
    return joinU64(this.ringHalf(area, 0), this.ringHalf(area, 1));
  }

  reset(): void {
    this.size = this.maxSize;
    this.enabled = false;
    this.resetPending = false;
    this.halves.fill(0);
  }
}
