/**
 * The legacy virtio PCI transport, driver side (spec 4.1.4.10, virtio 0.9.5): every operation is a
 * port access to the header in I/O BAR0; no capability structure is ever touched. Queues are given
 * to the device as a page number of one contiguous ring area in the legacy layout (2.7.2), their
 * size is the device's, and device configuration starts at 20, or 24 while MSI-X is enabled.
 */

import { DeviceFaultError, UsageError } from '../../errors.js';
import type { PciBar } from '../../bus/bars.js';
import type { PciBus } from '../../bus/pci-bus.js';
import type { AccessSize } from '../../memory/access-size.js';
import { descTableSize, legacyUsedOffset } from '../../spec/ring.js';
import {
  VIRTIO_MSI_CONFIG_VECTOR,
  VIRTIO_MSI_NO_VECTOR,
  VIRTIO_MSI_QUEUE_VECTOR,
  VIRTIO_PCI_CONFIG_OFF_MSIX,
  VIRTIO_PCI_CONFIG_OFF_NO_MSIX,
  VIRTIO_PCI_GUEST_FEATURES,
  VIRTIO_PCI_HOST_FEATURES,
  VIRTIO_PCI_ISR,
  VIRTIO_PCI_QUEUE_ADDR_SHIFT,
  VIRTIO_PCI_QUEUE_NOTIFY,
  VIRTIO_PCI_QUEUE_NUM,
  VIRTIO_PCI_QUEUE_PFN,
  VIRTIO_PCI_QUEUE_SEL,
  VIRTIO_PCI_STATUS,
  VIRTIO_PCI_VRING_ALIGN,
} from '../../spec/virtio-pci.js';
import { checkDeviceConfigAccess, resetAndWait, type DriverTransport, type QueueAddresses } from './driver-transport.js';

/** Queues a legacy header can select (QEMU's VIRTIO_QUEUE_MAX): the bound of the queue count scan. */
export const LEGACY_QUEUE_SCAN_LIMIT = 1024;

const PAGE = 2 ** VIRTIO_PCI_QUEUE_ADDR_SHIFT;

export interface LegacyDriverOptions {
  /** How long a reset may take before the device is declared stuck (default 1000 ms). */
  readonly resetTimeoutMs?: number;
}

/** The legacy interface over BAR0 (see the file comment). */
export class LegacyDriverTransport implements DriverTransport {
  readonly kind = 'legacy' as const;
  readonly legacyLayout = true;
  readonly hasConfigGeneration = false;
  private msixEnabled = false;
  private queueCount: number | undefined;
  private readonly resetTimeoutMs: number;

  constructor(
    private readonly bus: PciBus,
    /** The I/O BAR the probe found. */
    readonly bar0: PciBar,
    options: LegacyDriverOptions = {},
  ) {
    this.resetTimeoutMs = options.resetTimeoutMs ?? 1000;
  }

  /** Where device configuration starts now. */
  get configOffset(): number {
    return this.msixEnabled ? VIRTIO_PCI_CONFIG_OFF_MSIX : VIRTIO_PCI_CONFIG_OFF_NO_MSIX;
  }
  /** The header has no length field for device configuration: the rest of the BAR. */
  get deviceConfigSize(): number {
    return Math.max(0, this.bar0.size - this.configOffset);
  }

  private read(offset: number, size: AccessSize): Promise<number> {
    return this.bus.ioRead(this.bar0.base + offset, size);
  }
  private write(offset: number, size: AccessSize, value: number): Promise<void> {
    return this.bus.ioWrite(this.bar0.base + offset, size, value);
  }
  private selectQueue(index: number): Promise<void> {
    return this.write(VIRTIO_PCI_QUEUE_SEL, 2, index);
  }

  reset(): Promise<void> {
    return resetAndWait(this, this.resetTimeoutMs);
  }
  getStatus(): Promise<number> {
    return this.read(VIRTIO_PCI_STATUS, 1);
  }
  setStatus(status: number): Promise<void> {
    return this.write(VIRTIO_PCI_STATUS, 1, status);
  }

  /** The 32 feature bits the legacy header shows. */
  async deviceFeatures(): Promise<bigint> {
    return BigInt((await this.read(VIRTIO_PCI_HOST_FEATURES, 4)) >>> 0);
  }
  async setDriverFeatures(features: bigint): Promise<void> {
    if (features >> 32n !== 0n)
      throw new UsageError(`the legacy interface carries feature bits 0..31 only (asked 0x${features.toString(16)})`);
    await this.write(VIRTIO_PCI_GUEST_FEATURES, 4, Number(features));
  }

  /**
   * The header has no num_queues: queues are counted by selecting each in turn until its size reads
   * 0 (as Linux's legacy driver finds a queue absent), at most {@link LEGACY_QUEUE_SCAN_LIMIT}.
   */
  async numQueues(): Promise<number> {
    if (this.queueCount === undefined) {
      let n = 0;
      while (n < LEGACY_QUEUE_SCAN_LIMIT && (await this.queueMaxSize(n)) !== 0) n++;
      this.queueCount = n;
    }
    return this.queueCount;
  }
  adminQueues(): Promise<{ readonly index: number; readonly num: number }> {
    return Promise.reject(new UsageError('the legacy interface has no administration virtqueues (VIRTIO_F_ADMIN_VQ is feature bit 41)'));
  }
  async queueMaxSize(index: number): Promise<number> {
    const [, size] = await Promise.all([this.selectQueue(index), this.read(VIRTIO_PCI_QUEUE_NUM, 2)]);
    return size;
  }

  /** Check the rings are one legacy area (2.7.2), then write its page number. */
  async setupQueue(index: number, queue: QueueAddresses): Promise<void> {
    const { size, descAddr } = queue;
    if (
      descAddr % PAGE !== 0 ||
      queue.driverAddr !== descAddr + descTableSize(size) ||
      queue.deviceAddr !== descAddr + legacyUsedOffset(size, VIRTIO_PCI_VRING_ALIGN)
    )
      throw new UsageError(`queue ${index}: rings are not one legacy ring area at a ${PAGE}-byte boundary`);
    const pfn = descAddr / PAGE;
    if (pfn === 0 || pfn > 0xffff_ffff)
      throw new UsageError(`queue ${index}: ring area 0x${descAddr.toString(16)} has no 32-bit page number`);
    const [, num, inUse] = await Promise.all([
      this.selectQueue(index),
      this.read(VIRTIO_PCI_QUEUE_NUM, 2),
      this.read(VIRTIO_PCI_QUEUE_PFN, 4),
    ]);
    if (num !== size)
      throw new DeviceFaultError('ERR_DEVICE_QUEUE', `queue ${index}: the device's size is ${num}, the rings were built for ${size}`);
    if (inUse !== 0)
      throw new DeviceFaultError('ERR_DEVICE_QUEUE', `queue ${index}: already active (PFN 0x${inUse.toString(16)}) after a reset`);
    await this.write(VIRTIO_PCI_QUEUE_PFN, 4, pfn);
  }
  /** The PFN write made the queue live. */
  async enableQueue(): Promise<void> {}

  /** The queue index, 16 bits: the legacy interface cannot negotiate notification data (bit 38). */
  async notify(index: number): Promise<void> {
    await this.write(VIRTIO_PCI_QUEUE_NOTIFY, 2, index);
  }

  /** VIRTIO_F_RING_RESET (bit 40) is out of the legacy interface's reach. */
  async resetQueue(index: number): Promise<void> {
    throw new UsageError(`queue ${index}: the legacy interface has no queue reset`);
  }

  /** No config_generation in the legacy header. */
  async configGeneration(): Promise<number> {
    return 0;
  }
  private configAt(offset: number, size: AccessSize): number {
    checkDeviceConfigAccess(offset, size, this.deviceConfigSize, 'BAR0 after the header');
    return this.configOffset + offset;
  }
  // async: a refused access rejects like a failed one, never throws at the call.
  async readConfig(offset: number, size: AccessSize): Promise<number> {
    return this.read(this.configAt(offset, size), size);
  }
  async writeConfig(offset: number, size: AccessSize, value: number): Promise<void> {
    return this.write(this.configAt(offset, size), size, value);
  }
  readIsr(): Promise<number> {
    return this.read(VIRTIO_PCI_ISR, 1);
  }

  /** The vector registers exist only while MSI-X is enabled; without it nothing can be assigned. */
  async setConfigVector(vector: number): Promise<number> {
    if (!this.msixEnabled) return VIRTIO_MSI_NO_VECTOR;
    await this.write(VIRTIO_MSI_CONFIG_VECTOR, 2, vector);
    return this.read(VIRTIO_MSI_CONFIG_VECTOR, 2);
  }
  async setQueueVector(index: number, vector: number): Promise<number> {
    if (!this.msixEnabled) return VIRTIO_MSI_NO_VECTOR;
    const [, , readBack] = await Promise.all([
      this.selectQueue(index),
      this.write(VIRTIO_MSI_QUEUE_VECTOR, 2, vector),
      this.read(VIRTIO_MSI_QUEUE_VECTOR, 2),
    ]);
    return readBack;
  }
  msixChanged(enabled: boolean): void {
    this.msixEnabled = enabled;
  }
}
