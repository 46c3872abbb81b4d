/**
 * The two virtqueue formats every device and driver runs on, for tests parametrised over them: the
 * split ring (2.7) and the packed ring (2.8). Which one a pair uses is chosen by negotiation alone:
 * the device offers VIRTIO_F_RING_PACKED or not, the driver takes it when offered ('auto').
 */

import { test, type TestContext } from 'node:test';
import type { RingFormat } from '../../src/queue/ring-format.js';
import { MockPackedQueue } from '../../src/testing/mock-packed-queue.js';
import { MockQueue } from '../../src/testing/mock-queue.js';
import type { MockQueueOptions, MockRing } from '../../src/testing/mock-ring.js';

export type RingName = RingFormat['name'];

export const RING_FORMATS: readonly RingName[] = ['split', 'packed'];

/** VirtioPciFunction options under which a driver left at 'auto' negotiates `ring`. */
export function offering(ring: RingName): { readonly packed: boolean } {
  return { packed: ring === 'packed' };
}

/** A mock ring of format `ring`, playing the driver for device-model tests. */
export function mockRing(ring: RingName, options: MockQueueOptions): MockRing {
  return ring === 'packed' ? new MockPackedQueue(options) : new MockQueue(options);
}

/** One test per ring format, named "<name> (<ring> ring)". */
export function eachRing(name: string, fn: (ring: RingName, t: TestContext) => void | Promise<void>): void {
  for (const ring of RING_FORMATS) test(`${name} (${ring} ring)`, (t) => fn(ring, t));
}
