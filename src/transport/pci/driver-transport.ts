/**
 * What the driver core needs of a virtio PCI transport, as small operations (after QEMU libqos's
 * QVirtioBus): one implementation over the modern capabilities (modern-driver.ts), one over the
 * legacy BAR0 header. The core picks one at probe time and never mixes them.
 */

import { DeviceFaultError, UsageError } from '../../errors.js';
import type { AccessSize } from '../../memory/access-size.js';

/** Ring addresses a queue is set up with (spec 2.6: descriptor area, driver area, device area). */
export interface QueueAddresses {
  /** Queue size in descriptors. */
  readonly size: number;
  readonly descAddr: number;
  readonly driverAddr: number;
  readonly deviceAddr: number;
}

/** One virtio PCI interface of one function, as the driver core uses it. Every operation is async (the bus may be remote). */
export interface DriverTransport {
  /** Which interface this is, for messages and for the core's feature rules. */
  readonly kind: 'modern' | 'legacy';
  /**
   * Legacy queue rules (spec 4.1.4.10 and 2.7.2's legacy layout): the queue size is the device's
   * and cannot be changed, and the three rings are one contiguous area with the used ring on a
   * 4096-byte boundary, given to the device as a page number. Build rings with the legacy layout
   * when this is true.
   */
  readonly legacyLayout: boolean;
  /** Whether config_generation exists (modern); without it configuration reads cannot be checked for tearing. */
  readonly hasConfigGeneration: boolean;
  /** Bytes of device-specific configuration reachable through {@link readConfig}. */
  readonly deviceConfigSize: number;

  /** Write 0 to device_status and wait (bounded) until it reads back 0 (4.1.4.3.2). */
  reset(): Promise<void>;
  getStatus(): Promise<number>;
  setStatus(status: number): Promise<void>;
  /** All device feature bits the interface can show (every feature select window for modern). */
  deviceFeatures(): Promise<bigint>;
  /** Write the accepted driver features (every window for modern; the low 32 bits for legacy). */
  setDriverFeatures(features: bigint): Promise<void>;
  numQueues(): Promise<number>;
  /** The device's maximum size of queue `index`; 0 means the queue does not exist. */
  queueMaxSize(index: number): Promise<number>;
  /** Tell the device where queue `index` lives (modern: size and three addresses; legacy: the PFN). */
  setupQueue(index: number, queue: QueueAddresses): Promise<void>;
  /** Make queue `index` live (modern queue_enable = 1; legacy queues go live with the PFN). */
  enableQueue(index: number): Promise<void>;
  /**
   * Notify the device about queue `index` (4.1.5.2). `next` is the ring's notification data (bits
   * 16-31, DriverRing.notificationData): with VIRTIO_F_NOTIFICATION_DATA negotiated the 32-bit value
   * of the queue identifier and `next` is written, otherwise the 16-bit queue identifier alone. The
   * identifier is the index, or queue_notif_config_data with VIRTIO_F_NOTIF_CONFIG_DATA. The
   * transport knows what was negotiated from {@link setDriverFeatures}.
   */
  notify(index: number, next: number): Promise<void>;
  /**
   * VIRTIO_F_RING_RESET (2.6.1, 4.1.4.3): write 1 to queue `index`'s queue_reset and wait (bounded)
   * until it reads 0 again and queue_enable reads 0; the device then no longer uses the queue's rings.
   * DeviceFaultError ERR_DEVICE_TIMEOUT when it does not; UsageError on the legacy interface.
   */
  resetQueue(index: number): Promise<void>;
  /** config_generation (4.1.4.3); a constant 0 where the interface has none. */
  configGeneration(): Promise<number>;
  /**
   * Device-specific configuration, `offset + size <= deviceConfigSize` (checked before the access:
   * see {@link checkDeviceConfigAccess}).
   */
  readConfig(offset: number, size: AccessSize): Promise<number>;
  writeConfig(offset: number, size: AccessSize, value: number): Promise<void>;
  /** Read (and so clear) the ISR status byte (4.1.4.5). */
  readIsr(): Promise<number>;
  /** Set config_msix_vector and return the value read back (VIRTIO_MSI_NO_VECTOR when refused). */
  setConfigVector(vector: number): Promise<number>;
  /** Set queue `index`'s queue_msix_vector and return the value read back. */
  setQueueVector(index: number, vector: number): Promise<number>;
  /** The driver enabled or disabled MSI-X on the function (the legacy header moves device configuration, 4.1.4.10). */
  msixChanged(enabled: boolean): void;
  /**
   * admin_queue_index and admin_queue_num as the device reports them (4.1.4.3, valid with
   * VIRTIO_F_ADMIN_VQ negotiated), unchecked: {index: 0, num: 0} when the common configuration
   * structure is too short to hold them. UsageError on the legacy interface, which has neither.
   */
  adminQueues(): Promise<{ readonly index: number; readonly num: number }>;
}

/**
 * Reset through `transport`: write 0 to device status, then poll (backing off up to 50 ms) until it
 * reads 0 (4.1.4.3.2); DeviceFaultError ERR_DEVICE_TIMEOUT after `timeoutMs`.
 */
export async function resetAndWait(transport: Pick<DriverTransport, 'getStatus' | 'setStatus'>, timeoutMs: number): Promise<void> {
  await transport.setStatus(0);
  await pollUntilZero(() => transport.getStatus(), timeoutMs, 'device_status');
}

/**
 * Poll `read` (backing off up to 50 ms) until it returns 0; DeviceFaultError ERR_DEVICE_TIMEOUT
 * naming `what` after `timeoutMs`. The wait of a device reset and of a queue reset (4.1.4.3.2).
 */
export async function pollUntilZero(read: () => Promise<number>, timeoutMs: number, what: string): Promise<void> {
  await pollUntil(read, (value) => value === 0, timeoutMs, `${what} did not read 0 within ${timeoutMs} ms of a reset`);
}

/**
 * Poll `read` (backing off up to 50 ms) until `done` accepts its value, and return that value;
 * DeviceFaultError ERR_DEVICE_TIMEOUT with `timeoutMessage` after `timeoutMs`. A `read` that throws
 * ends the wait with its error.
 */
export async function pollUntil(
  read: () => Promise<number>,
  done: (value: number) => boolean,
  timeoutMs: number,
  timeoutMessage: string,
): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (let delay = 0; ; delay = Math.min(Math.max(1, delay * 2), 50)) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() >= deadline) throw new DeviceFaultError('ERR_DEVICE_TIMEOUT', timeoutMessage);
    await new Promise((resolve) => setTimeout(resolve, delay));
  }
}

/**
 * Check a device-configuration access before it is made. A malformed offset is the caller's
 * UsageError; a field beyond the `length` bytes the device gives (its device-cfg structure, or the
 * rest of legacy BAR0) is the device's fault, DeviceFaultError ERR_DEVICE_CONFIG: a driver reads a
 * field only when the device offered the feature that defines it (5.x device configuration layouts).
 */
export function checkDeviceConfigAccess(offset: number, size: AccessSize, length: number, where: string): void {
  if (!Number.isSafeInteger(offset) || offset < 0) throw new UsageError(`device config offset ${offset} is not a byte offset`);
  if (offset + size > length)
    throw new DeviceFaultError(
      'ERR_DEVICE_CONFIG',
      `device config field [${offset}, +${size}) lies beyond the ${length} bytes of ${where}`,
    );
}
