/**
 * Setting up the driver's virtqueues (4.1.5.1.3): the queue exists and is available, its size (the
 * legacy interface's fixed one, or one the negotiated ring format allows), its rings in DMA memory,
 * where they are, its MSI-X vector, queue_enable; and the check of the administration queue range
 * the device reports (4.1.4.3.1). The driver core (virtio-driver.ts) keeps the queues it set up;
 * the device's side is core/virtqueues.ts.
 */

import { DeviceFaultError, UsageError } from '../errors.js';
import { ringFormat, type RingFormat } from '../queue/ring-format.js';
import { driverRing } from '../queue/rings.js';
import type { DriverRing } from '../queue/types.js';
import { VIRTIO_MSI_NO_VECTOR } from '../spec/virtio-pci.js';
import type { DriverTransport } from '../transport/pci/driver-transport.js';
import type { InterruptPlan } from '../transport/pci/msix-driver.js';
import type { PciBus } from '../bus/pci-bus.js';

export interface QueueOptions {
  /** Queue size (one the negotiated ring format allows: a power of 2 for the split ring; at most the device's maximum; default the largest allowed). Ignored by the legacy interface, whose size is fixed. */
  readonly size?: number;
  /** Without `size`: the largest default, so that a device offering 32768 cannot make the driver allocate for 32768. */
  readonly maxSize?: number;
}

/** 4.1.4.3.1: administration queue indices fit in 16 bits. */
const QUEUE_INDEX_LIMIT = 0x10000;

/** What setting up a queue needs of the driver core (VirtioDriver is one). */
export interface QueueSetupHost {
  readonly bus: PciBus;
  readonly transport: DriverTransport;
  /** The negotiated features: they choose the ring format. */
  readonly features: bigint;
  /** How the device interrupts the driver (undefined before feature negotiation). */
  readonly interrupts: InterruptPlan | undefined;
}

/**
 * Check the administration queue range the device reports, `num` queues from `index` (4.1.4.3.1:
 * at least one, past num_queues and inside 16 bits): DeviceFaultError ERR_DEVICE_QUEUE otherwise.
 */
export function checkAdminQueueRange(index: number, num: number, numQueues: number): void {
  if (num === 0) throw new DeviceFaultError('ERR_DEVICE_QUEUE', 'VIRTIO_F_ADMIN_VQ negotiated, but admin_queue_num is 0');
  if (index < numQueues)
    throw new DeviceFaultError('ERR_DEVICE_QUEUE', `admin_queue_index ${index} lies among the device's ${numQueues} queues (num_queues)`);
  if (index + num > QUEUE_INDEX_LIMIT)
    throw new DeviceFaultError('ERR_DEVICE_QUEUE', `admin_queue_index ${index} + admin_queue_num ${num} passes queue index 0xffff`);
}

/**
 * Check queue `index` exists (an administration queue where `isAdminQueue` says so), allocate its
 * rings, tell the device where they are and enable it (4.1.5.1.3).
 */
export async function configureVirtqueue<T>(
  host: QueueSetupHost,
  index: number,
  options: QueueOptions,
  isAdminQueue: (index: number) => boolean,
): Promise<DriverRing<T>> {
  const transport = host.transport;
  const numQueues = await transport.numQueues();
  const admin = isAdminQueue(index);
  if (!Number.isInteger(index) || index < 0 || (index >= numQueues && !admin))
    throw new DeviceFaultError('ERR_DEVICE_QUEUE', `queue ${index} does not exist (num_queues ${numQueues})`);
  const max = await transport.queueMaxSize(index);
  if (max === 0) throw new DeviceFaultError('ERR_DEVICE_QUEUE', `queue ${index} is not available (queue_size 0)`);
  const format = ringFormat(host.features);
  let size: number;
  if (transport.legacyLayout) {
    // The legacy interface fixes the size; a split ring needs a power of 2 (2.7).
    if (!format.isQueueSize(max))
      throw new DeviceFaultError('ERR_DEVICE_QUEUE', `queue ${index}: fixed size ${max} is not a ${format.name} ring queue size`);
    size = max;
  } else size = chooseQueueSize(format, index, max, options.size, options.maxSize);
  let ring: DriverRing<T>;
  try {
    ring = driverRing<T>({
      index,
      size,
      dma: host.bus.dma,
      features: host.features,
      layout: transport.legacyLayout ? 'legacy' : 'separate',
    });
  } catch (cause) {
    // The size is the device's (or within its maximum): rings that do not fit are its demand.
    throw new DeviceFaultError('ERR_DEVICE_QUEUE', `queue ${index}: rings for size ${size} do not fit in DMA memory`, { cause });
  }
  try {
    await ring.flushRings(); // zeroed rings in place before the device learns where they are
    await transport.setupQueue(index, {
      size,
      descAddr: ring.areas.desc,
      driverAddr: ring.areas.driver,
      deviceAddr: ring.areas.device,
    });
    const plan = host.interrupts;
    if (plan !== undefined && plan.kind !== 'intx') {
      // 4.1.5.1.3: the queue's vector before queue_enable; a device that refuses it now is faulty.
      // The per-queue plan has vectors for num_queues queues only; an administration queue is polled.
      const want = admin && plan.kind === 'msix-per-queue' ? VIRTIO_MSI_NO_VECTOR : plan.queueVector(index);
      const got = await transport.setQueueVector(index, want);
      if (got !== want)
        throw new DeviceFaultError(
          'ERR_DEVICE_QUEUE',
          `queue ${index}: the device read back MSI-X vector 0x${got.toString(16)} (wrote ${want})`,
        );
    }
    await transport.enableQueue(index);
  } catch (err) {
    // Not enabled, so the device may not use the rings (4.1.4.3.2): they go back at once.
    ring.destroy();
    throw err;
  }
  return ring;
}

/**
 * The queue size to use: `wanted` or the largest size up to `max` and `cap` that `format` allows
 * (a power of 2 for the split ring, any size for the packed ring).
 */
function chooseQueueSize(format: RingFormat, index: number, max: number, wanted: number | undefined, cap = max): number {
  if (wanted !== undefined) {
    if (!format.isQueueSize(wanted))
      throw new UsageError(`queue ${index}: size ${wanted} is not a ${format.name} ring queue size (up to ${format.maxQueueSize})`);
    if (wanted > max) throw new UsageError(`queue ${index}: size ${wanted} exceeds the device's maximum ${max}`);
    return wanted;
  }
  return format.largestQueueSize(Math.min(max, cap));
}
