/**
 * A device model driven directly through its queues: one MockQueue per queue (each in its own region
 * of a shared guest memory), a host that records what the device asked of the transport, and
 * activate/notify as a transport would call them.
 */

import type { VirtioDevice, VirtioDeviceHost } from '../../src/core/virtio-device.js';
import { ArrayGuestMemory, RegionGuestMemory } from '../../src/memory/guest-memory.js';
import { MockQueue } from '../../src/testing/mock-queue.js';

export class RecordingHost implements VirtioDeviceHost {
  configChanges = 0;
  readonly used: number[] = [];
  readonly resets: Error[] = [];
  constructor(readonly memory: RegionGuestMemory) {}
  configChanged(): void {
    this.configChanges++;
  }
  usedBuffers(index: number): void {
    this.used.push(index);
  }
  needsReset(cause: Error): void {
    this.resets.push(cause);
  }
}

export interface DeviceHarness {
  readonly host: RecordingHost;
  /** The driver's side of each queue (undefined where the queue was left disabled). */
  readonly queues: readonly (MockQueue | undefined)[];
  /** queues[i], asserting it exists. */
  q(index: number): MockQueue;
}

/**
 * Attach `device`, build queues `enabled` (default all) of `size` descriptors and `regionSize` bytes
 * each, and activate it with `features`.
 */
export function activateDevice(
  device: VirtioDevice,
  features: bigint,
  options: { size?: number; regionSize?: number; enabled?: readonly number[]; seed?: number } = {},
): DeviceHarness {
  const size = options.size ?? 16;
  const regionSize = options.regionSize ?? 1 << 18;
  const count = device.queueMaxSizes.length;
  const enabled = new Set(options.enabled ?? Array.from({ length: count }, (_, i) => i));
  const regions = Array.from({ length: count }, (_, i) => new ArrayGuestMemory(regionSize, (i + 1) * regionSize * 2));
  const host = new RecordingHost(new RegionGuestMemory(regions));
  const queues = regions.map((memory, i) =>
    enabled.has(i) ? new MockQueue({ size, memory, base: memory.base, seed: (options.seed ?? 1) + i }) : undefined,
  );
  device.attach(host);
  device.activate({ features, queues: queues.map((mq, i) => mq?.deviceQueue({ index: i }) ?? null) });
  return {
    host,
    queues,
    q(index: number): MockQueue {
      const mq = queues[index];
      if (!mq) throw new Error(`queue ${index} is not enabled`);
      return mq;
    },
  };
}
