/**
 * The driver audit of writes into the virtio capabilities (spec 4.1.4.1: a driver writes no field of
 * a virtio capability except the PCI_CFG window's bar, offset, length and pci_cfg_data, 4.1.4.9).
 * Only in audit mode; the write itself goes on as before (the bytes are read-only anyway).
 */

import type { DriverAudit } from '../../core/driver-audit.js';
import type { AccessSize } from '../../memory/access-size.js';
import type { ConfigSpace } from '../../pci/config-space.js';
import { DRIVER_REQUIREMENTS } from '../../spec/driver-requirements.js';
import { PCI_CAP_ID_VNDR } from '../../spec/pci.js';
import {
  VIRTIO_PCI_CAP_BAR,
  VIRTIO_PCI_CAP_CFG_TYPE,
  VIRTIO_PCI_CAP_NAMES,
  VIRTIO_PCI_CAP_OFFSET,
  VIRTIO_PCI_CAP_PCI_CFG,
  VIRTIO_PCI_CFG_CAP_SIZE,
} from '../../spec/virtio-pci.js';

/** Bytes of struct virtio_pci_cfg_cap a driver writes: bar, then offset, length and pci_cfg_data. */
function pciCfgDriverByte(rel: number): boolean {
  return rel === VIRTIO_PCI_CAP_BAR || (rel >= VIRTIO_PCI_CAP_OFFSET && rel < VIRTIO_PCI_CFG_CAP_SIZE);
}

/** A watch to call with every configuration write the driver makes: records the first virtio capability byte it may not write. */
export function capabilityWriteWatch(config: ConfigSpace, audit: DriverAudit): (offset: number, size: AccessSize, value: number) => void {
  return (offset, size, value) => {
    for (const cap of config.capabilities) {
      if (cap.definition.id !== PCI_CAP_ID_VNDR) continue;
      const cfgType = cap.get(VIRTIO_PCI_CAP_CFG_TYPE, 1);
      for (let at = Math.max(offset, cap.offset); at < Math.min(offset + size, cap.offset + cap.length); at++) {
        const rel = at - cap.offset;
        if (cfgType === VIRTIO_PCI_CAP_PCI_CFG && pciCfgDriverByte(rel)) continue;
        const name = VIRTIO_PCI_CAP_NAMES.get(cfgType) ?? `cfg_type ${cfgType}`;
        audit.record(
          DRIVER_REQUIREMENTS.pciNoCapWrites,
          `config write${8 * size} 0x${(value >>> 0).toString(16)} at 0x${offset.toString(16)}: byte ${rel} of the ${name} capability at 0x${cap.offset.toString(16)}`,
        );
        return;
      }
    }
  };
}
