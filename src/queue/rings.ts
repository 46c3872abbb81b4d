/**
 * The seam between rings and everything above them: builds the device half's and the driver half's
 * ring for the negotiated features and the transport's layout. Callers never name a ring class: the
 * packed ring (2.8) when VIRTIO_F_RING_PACKED was negotiated, else the split ring (2.7). The rules
 * each format follows are in ring-format.ts.
 */

import type { DmaMemory } from '../memory/dma.js';
import type { GuestMemory } from '../memory/guest-memory.js';
import { UsageError } from '../errors.js';
import { VIRTIO_F_EVENT_IDX, VIRTIO_F_IN_ORDER, VIRTIO_F_INDIRECT_DESC, VIRTIO_F_RING_PACKED, hasFeature } from '../spec/features.js';
import { InOrderQueue } from './in-order-queue.js';
import { PackedQueue } from './packed/device-ring.js';
import { PackedQueueDriver } from './packed/driver-ring.js';
import type { RingLayout } from './ring-format.js';
import { SplitQueue } from './split/device-ring.js';
import { SplitQueueDriver } from './split/driver-ring.js';
import type { DeviceQueue, DriverRing, RingAreas } from './types.js';
import type { SnapshotReader } from '../snapshot/snapshot-reader.js';

export interface DeviceRingOptions {
  readonly index: number;
  readonly size: number;
  readonly memory: GuestMemory;
  /** Where the driver put the areas (queue_desc, queue_driver, queue_device). */
  readonly areas: RingAreas;
  /** The features the driver accepted. */
  readonly features: bigint;
  /** Start from this snapshot of the queue (docs/snapshots.md) instead of the ring's initial state; SnapshotError if it cannot be. */
  readonly state?: SnapshotReader;
}

/**
 * The device side of a queue the driver enabled: a PackedQueue when VIRTIO_F_RING_PACKED was
 * negotiated, else a SplitQueue; throws QueueFaultError for a bad size or misplaced areas. With
 * VIRTIO_F_IN_ORDER the ring is behind the in-order layer, so that device models, which complete
 * requests in any order, still use buffers in the order they were made available.
 */
export function deviceRing(options: DeviceRingOptions): DeviceQueue {
  const { index, size, memory, areas, features } = options;
  const ring = {
    index,
    size,
    memory,
    desc: areas.desc,
    driver: areas.driver,
    device: areas.device,
    eventIdx: hasFeature(features, VIRTIO_F_EVENT_IDX),
    indirect: hasFeature(features, VIRTIO_F_INDIRECT_DESC),
  };
  const queue = hasFeature(features, VIRTIO_F_RING_PACKED) ? new PackedQueue(ring) : new SplitQueue(ring);
  const state = options.state;
  if (!hasFeature(features, VIRTIO_F_IN_ORDER)) {
    // Only the in-order layer holds completions back: without it no chain can be waiting so.
    if (state !== undefined && queue.restore(state).some((c) => c.usedLen !== undefined))
      throw state.error('ERR_SNAPSHOT_IN_FLIGHT', 'a completion held back for order on a queue without VIRTIO_F_IN_ORDER');
    return queue;
  }
  const inOrder = new InOrderQueue(queue);
  if (state !== undefined) inOrder.restore(state);
  return inOrder;
}

export interface DriverRingOptions {
  readonly index: number;
  readonly size: number;
  readonly dma: DmaMemory;
  /** The negotiated features. */
  readonly features: bigint;
  /** How the transport places the areas. */
  readonly layout: RingLayout;
}

/**
 * The driver side of a queue, its areas allocated (zeroed) in `dma`; throws UsageError for a bad size,
 * or for the packed ring in the legacy layout (it needs VIRTIO_F_VERSION_1).
 */
export function driverRing<T>(options: DriverRingOptions): DriverRing<T> {
  const { index, size, dma, features } = options;
  // The negotiated features both formats' drivers take.
  const common = {
    index,
    size,
    dma,
    eventIdx: hasFeature(features, VIRTIO_F_EVENT_IDX),
    indirect: hasFeature(features, VIRTIO_F_INDIRECT_DESC),
    inOrder: hasFeature(features, VIRTIO_F_IN_ORDER),
  };
  if (hasFeature(features, VIRTIO_F_RING_PACKED)) {
    if (options.layout === 'legacy')
      throw new UsageError(`queue ${index}: the packed ring needs VIRTIO_F_VERSION_1; the legacy layout cannot carry it`);
    return new PackedQueueDriver<T>(common);
  }
  return new SplitQueueDriver<T>({ ...common, legacy: options.layout === 'legacy' });
}
