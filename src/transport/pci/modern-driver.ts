/**
 * The modern virtio PCI transport, driver side (spec 4.1.4): every operation goes through the
 * structures the probe found (common, notify, ISR and device configuration), never through BAR0.
 */

import { DeviceFaultError, UsageError } from '../../errors.js';
import { splitU64 } from '../../memory/guest-memory.js';
import type { AccessSize } from '../../memory/access-size.js';
import type { PciBus } from '../../bus/pci-bus.js';
import { notificationValue } from '../../queue/notification-data.js';
import { VIRTIO_F_NOTIFICATION_DATA, VIRTIO_F_NOTIF_CONFIG_DATA, featureWord, hasFeature, withFeatureWord } from '../../spec/features.js';
import {
  VIRTIO_PCI_COMMON_ADM_Q_IDX,
  VIRTIO_PCI_COMMON_ADM_Q_NUM,
  VIRTIO_PCI_COMMON_CFGGENERATION,
  VIRTIO_PCI_COMMON_DF,
  VIRTIO_PCI_COMMON_DFSELECT,
  VIRTIO_PCI_COMMON_GF,
  VIRTIO_PCI_COMMON_GFSELECT,
  VIRTIO_PCI_COMMON_MSIX,
  VIRTIO_PCI_COMMON_NUMQ,
  VIRTIO_PCI_COMMON_Q_AVAILLO,
  VIRTIO_PCI_COMMON_Q_DESCLO,
  VIRTIO_PCI_COMMON_Q_ENABLE,
  VIRTIO_PCI_COMMON_Q_MSIX,
  VIRTIO_PCI_COMMON_Q_NDATA,
  VIRTIO_PCI_COMMON_Q_NOFF,
  VIRTIO_PCI_COMMON_Q_RESET,
  VIRTIO_PCI_COMMON_Q_SELECT,
  VIRTIO_PCI_COMMON_Q_SIZE,
  VIRTIO_PCI_COMMON_Q_USEDLO,
  VIRTIO_PCI_COMMON_STATUS,
} from '../../spec/virtio-pci.js';
import { checkDeviceConfigAccess, pollUntilZero, resetAndWait, type DriverTransport, type QueueAddresses } from './driver-transport.js';
import type { ModernLayout, VirtioStructure } from './probe.js';

/** Feature select windows read and written: bits 0..127, every bit the spec defines today. */
const FEATURE_WINDOWS = 4;

export interface ModernDriverOptions {
  /** How long a reset may take before the device is declared stuck (default 1000 ms). */
  readonly resetTimeoutMs?: number;
}

/**
 * The notification address of a queue (spec 4.1.4.4): cap.offset + queue_notify_off *
 * notify_off_multiplier, as a bus address, checked to leave room for a `width`-byte write inside the
 * notify structure (4.1.4.4.1). Undefined when it does not.
 */
export function notifyAddress(notify: ModernLayout['notify'], queueNotifyOff: number, width: number): number | undefined {
  const offset = queueNotifyOff * notify.notifyOffMultiplier; // both below 2^32: exact
  return offset + width <= notify.length ? notify.address + offset : undefined;
}

/** Where and what the driver writes to notify one queue (4.1.5.2), learnt at its set-up. */
interface QueueNotifier {
  /** The bus address of the queue's notification (4.1.4.4). */
  readonly address: number;
  /** The queue identifier: its index, or queue_notif_config_data with VIRTIO_F_NOTIF_CONFIG_DATA. */
  readonly vqn: number;
}

/**
 * The modern interface over the structures a {@link ModernLayout} names. Only the notify addresses
 * of queues that were set up are kept (read from queue_notify_off once, at set-up).
 */
export class ModernDriverTransport implements DriverTransport {
  readonly kind = 'modern' as const;
  readonly legacyLayout = false;
  readonly hasConfigGeneration = true;
  readonly deviceConfigSize: number;
  private readonly notifiers = new Map<number, QueueNotifier>();
  /** The features written by {@link setDriverFeatures}: they decide what a notification carries. */
  private driverFeatures = 0n;
  private readonly resetTimeoutMs: number;

  constructor(
    private readonly bus: PciBus,
    readonly layout: ModernLayout,
    options: ModernDriverOptions = {},
  ) {
    this.deviceConfigSize = layout.device?.length ?? 0;
    this.resetTimeoutMs = options.resetTimeoutMs ?? 1000;
  }

  /** An access inside a structure, in the address space of its BAR (`space`). */
  private read(space: VirtioStructure['space'], addr: number, size: AccessSize): Promise<number> {
    return space === 'io' ? this.bus.ioRead(addr, size) : this.bus.memRead(addr, size);
  }
  private write(space: VirtioStructure['space'], addr: number, size: AccessSize, value: number): Promise<void> {
    return space === 'io' ? this.bus.ioWrite(addr, size, value) : this.bus.memWrite(addr, size, value);
  }
  private readCommon(offset: number, size: AccessSize): Promise<number> {
    return this.read(this.layout.common.space, this.layout.common.address + offset, size);
  }
  private writeCommon(offset: number, size: AccessSize, value: number): Promise<void> {
    return this.write(this.layout.common.space, this.layout.common.address + offset, size, value);
  }
  /** A 64-bit common-cfg field, written as its lo then hi half (4.1.4.3: 64-bit fields in two 32-bit accesses). */
  private writeCommon64(loOffset: number, value: number): Promise<void>[] {
    const [lo, hi] = splitU64(value);
    return [this.writeCommon(loOffset, 4, lo), this.writeCommon(loOffset + 4, 4, hi)];
  }
  private selectQueue(index: number): Promise<void> {
    return this.writeCommon(VIRTIO_PCI_COMMON_Q_SELECT, 2, index);
  }

  reset(): Promise<void> {
    return resetAndWait(this, this.resetTimeoutMs);
  }
  getStatus(): Promise<number> {
    return this.readCommon(VIRTIO_PCI_COMMON_STATUS, 1);
  }
  setStatus(status: number): Promise<void> {
    return this.writeCommon(VIRTIO_PCI_COMMON_STATUS, 1, status);
  }

  async deviceFeatures(): Promise<bigint> {
    // Select/read pairs issued together: the bus performs them in order, and pipelines them.
    const words = await Promise.all(
      Array.from({ length: FEATURE_WINDOWS }, (_, select) =>
        Promise.all([this.writeCommon(VIRTIO_PCI_COMMON_DFSELECT, 4, select), this.readCommon(VIRTIO_PCI_COMMON_DF, 4)]),
      ),
    );
    return words.reduce((features, [, word], select) => withFeatureWord(features, select, word), 0n);
  }
  async setDriverFeatures(features: bigint): Promise<void> {
    if (features >> BigInt(32 * FEATURE_WINDOWS) !== 0n)
      throw new UsageError(`feature bits above ${32 * FEATURE_WINDOWS - 1} cannot be written`);
    const writes: Promise<void>[] = [];
    for (let select = 0; select < FEATURE_WINDOWS; select++) {
      writes.push(
        this.writeCommon(VIRTIO_PCI_COMMON_GFSELECT, 4, select),
        this.writeCommon(VIRTIO_PCI_COMMON_GF, 4, featureWord(features, select)),
      );
    }
    await Promise.all(writes);
    this.driverFeatures = features;
  }

  /** 4.1.5.2: a 32-bit notification with VIRTIO_F_NOTIFICATION_DATA, else 16 bits. */
  private get notifyWidth(): 2 | 4 {
    return hasFeature(this.driverFeatures, VIRTIO_F_NOTIFICATION_DATA) ? 4 : 2;
  }

  numQueues(): Promise<number> {
    return this.readCommon(VIRTIO_PCI_COMMON_NUMQ, 2);
  }
  async adminQueues(): Promise<{ readonly index: number; readonly num: number }> {
    // A structure of 1.2's length (56 bytes, through queue_device) has no administration fields.
    if (this.layout.common.length < VIRTIO_PCI_COMMON_ADM_Q_NUM + 2) return { index: 0, num: 0 };
    const [index, num] = await Promise.all([
      this.readCommon(VIRTIO_PCI_COMMON_ADM_Q_IDX, 2),
      this.readCommon(VIRTIO_PCI_COMMON_ADM_Q_NUM, 2),
    ]);
    return { index, num };
  }
  async queueMaxSize(index: number): Promise<number> {
    const [, size] = await Promise.all([this.selectQueue(index), this.readCommon(VIRTIO_PCI_COMMON_Q_SIZE, 2)]);
    return size;
  }
  async setupQueue(index: number, queue: QueueAddresses): Promise<void> {
    // Issued together and performed in order: select, size, addresses, then the queue_size and
    // queue_notify_off reads.
    const writes = [
      this.selectQueue(index),
      this.writeCommon(VIRTIO_PCI_COMMON_Q_SIZE, 2, queue.size),
      ...this.writeCommon64(VIRTIO_PCI_COMMON_Q_DESCLO, queue.descAddr),
      ...this.writeCommon64(VIRTIO_PCI_COMMON_Q_AVAILLO, queue.driverAddr),
      ...this.writeCommon64(VIRTIO_PCI_COMMON_Q_USEDLO, queue.deviceAddr),
    ];
    const configData = hasFeature(this.driverFeatures, VIRTIO_F_NOTIF_CONFIG_DATA);
    const [, size, off, vqn] = await Promise.all([
      Promise.all(writes),
      this.readCommon(VIRTIO_PCI_COMMON_Q_SIZE, 2),
      this.readCommon(VIRTIO_PCI_COMMON_Q_NOFF, 2),
      configData ? this.readCommon(VIRTIO_PCI_COMMON_Q_NDATA, 2) : index,
    ]);
    // 4.1.4.3: the rings were built for the size written; a device that kept another would walk past them.
    if (size !== queue.size)
      throw new DeviceFaultError('ERR_DEVICE_QUEUE', `queue ${index}: queue_size reads ${size} after the driver wrote ${queue.size}`);
    const width = this.notifyWidth;
    const address = notifyAddress(this.layout.notify, off, width);
    if (address === undefined)
      throw new DeviceFaultError(
        'ERR_DEVICE_QUEUE',
        `queue ${index}: queue_notify_off ${off} x multiplier ${this.layout.notify.notifyOffMultiplier} leaves no room for a ${width}-byte notification in the notify structure (length ${this.layout.notify.length})`,
      );
    // 4.1.4.4: with NOTIFICATION_DATA the device keeps every notify address 4-byte aligned.
    if (address % width !== 0)
      throw new DeviceFaultError(
        'ERR_DEVICE_QUEUE',
        `queue ${index}: notify address 0x${address.toString(16)} is not ${width}-byte aligned`,
      );
    this.notifiers.set(index, { address, vqn });
  }
  async enableQueue(index: number): Promise<void> {
    await Promise.all([this.selectQueue(index), this.writeCommon(VIRTIO_PCI_COMMON_Q_ENABLE, 2, 1)]);
  }
  async notify(index: number, next: number): Promise<void> {
    const q = this.notifiers.get(index);
    if (q === undefined) throw new UsageError(`queue ${index} was not set up`);
    const width = this.notifyWidth;
    return this.write(this.layout.notify.space, q.address, width, width === 4 ? notificationValue(q.vqn, next) : q.vqn);
  }
  async resetQueue(index: number): Promise<void> {
    await Promise.all([this.selectQueue(index), this.writeCommon(VIRTIO_PCI_COMMON_Q_RESET, 2, 1)]);
    // 4.1.4.3.2: done only once queue_reset reads 0 again. Selected on every read: set-up of
    // another queue may run meanwhile.
    const read = async (offset: number): Promise<number> => (await Promise.all([this.selectQueue(index), this.readCommon(offset, 2)]))[1];
    await pollUntilZero(() => read(VIRTIO_PCI_COMMON_Q_RESET), this.resetTimeoutMs, `queue ${index}'s queue_reset`);
    const enabled = await read(VIRTIO_PCI_COMMON_Q_ENABLE);
    if (enabled !== 0)
      throw new DeviceFaultError('ERR_DEVICE_QUEUE', `queue ${index}: queue_enable reads ${enabled} after the queue reset completed`);
    this.notifiers.delete(index);
  }

  configGeneration(): Promise<number> {
    return this.readCommon(VIRTIO_PCI_COMMON_CFGGENERATION, 1);
  }
  private deviceConfigAddress(offset: number, size: AccessSize): number {
    checkDeviceConfigAccess(offset, size, this.deviceConfigSize, 'the device-cfg structure');
    return this.layout.device!.address + offset;
  }
  async readConfig(offset: number, size: AccessSize): Promise<number> {
    return this.read(this.layout.device?.space, this.deviceConfigAddress(offset, size), size);
  }
  async writeConfig(offset: number, size: AccessSize, value: number): Promise<void> {
    return this.write(this.layout.device?.space, this.deviceConfigAddress(offset, size), size, value);
  }
  readIsr(): Promise<number> {
    return this.read(this.layout.isr.space, this.layout.isr.address, 1);
  }

  async setConfigVector(vector: number): Promise<number> {
    await this.writeCommon(VIRTIO_PCI_COMMON_MSIX, 2, vector);
    return this.readCommon(VIRTIO_PCI_COMMON_MSIX, 2);
  }
  async setQueueVector(index: number, vector: number): Promise<number> {
    const [, , readBack] = await Promise.all([
      this.selectQueue(index),
      this.writeCommon(VIRTIO_PCI_COMMON_Q_MSIX, 2, vector),
      this.readCommon(VIRTIO_PCI_COMMON_Q_MSIX, 2),
    ]);
    return readBack;
  }
  /** Nothing moves on the modern interface. */
  msixChanged(): void {}
}
