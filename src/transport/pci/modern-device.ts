/**
 * The modern virtio-pci transport, device side (spec 4.1.4): the five vendor capabilities and the
 * register blocks they point at, over a {@link DeviceCore}.
 *
 * Layout (QEMU 7.2's, so that a differential run against QEMU shows only real differences):
 * BAR4, 64-bit prefetchable memory, 16 KiB: common cfg at 0x0, ISR at 0x1000, device cfg at
 * 0x2000, notify at 0x3000 (notify_off_multiplier 4, queue_notify_off = queue index), each block
 * 0x1000 long. Capabilities from 0x40 in the order common, ISR, device, notify, PCI_CFG (the list
 * head at 0x34 is the last added, as in QEMU). BAR0 (legacy I/O) and BAR1 (MSI-X) stay free.
 *
 * Access rules, as QEMU 7.2 behaves (checked by a qtest differential; spec 4.1.3.1 leaves accesses
 * other than naturally aligned, field-sized ones undefined):
 * - an access that is not naturally aligned is first split into naturally aligned pieces, each
 *   handled alone, as QEMU's memory core does ({@link NaturallyAligned}); so a 4-byte read at 22
 *   is queue_select | queue_size << 16, and one at 21 is four separate byte reads;
 * - common cfg: a piece is decoded by its offset alone. A read at a field's first byte returns
 *   the field's value truncated to the access width (nothing from neighbouring fields); a write
 *   there sets the field from the written value (only the bytes written, as wide as the field).
 *   Any other offset reads 0 and ignores writes.
 * - ISR: a read of any width anywhere in the block returns the ISR and clears it; writes do nothing.
 * - device cfg: accesses inside the device's config go to the device; outside read all-ones.
 * - notify: a write of any width at offset o notifies queue o / multiplier; reads return 0.
 */

import { UsageError } from '../../errors.js';
import type { AccessSize } from '../../memory/access-size.js';
import { NaturallyAligned, RegionMap, type BarRegion } from '../../pci/bar-region.js';
import type { Capability, ConfigSpace } from '../../pci/config-space.js';
import type { PciEndpoint } from '../../pci/endpoint.js';
import { PCI_CAP_ID_VNDR } from '../../spec/pci.js';
import {
  VIRTIO_PCI_CAP_BAR,
  VIRTIO_PCI_CAP_COMMON_CFG,
  VIRTIO_PCI_CAP_DEVICE_CFG,
  VIRTIO_PCI_CAP_ISR_CFG,
  VIRTIO_PCI_CAP_LEN,
  VIRTIO_PCI_CAP_LENGTH,
  VIRTIO_PCI_CAP_NOTIFY_CFG,
  VIRTIO_PCI_CAP_OFFSET,
  VIRTIO_PCI_CAP_PCI_CFG,
  VIRTIO_PCI_CAP_SIZE,
  VIRTIO_PCI_CAP_CFG_TYPE,
  VIRTIO_PCI_CFG_CAP_DATA,
  VIRTIO_PCI_CFG_CAP_SIZE,
  VIRTIO_PCI_COMMON_ADM_Q_IDX,
  VIRTIO_PCI_COMMON_ADM_Q_NUM,
  VIRTIO_PCI_COMMON_CFGGENERATION,
  VIRTIO_PCI_COMMON_DF,
  VIRTIO_PCI_COMMON_DFSELECT,
  VIRTIO_PCI_COMMON_GF,
  VIRTIO_PCI_COMMON_GFSELECT,
  VIRTIO_PCI_COMMON_MSIX,
  VIRTIO_PCI_COMMON_NUMQ,
  VIRTIO_PCI_COMMON_Q_AVAILHI,
  VIRTIO_PCI_COMMON_Q_AVAILLO,
  VIRTIO_PCI_COMMON_Q_DESCHI,
  VIRTIO_PCI_COMMON_Q_DESCLO,
  VIRTIO_PCI_COMMON_Q_ENABLE,
  VIRTIO_PCI_COMMON_Q_MSIX,
  VIRTIO_PCI_COMMON_Q_NDATA,
  VIRTIO_PCI_COMMON_Q_NOFF,
  VIRTIO_PCI_COMMON_Q_RESET,
  VIRTIO_PCI_COMMON_Q_SELECT,
  VIRTIO_PCI_COMMON_Q_SIZE,
  VIRTIO_PCI_COMMON_Q_USEDHI,
  VIRTIO_PCI_COMMON_Q_USEDLO,
  VIRTIO_PCI_COMMON_STATUS,
  VIRTIO_PCI_NOTIFY_CAP_MULT,
  VIRTIO_PCI_NOTIFY_CAP_SIZE,
} from '../../spec/virtio-pci.js';
import type { DeviceCore, RingArea } from '../../core/device-core.js';
import type { PciNotifications } from './pci-notifications.js';

/** The BAR holding the modern register blocks (QEMU's modern_mem_bar_idx). */
export const MODERN_BAR = 4;
/** Size of that BAR (a power of two covering the four blocks). */
export const MODERN_BAR_SIZE = 0x4000;
/** Each block's offset in the BAR, and its length (the capability's `length`). */
export const MODERN_COMMON_OFFSET = 0x0;
export const MODERN_ISR_OFFSET = 0x1000;
export const MODERN_DEVICE_OFFSET = 0x2000;
export const MODERN_NOTIFY_OFFSET = 0x3000;
export const MODERN_BLOCK_SIZE = 0x1000;
/** Bytes between queue notify addresses (4.1.4.4); QEMU's default without page-per-vq. */
export const MODERN_NOTIFY_OFF_MULTIPLIER = 4;
/** Queues the notify block can address. */
export const MODERN_MAX_QUEUES = MODERN_BLOCK_SIZE / MODERN_NOTIFY_OFF_MULTIPLIER;

const ALL_ONES: Record<AccessSize, number> = { 1: 0xff, 2: 0xffff, 4: 0xffff_ffff };

function truncate(value: number, size: AccessSize): number {
  return (value & ALL_ONES[size]) >>> 0;
}

/** The virtio capabilities and BAR4 blocks of a modern virtio-pci function. */
export class ModernTransport {
  /** device_feature_select, driver_feature_select, queue_select. */
  private dfselect = 0;
  private gfselect = 0;
  private queueSelect = 0;
  /** BAR4 contents, to be served by the function. */
  readonly region: BarRegion;
  readonly capabilities: {
    readonly common: Capability;
    readonly isr: Capability;
    readonly device: Capability;
    readonly notify: Capability;
    readonly pciCfg: Capability;
  };

  constructor(
    private readonly core: DeviceCore,
    /** The ISR and the MSI-X vectors. */
    private readonly notifications: PciNotifications,
    config: ConfigSpace,
    /** The function, for the PCI_CFG window's BAR accesses. */
    private readonly endpoint: PciEndpoint,
  ) {
    if (core.queues.length > MODERN_MAX_QUEUES) throw new UsageError(`at most ${MODERN_MAX_QUEUES} queues fit the notify block`);
    core.onReset(() => {
      this.dfselect = 0;
      this.gfselect = 0;
      this.queueSelect = 0;
    });
    const block = (read: BarRegion['read'], write: BarRegion['write']): BarRegion => ({ read, write });
    this.region = new NaturallyAligned(
      new RegionMap()
        .add(MODERN_COMMON_OFFSET, MODERN_BLOCK_SIZE, block(this.commonRead.bind(this), this.commonWrite.bind(this)))
        .add(MODERN_ISR_OFFSET, MODERN_BLOCK_SIZE, block(() => this.notifications.readIsr(), () => {}))
        .add(MODERN_DEVICE_OFFSET, MODERN_BLOCK_SIZE, block(this.deviceRead.bind(this), this.deviceWrite.bind(this)))
        .add(MODERN_NOTIFY_OFFSET, MODERN_BLOCK_SIZE, block(() => 0, this.notifyWrite.bind(this))),
    );

    const common = this.addCap(config, VIRTIO_PCI_CAP_COMMON_CFG, VIRTIO_PCI_CAP_SIZE, MODERN_COMMON_OFFSET);
    const isr = this.addCap(config, VIRTIO_PCI_CAP_ISR_CFG, VIRTIO_PCI_CAP_SIZE, MODERN_ISR_OFFSET);
    const device = this.addCap(config, VIRTIO_PCI_CAP_DEVICE_CFG, VIRTIO_PCI_CAP_SIZE, MODERN_DEVICE_OFFSET);
    const notify = this.addCap(config, VIRTIO_PCI_CAP_NOTIFY_CFG, VIRTIO_PCI_NOTIFY_CAP_SIZE, MODERN_NOTIFY_OFFSET);
    notify.set(VIRTIO_PCI_NOTIFY_CAP_MULT, 4, MODERN_NOTIFY_OFF_MULTIPLIER);
    this.capabilities = { common, isr, device, notify, pciCfg: this.addPciCfgCap(config) };
  }

  /** struct virtio_pci_cap pointing at [offset, offset + MODERN_BLOCK_SIZE) of BAR4; read-only. */
  private addCap(config: ConfigSpace, cfgType: number, length: number, offset: number): Capability {
    const cap = config.addCapability({ id: PCI_CAP_ID_VNDR, length });
    cap.set(VIRTIO_PCI_CAP_LEN, 1, length);
    cap.set(VIRTIO_PCI_CAP_CFG_TYPE, 1, cfgType);
    cap.set(VIRTIO_PCI_CAP_BAR, 1, MODERN_BAR);
    cap.set(VIRTIO_PCI_CAP_OFFSET, 4, offset);
    cap.set(VIRTIO_PCI_CAP_LENGTH, 4, MODERN_BLOCK_SIZE);
    return cap;
  }

  /**
   * 4.1.4.9 PCI configuration access: the driver writes bar, offset and length, then reads or
   * writes pci_cfg_data, and the device performs that access in the BAR (decoding enabled or not).
   * As QEMU, bar/offset/length start at 0 and are fully writable. An access is performed only for
   * length 1, 2 or 4 at an offset aligned to it inside the BAR; otherwise pci_cfg_data is untouched.
   * cap.bar selects the BAR as the spec requires (QEMU 7.2 ignores it and always uses its modern
   * BAR; a driver that names BAR4 sees no difference).
   */
  private addPciCfgCap(config: ConfigSpace): Capability {
    const window = (): { bar: number; offset: number; size: AccessSize } | undefined => {
      const size = cap.get(VIRTIO_PCI_CAP_LENGTH, 4);
      const offset = cap.get(VIRTIO_PCI_CAP_OFFSET, 4);
      if ((size !== 1 && size !== 2 && size !== 4) || offset % size !== 0) return undefined;
      return { bar: cap.get(VIRTIO_PCI_CAP_BAR, 1), offset, size };
    };
    const touchesData = (rel: number, len: number): boolean => rel < VIRTIO_PCI_CFG_CAP_DATA + 4 && rel + len > VIRTIO_PCI_CFG_CAP_DATA;
    const cap: Capability = config.addCapability({
      id: PCI_CAP_ID_VNDR,
      length: VIRTIO_PCI_CFG_CAP_SIZE,
      beforeRead: (rel, len) => {
        const w = touchesData(rel, len) ? window() : undefined;
        if (w) cap.set(VIRTIO_PCI_CFG_CAP_DATA, w.size, this.endpoint.barReadDirect(w.bar, w.offset, w.size));
      },
      afterWrite: (rel, len) => {
        const w = touchesData(rel, len) ? window() : undefined;
        if (w) this.endpoint.barWriteDirect(w.bar, w.offset, w.size, cap.get(VIRTIO_PCI_CFG_CAP_DATA, w.size));
      },
    });
    cap.set(VIRTIO_PCI_CAP_LEN, 1, VIRTIO_PCI_CFG_CAP_SIZE);
    cap.set(VIRTIO_PCI_CAP_CFG_TYPE, 1, VIRTIO_PCI_CAP_PCI_CFG);
    cap.setWritable(VIRTIO_PCI_CAP_BAR, 1, 0xff);
    cap.setWritable(VIRTIO_PCI_CAP_OFFSET, 4, 0xffff_ffff);
    cap.setWritable(VIRTIO_PCI_CAP_LENGTH, 4, 0xffff_ffff);
    cap.setWritable(VIRTIO_PCI_CFG_CAP_DATA, 4, 0xffff_ffff);
    return cap;
  }

  /** The queue_notify_off the driver reads for queue `index` (4.1.4.4). */
  static queueNotifyOff(index: number): number {
    return index;
  }

  // ---- common configuration (4.1.4.3) ----

  private commonRead(offset: number, size: AccessSize): number {
    const core = this.core;
    const q = core.queues[this.queueSelect];
    let value: number;
    switch (offset) {
      case VIRTIO_PCI_COMMON_DFSELECT:
        value = this.dfselect;
        break;
      case VIRTIO_PCI_COMMON_DF:
        value = core.deviceFeatureWord(this.dfselect);
        break;
      case VIRTIO_PCI_COMMON_GFSELECT:
        value = this.gfselect;
        break;
      case VIRTIO_PCI_COMMON_GF:
        value = core.driverFeatureWord(this.gfselect);
        break;
      case VIRTIO_PCI_COMMON_MSIX:
        value = this.notifications.configVector;
        break;
      case VIRTIO_PCI_COMMON_NUMQ:
        value = core.queues.length;
        break;
      case VIRTIO_PCI_COMMON_STATUS:
        value = core.status;
        break;
      case VIRTIO_PCI_COMMON_CFGGENERATION:
        value = core.configGeneration;
        break;
      case VIRTIO_PCI_COMMON_Q_SELECT:
        value = this.queueSelect;
        break;
      case VIRTIO_PCI_COMMON_Q_SIZE:
        value = q?.size ?? 0;
        break;
      case VIRTIO_PCI_COMMON_Q_MSIX:
        value = this.notifications.queueVector(this.queueSelect);
        break;
      case VIRTIO_PCI_COMMON_Q_ENABLE:
        value = q?.enabled ? 1 : 0;
        break;
      case VIRTIO_PCI_COMMON_Q_NOFF:
        // As QEMU, for any selected index: notifying a queue that does not exist does nothing.
        value = ModernTransport.queueNotifyOff(this.queueSelect);
        break;
      case VIRTIO_PCI_COMMON_Q_DESCLO:
      case VIRTIO_PCI_COMMON_Q_DESCHI:
      case VIRTIO_PCI_COMMON_Q_AVAILLO:
      case VIRTIO_PCI_COMMON_Q_AVAILHI:
      case VIRTIO_PCI_COMMON_Q_USEDLO:
      case VIRTIO_PCI_COMMON_Q_USEDHI: {
        const [area, half] = ringHalfAt(offset);
        value = q?.ringHalf(area, half) ?? 0;
        break;
      }
      case VIRTIO_PCI_COMMON_Q_RESET:
        // 4.1.4.3.1: 1 as long as the queue reset is ongoing (old operations not yet settled).
        value = q?.resetPending ? 1 : 0;
        break;
      // queue_notify_data (NOTIF_CONFIG_DATA), admin_queue_index and admin_queue_num (ADMIN_VQ):
      // those features are not offered, so the fields read 0.
      case VIRTIO_PCI_COMMON_Q_NDATA:
      case VIRTIO_PCI_COMMON_ADM_Q_IDX:
      case VIRTIO_PCI_COMMON_ADM_Q_NUM:
      default:
        value = 0;
    }
    return truncate(value, size);
  }

  private commonWrite(offset: number, size: AccessSize, written: number): void {
    const core = this.core;
    const value = truncate(written, size);
    const q = this.queueSelect;
    switch (offset) {
      case VIRTIO_PCI_COMMON_DFSELECT:
        this.dfselect = value;
        break;
      case VIRTIO_PCI_COMMON_GFSELECT:
        this.gfselect = value;
        break;
      case VIRTIO_PCI_COMMON_GF:
        core.setDriverFeatureWord(this.gfselect, value);
        break;
      case VIRTIO_PCI_COMMON_MSIX:
        this.notifications.setConfigVector(value & 0xffff);
        break;
      case VIRTIO_PCI_COMMON_STATUS:
        core.writeStatus(value & 0xff);
        break;
      case VIRTIO_PCI_COMMON_Q_SELECT:
        this.queueSelect = value & 0xffff;
        break;
      case VIRTIO_PCI_COMMON_Q_SIZE:
        core.setQueueSize(q, value & 0xffff);
        break;
      case VIRTIO_PCI_COMMON_Q_MSIX:
        this.notifications.setQueueVector(q, value & 0xffff);
        break;
      case VIRTIO_PCI_COMMON_Q_ENABLE:
        // 4.1.4.3.2: the driver MUST NOT write 0; only 1 enables.
        if ((value & 0xffff) === 1) core.enableQueue(q);
        break;
      case VIRTIO_PCI_COMMON_Q_RESET:
        // 2.6.1.1: 1 resets the selected queue (only with RING_RESET negotiated).
        if ((value & 0xffff) === 1) core.resetQueue(q);
        break;
      case VIRTIO_PCI_COMMON_Q_DESCLO:
      case VIRTIO_PCI_COMMON_Q_DESCHI:
      case VIRTIO_PCI_COMMON_Q_AVAILLO:
      case VIRTIO_PCI_COMMON_Q_AVAILHI:
      case VIRTIO_PCI_COMMON_Q_USEDLO:
      case VIRTIO_PCI_COMMON_Q_USEDHI: {
        const [area, half] = ringHalfAt(offset);
        core.setQueueRingHalf(q, area, half, value);
        break;
      }
      default:
      // device_feature, num_queues, config_generation, queue_notify_off and the fields of features
      // not offered are read-only; other offsets are not fields.
    }
  }

  // ---- device configuration (4.1.4.6) ----

  private deviceRead(offset: number, size: AccessSize): number {
    return this.core.readDeviceConfig(offset, size) ?? ALL_ONES[size];
  }
  private deviceWrite(offset: number, size: AccessSize, value: number): void {
    this.core.writeDeviceConfig(offset, size, truncate(value, size));
  }

  // ---- notifications (4.1.4.4) ----

  private notifyWrite(offset: number): void {
    const index = Math.floor(offset / MODERN_NOTIFY_OFF_MULTIPLIER);
    if (index < this.core.queues.length) this.core.notify(index);
  }
}

/** Which ring area and half a queue address register holds. */
function ringHalfAt(offset: number): [RingArea, 0 | 1] {
  switch (offset) {
    case VIRTIO_PCI_COMMON_Q_DESCLO:
      return ['desc', 0];
    case VIRTIO_PCI_COMMON_Q_DESCHI:
      return ['desc', 1];
    case VIRTIO_PCI_COMMON_Q_AVAILLO:
      return ['driver', 0];
    case VIRTIO_PCI_COMMON_Q_AVAILHI:
      return ['driver', 1];
    case VIRTIO_PCI_COMMON_Q_USEDLO:
      return ['device', 0];
    default:
      return ['device', 1];
  }
}
