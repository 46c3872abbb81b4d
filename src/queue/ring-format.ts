/**
 * The rules of each ring format, in one place: which queue sizes it allows, how long and how large a
 * descriptor chain may be, and how its areas are aligned in each layout a transport uses. Everything
 * above queue/ asks here (and builds rings through rings.ts) instead of restating a rule; the ring
 * classes check against the same records.
 *
 * Two formats: the split ring (2.7) and the packed ring (2.8, chosen by VIRTIO_F_RING_PACKED);
 * {@link ringFormat} picks one from the negotiated features.
 */

import { UsageError } from '../errors.js';
import { VIRTIO_F_RING_PACKED, hasFeature } from '../spec/features.js';
import { NOTIFY_DATA_PACKED_OFF_MASK, PVIRTQ_DESC_ALIGN, PVIRTQ_EVENT_ALIGN } from '../spec/packed-ring.js';
import { VIRTQ_AVAIL_ALIGN, VIRTQ_DESC_ALIGN, VIRTQ_MAX_SIZE, VIRTQ_USED_ALIGN } from '../spec/ring.js';
import { VIRTIO_PCI_VRING_ALIGN } from '../spec/virtio-pci.js';

/**
 * How a transport places a ring's three areas: `separate` (the modern interface, 4.1.4.3: each area
 * has its own address) or `legacy` (2.7.2: one contiguous area from a page frame number).
 */
export type RingLayout = 'separate' | 'legacy';

/** Minimum alignment, in bytes, of each ring area (descriptor area, driver area, device area). */
export interface AreaAlignment {
  readonly desc: number;
  readonly driver: number;
  readonly device: number;
}

export interface RingFormat {
  readonly name: 'split' | 'packed';
  /** The largest queue size (2.6: 32768). */
  readonly maxQueueSize: number;
  /** Whether a queue may have `size` entries. */
  isQueueSize(size: number): boolean;
  /** The largest allowed queue size not above `max` (`max` at least 1). */
  largestQueueSize(max: number): number;
  /** Most buffers a chain may hold in a queue of `size`, indirect tables included. */
  maxChainBuffers(size: number): number;
  /** Most bytes a chain may hold. */
  readonly maxChainBytes: number;
  /** Area alignment in the separate layout. */
  readonly areaAlign: AreaAlignment;
  /**
   * The legacy layout's alignment of the whole area and of its device area (2.7.2 "QueueAlign"), or
   * null for a format the legacy interface cannot carry (the packed ring needs VIRTIO_F_VERSION_1).
   */
  readonly legacyAlign: number | null;
  /**
   * Whether `next` (bits 16-31 of a VIRTIO_F_NOTIFICATION_DATA notification, 2.9) can describe a
   * queue of `size` in some order of events a driver following the spec can produce.
   */
  isNotificationNext(next: number, size: number): boolean;
}

function isPowerOfTwo(n: number): boolean {
  return Number.isInteger(n) && n >= 1 && (n & (n - 1)) === 0;
}

/** The split virtqueue (2.7). */
export const SPLIT_RING: RingFormat & { readonly legacyAlign: number } = {
  name: 'split',
  maxQueueSize: VIRTQ_MAX_SIZE,
  // 2.7: "Queue Size ... MUST be a power of 2" (no VIRTIO_F_RING_PACKED), at most 32768.
  isQueueSize: (size) => isPowerOfTwo(size) && size <= VIRTQ_MAX_SIZE,
  largestQueueSize: (max) => {
    let size = 1;
    while (size * 2 <= Math.min(max, VIRTQ_MAX_SIZE)) size *= 2;
    return size;
  },
  // 2.7.5.3.1: a chain is never longer than the queue size, counting an indirect table's entries.
  maxChainBuffers: (size) => size,
  // 2.7.4: the total length of a chain's buffers is at most 2^32.
  maxChainBytes: 2 ** 32,
  areaAlign: { desc: VIRTQ_DESC_ALIGN, driver: VIRTQ_AVAIL_ALIGN, device: VIRTQ_USED_ALIGN },
  legacyAlign: VIRTIO_PCI_VRING_ALIGN,
  // 2.9: the next avail index, any 16-bit value. One behind the device's position can be a late
  // notification for buffers the device already took (notifications may repeat, 2.9): none is impossible.
  isNotificationNext: () => true,
};

/** The packed virtqueue (2.8). */
export const PACKED_RING: RingFormat = {
  name: 'packed',
  maxQueueSize: VIRTQ_MAX_SIZE,
  // 2.6: without VIRTIO_F_RING_PACKED the size must be a power of 2; with it any size up to 32768.
  isQueueSize: (size) => Number.isInteger(size) && size >= 1 && size <= VIRTQ_MAX_SIZE,
  largestQueueSize: (max) => Math.max(1, Math.min(max, VIRTQ_MAX_SIZE)),
  // 2.8.18 / 2.8.19: a chain (an indirect table's entries included) is never longer than the queue.
  maxChainBuffers: (size) => size,
  maxChainBytes: 2 ** 32,
  areaAlign: { desc: PVIRTQ_DESC_ALIGN, driver: PVIRTQ_EVENT_ALIGN, device: PVIRTQ_EVENT_ALIGN },
  legacyAlign: null,
  // 2.9: next_off is an offset within the descriptor ring, so below the queue size; any wrap counter.
  isNotificationNext: (next, size) => (next & NOTIFY_DATA_PACKED_OFF_MASK) < size,
};

/** The ring format the negotiated `features` select. */
export function ringFormat(features: bigint): RingFormat {
  return hasFeature(features, VIRTIO_F_RING_PACKED) ? PACKED_RING : SPLIT_RING;
}

/**
 * Check a device model's maximum queue size option: one that every ring format the transports offer
 * accepts (the split ring's rule), at least `min`. Throws UsageError naming `option`.
 */
export function checkQueueMaxSize(option: string, size: number, min = 1): void {
  if (!(SPLIT_RING.isQueueSize(size) && size >= min)) {
    throw new UsageError(`${option} must be a power of two in [${min}, ${SPLIT_RING.maxQueueSize}], got ${size}`);
  }
}
