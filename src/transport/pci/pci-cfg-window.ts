/**
 * The PCI configuration access capability, device side (4.1.4.9: struct virtio_pci_cfg_cap): a window
 * in configuration space through which a driver reaches a BAR without mapping it.
 */

import type { AccessSize } from '../../memory/access-size.js';
import type { Capability, ConfigSpace } from '../../pci/config-space.js';
import type { PciEndpoint } from '../../pci/endpoint.js';
import { PCI_CAP_ID_VNDR } from '../../spec/pci.js';
import {
  VIRTIO_PCI_CAP_BAR,
  VIRTIO_PCI_CAP_CFG_TYPE,
  VIRTIO_PCI_CAP_LEN,
  VIRTIO_PCI_CAP_LENGTH,
  VIRTIO_PCI_CAP_OFFSET,
  VIRTIO_PCI_CAP_PCI_CFG,
  VIRTIO_PCI_CFG_CAP_DATA,
  VIRTIO_PCI_CFG_CAP_SIZE,
} from '../../spec/virtio-pci.js';

/**
 * Add the PCI_CFG capability to `config`, its window served from `endpoint`'s BARs: the driver
 * writes bar, offset and length, then reads or writes pci_cfg_data, and the device performs that
 * access in the BAR (decoding enabled or not).
 * As QEMU, bar/offset/length start at 0 and are fully writable. An access is performed only for
 * length 1, 2 or 4 at an offset aligned to it inside the BAR; otherwise pci_cfg_data is untouched.
 * cap.bar selects the BAR as the spec requires (QEMU 7.2 ignores it and always uses its modern
 * BAR; a driver that names BAR4 sees no difference).
 */
export function addPciCfgWindow(config: ConfigSpace, endpoint: PciEndpoint): Capability {
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
      if (w) cap.set(VIRTIO_PCI_CFG_CAP_DATA, w.size, endpoint.barReadDirect(w.bar, w.offset, w.size));
    },
    afterWrite: (rel, len) => {
      const w = touchesData(rel, len) ? window() : undefined;
      if (w) endpoint.barWriteDirect(w.bar, w.offset, w.size, cap.get(VIRTIO_PCI_CFG_CAP_DATA, w.size));
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
