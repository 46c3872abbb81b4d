/**
 * A virtio device as a modern-only PCI function (spec 4.1.2): the type-0 header QEMU 7.2 gives a
 * `virtio-*-pci,disable-legacy=on` device, BAR4 with the modern blocks, INTx interrupts.
 *
 *   const fn = new VirtioPciFunction(device, host);     // a PciFunction for any emulator
 *   fn.core                                              // the transport-neutral state (status, queues)
 */

import type { VirtioDevice } from '../../device/virtio-device.js';
import { ConfigSpace } from '../../pci/config-space.js';
import { PciEndpoint } from '../../pci/endpoint.js';
import type { DeviceHost } from '../../pci/function.js';
import { VIRTIO_ID_BLOCK, VIRTIO_ID_CONSOLE, VIRTIO_ID_NET, VIRTIO_PCI_MODERN_DEVICE_ID_BASE, VIRTIO_PCI_VENDOR_ID } from '../../spec/ids.js';
import { PCI_CLASS_COMMUNICATION_OTHER, PCI_CLASS_NETWORK_ETHERNET, PCI_CLASS_OTHERS, PCI_CLASS_STORAGE_SCSI } from '../../spec/pci.js';
import { PCI_INTERRUPT_PIN_INTA } from '../../spec/pci-header.js';
import { DeviceCore } from '../device-core.js';
import { IntxInterrupts } from './intx-interrupts.js';
import { MODERN_BAR, MODERN_BAR_SIZE, ModernTransport } from './modern-device.js';

/** Spec 4.1.2.1: a non-transitional device has revision ID 1 or higher. */
export const VIRTIO_PCI_MODERN_REVISION = 1;
/** QEMU's default subsystem ID (PCI_SUBDEVICE_ID_QEMU) that modern-only virtio devices keep. */
export const QEMU_PCI_SUBSYSTEM_ID = 0x1100;

/** The class code QEMU gives each virtio device type; every other type gets PCI_CLASS_OTHERS. */
const CLASS_BY_TYPE: ReadonlyMap<number, number> = new Map([
  [VIRTIO_ID_NET, PCI_CLASS_NETWORK_ETHERNET],
  [VIRTIO_ID_BLOCK, PCI_CLASS_STORAGE_SCSI],
  [VIRTIO_ID_CONSOLE, PCI_CLASS_COMMUNICATION_OTHER],
]);

/** The class code QEMU presents for a virtio device type. */
export function virtioClassCode(deviceType: number): number {
  return CLASS_BY_TYPE.get(deviceType) ?? PCI_CLASS_OTHERS;
}

export interface VirtioPciFunctionOptions {
  /** Subsystem ID (default {@link QEMU_PCI_SUBSYSTEM_ID}). */
  readonly subsystemId?: number;
  /** Class code (default per device type, as QEMU). */
  readonly classCode?: number;
}

/** See the file comment. The function is a {@link PciEndpoint}, so it is the {@link PciFunction} itself. */
export class VirtioPciFunction extends PciEndpoint {
  readonly core: DeviceCore;
  readonly modern: ModernTransport;

  constructor(
    readonly device: VirtioDevice,
    host: DeviceHost,
    options: VirtioPciFunctionOptions = {},
  ) {
    const bars = [];
    bars[MODERN_BAR] = { kind: 'memory', size: MODERN_BAR_SIZE, is64: true, prefetchable: true } as const;
    const config = new ConfigSpace(
      {
        vendorId: VIRTIO_PCI_VENDOR_ID,
        deviceId: VIRTIO_PCI_MODERN_DEVICE_ID_BASE + device.deviceType,
        revisionId: VIRTIO_PCI_MODERN_REVISION,
        classCode: options.classCode ?? virtioClassCode(device.deviceType),
        subsystemVendorId: VIRTIO_PCI_VENDOR_ID,
        subsystemId: options.subsystemId ?? QEMU_PCI_SUBSYSTEM_ID,
        interruptPin: PCI_INTERRUPT_PIN_INTA,
      },
      bars,
    );
    super(config, host);
    this.core = new DeviceCore(device, host.memory, new IntxInterrupts(this));
    this.modern = new ModernTransport(this.core, config, this);
    this.setBarRegion(MODERN_BAR, this.modern.region);
  }
}
