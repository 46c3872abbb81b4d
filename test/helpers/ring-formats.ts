/**
 * The two virtqueue formats every device and driver runs on, for tests parametrised over them: the
 * split ring (2.7) and the packed ring (2.8). Which one a pair uses is chosen by negotiation alone:
 * the device offers VIRTIO_F_RING_PACKED or not, the driver takes it when offered ('auto').
 */

import type { RingFormat } from '../../src/queue/ring-format.js';

export type RingName = RingFormat['name'];

export const RING_FORMATS: readonly RingName[] = ['split', 'packed'];

/** VirtioPciFunction options under which a driver left at 'auto' negotiates `ring`. */
export function offering(ring: RingName): { readonly packed: boolean } {
  return { packed: ring === 'packed' };
}
