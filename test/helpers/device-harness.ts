/**
 * A device model driven directly through its queues: one MockQueue (or MockPackedQueue) per queue (each in its own region
 * of a shared guest memory), a host that records what the device asked of the transport, and
 * activate/notify as a transport would call them.
 */

import type { VirtioDevice, VirtioDeviceHost } from '../../src/core/virtio-device.js';
import { ArrayGuestMemory, RegionGuestMemory } from '../../src/memory/guest-memory.js';
import type { DeviceQueue } from '../../src/queue/types.js';
import { MockPackedQueue } from '../../src/testing/mock-packed-queue.js';
import { MockQueue } from '../../src/testing/mock-queue.js';
import type { MockQueueOptions, MockRing } from '../../src/testing/mock-ring.js';
import type { RingName } from './ring-formats.js';

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

export interface DeviceHarness<Q extends MockRing = MockQueue> {
  readonly host: RecordingHost;
  /** The driver's side of each queue (undefined where the queue was left disabled). */
  readonly queues: readonly (Q | undefined)[];
  /** queues[i], asserting it exists. */
  q(index: number): Q;
}

export interface HarnessOptions {
  readonly size?: number;
  readonly regionSize?: number;
  readonly enabled?: readonly number[];
  readonly seed?: number;
  /** Stand between the device and queue `index` (e.g. to play a driver that acts while the device works). */
  readonly intercept?: (index: number, queue: DeviceQueue) => DeviceQueue;
}

/**
 * Attach `device`, build split queues `enabled` (default all) of `size` descriptors and `regionSize`
 * bytes each, and activate it with `features`.
 */
export function activateDevice(device: VirtioDevice, features: bigint, options: HarnessOptions = {}): DeviceHarness {
  return activateWith(device, features, options, (o) => new MockQueue(o));
}

/** {@link activateDevice} with packed queues (VIRTIO_F_RING_PACKED): the same device-model tests on the other format. */
export function activatePackedDevice(device: VirtioDevice, features: bigint, options: HarnessOptions = {}): DeviceHarness<MockPackedQueue> {
  return activateWith(device, features, options, (o) => new MockPackedQueue(o));
}

function activateWith<Q extends MockRing>(
  device: VirtioDevice,
  features: bigint,
  options: HarnessOptions,
  mock: (options: MockQueueOptions) => Q,
): DeviceHarness<Q> {
  const size = options.size ?? 16;
  const regionSize = options.regionSize ?? 1 << 18;
  const count = device.queueMaxSizes.length;
  const enabled = new Set(options.enabled ?? Array.from({ length: count }, (_, i) => i));
  const regions = Array.from({ length: count }, (_, i) => new ArrayGuestMemory(regionSize, (i + 1) * regionSize * 2));
  const host = new RecordingHost(new RegionGuestMemory(regions));
  const queues = regions.map((memory, i) =>
    enabled.has(i) ? mock({ size, memory, base: memory.base, seed: (options.seed ?? 1) + i }) : undefined,
  );
  const intercept = options.intercept ?? ((_: number, queue: DeviceQueue) => queue);
  device.attach(host);
  device.activate({ features, queues: queues.map((mq, i) => (mq ? intercept(i, mq.deviceQueue({ index: i })) : null)) });
  return {
    host,
    queues,
    q(index: number): Q {
      const mq = queues[index];
      if (!mq) throw new Error(`queue ${index} is not enabled`);
      return mq;
    },
  };
}

/** {@link activateDevice} or {@link activatePackedDevice}, by ring format: device-model tests parametrised over both. */
export function activateOnRing(
  ring: RingName,
  device: VirtioDevice,
  features: bigint,
  options: HarnessOptions = {},
): DeviceHarness<MockRing> {
  return ring === 'packed' ? activatePackedDevice(device, features, options) : activateDevice(device, features, options);
}
