/**
 * The modern virtio-pci transport, device side (spec 4.1.4): assembles the five vendor capabilities
 * and the register blocks they point at, over a {@link DeviceCore}. Each structure has its file:
 * common-cfg.ts (4.1.4.3), notify-cfg.ts (4.1.4.4), isr-cfg.ts (4.1.4.5), device-cfg.ts (4.1.4.6)
 * and pci-cfg-window.ts (4.1.4.9).
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
 * - then each block decodes the piece as its file says.
 */

import { UsageError } from '../../errors.js';
import { NaturallyAligned, RegionMap, type BarRegion } from '../../pci/bar-region.js';
import type { Capability, ConfigSpace } from '../../pci/config-space.js';
import type { PciEndpoint } from '../../pci/endpoint.js';
import { VIRTIO_F_NOTIFICATION_DATA, VIRTIO_F_NOTIF_CONFIG_DATA, featureSet } from '../../spec/features.js';
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
  VIRTIO_PCI_CAP_SIZE,
  VIRTIO_PCI_CAP_CFG_TYPE,
  VIRTIO_PCI_NOTIFY_CAP_MULT,
  VIRTIO_PCI_NOTIFY_CAP_SIZE,
} from '../../spec/virtio-pci.js';
import type { DeviceCore } from '../../core/device-core.js';
import { CommonCfg } from './common-cfg.js';
import { deviceCfgRegion } from './device-cfg.js';
import { isrCfgRegion } from './isr-cfg.js';
import { MODERN_NOTIFY_OFF_MULTIPLIER, notifyCfgRegion } from './notify-cfg.js';
import { addPciCfgWindow } from './pci-cfg-window.js';
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
/**
 * Transport features the modern interface implements on top of the core's: notification data
 * (notify-cfg.ts decodes it) and queue_notif_config_data (common-cfg.ts shows it). The legacy
 * interface has no room for them (its feature word is 32 bits).
 */
export const MODERN_TRANSPORT_FEATURES = featureSet(VIRTIO_F_NOTIFICATION_DATA, VIRTIO_F_NOTIF_CONFIG_DATA);

/** Queues the notify block can address. */
export const MODERN_MAX_QUEUES = MODERN_BLOCK_SIZE / MODERN_NOTIFY_OFF_MULTIPLIER;

/** The virtio capabilities and BAR4 blocks of a modern virtio-pci function. */
export class ModernTransport {
  /** BAR4 contents, to be served by the function. */
  readonly region: BarRegion;
  /** The common configuration block (its select registers are state a snapshot carries). */
  readonly common: CommonCfg;
  readonly capabilities: {
    readonly common: Capability;
    readonly isr: Capability;
    readonly device: Capability;
    readonly notify: Capability;
    readonly pciCfg: Capability;
  };

  constructor(
    core: DeviceCore,
    /** The ISR and the MSI-X vectors. */
    notifications: PciNotifications,
    config: ConfigSpace,
    /** The function, for the PCI_CFG window's BAR accesses. */
    endpoint: PciEndpoint,
  ) {
    if (core.queues.length > MODERN_MAX_QUEUES) throw new UsageError(`at most ${MODERN_MAX_QUEUES} queues fit the notify block`);
    this.common = new CommonCfg(core, notifications);
    this.region = new NaturallyAligned(
      new RegionMap()
        .add(MODERN_COMMON_OFFSET, MODERN_BLOCK_SIZE, this.common)
        .add(MODERN_ISR_OFFSET, MODERN_BLOCK_SIZE, isrCfgRegion(notifications))
        .add(MODERN_DEVICE_OFFSET, MODERN_BLOCK_SIZE, deviceCfgRegion(core))
        .add(MODERN_NOTIFY_OFFSET, MODERN_BLOCK_SIZE, notifyCfgRegion(core)),
    );

    const common = addCap(config, VIRTIO_PCI_CAP_COMMON_CFG, VIRTIO_PCI_CAP_SIZE, MODERN_COMMON_OFFSET);
    const isr = addCap(config, VIRTIO_PCI_CAP_ISR_CFG, VIRTIO_PCI_CAP_SIZE, MODERN_ISR_OFFSET);
    const device = addCap(config, VIRTIO_PCI_CAP_DEVICE_CFG, VIRTIO_PCI_CAP_SIZE, MODERN_DEVICE_OFFSET);
    const notify = addCap(config, VIRTIO_PCI_CAP_NOTIFY_CFG, VIRTIO_PCI_NOTIFY_CAP_SIZE, MODERN_NOTIFY_OFFSET);
    notify.set(VIRTIO_PCI_NOTIFY_CAP_MULT, 4, MODERN_NOTIFY_OFF_MULTIPLIER);
    this.capabilities = { common, isr, device, notify, pciCfg: addPciCfgWindow(config, endpoint) };
  }
}

/** struct virtio_pci_cap pointing at [offset, offset + MODERN_BLOCK_SIZE) of BAR4; read-only. */
function addCap(config: ConfigSpace, cfgType: number, length: number, offset: number): Capability {
  const cap = config.addCapability({ id: PCI_CAP_ID_VNDR, length });
  cap.set(VIRTIO_PCI_CAP_LEN, 1, length);
  cap.set(VIRTIO_PCI_CAP_CFG_TYPE, 1, cfgType);
  cap.set(VIRTIO_PCI_CAP_BAR, 1, MODERN_BAR);
  cap.set(VIRTIO_PCI_CAP_OFFSET, 4, offset);
  cap.set(VIRTIO_PCI_CAP_LENGTH, 4, MODERN_BLOCK_SIZE);
  return cap;
}
