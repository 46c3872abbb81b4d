/** Mutants of family 'pci-capabilities': our function with a capability shortened, moved, hidden or added wrongly. */

import {
  VIRTIO_PCI_CAP_CFG_TYPE,
  VIRTIO_PCI_CAP_DEVICE_CFG,
  VIRTIO_PCI_CAP_LEN,
  VIRTIO_PCI_CAP_NOTIFY_CFG,
  VIRTIO_PCI_CAP_OFFSET,
  VIRTIO_PCI_CAP_SHARED_MEMORY_CFG,
  VIRTIO_PCI_CAP_VENDOR_CFG,
} from '../../../../src/spec/virtio-pci.js';
import { MODERN_BAR } from '../../../../src/transport/pci/modern-device.js';
import type { Mutants } from './mutant.js';
import { appendCaps, blk, mutant, patchCapField, rng } from './pci-function-mutant.js';

/** A reserved cfg_type: the capability stops being the structure it was. */
const RESERVED_CFG_TYPE = 0x0a;

/** struct virtio_pci_cap64 after cap_vndr and cap_next: a shared memory region in BAR4. */
function shm(id: number, offset: number, length: number): number[] {
  const le32 = (v: number): number[] => [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, v >>> 24];
  return [24, VIRTIO_PCI_CAP_SHARED_MEMORY_CFG, MODERN_BAR, id, 0, 0, ...le32(offset), ...le32(length), ...le32(0), ...le32(0)];
}

/** struct virtio_pci_vndr_data after cap_vndr and cap_next, padded to `len`. */
function vendor(vendorId: number, len: number): number[] {
  return [len, VIRTIO_PCI_CAP_VENDOR_CFG, vendorId & 0xff, vendorId >>> 8, ...new Array<number>(len - 6).fill(0)];
}

export const pciCapabilitiesMutants: Mutants = {
  'pci-capabilities/cap-len-covers-structure': mutant(
    'the notify capability says cap_len 16, leaving out notify_off_multiplier',
    rng(),
    patchCapField(VIRTIO_PCI_CAP_NOTIFY_CFG, VIRTIO_PCI_CAP_LEN, 1, () => 16),
  ),
  'pci-capabilities/device-cfg-present': mutant(
    'a block device whose device-cfg capability has a reserved cfg_type',
    blk(),
    patchCapField(VIRTIO_PCI_CAP_DEVICE_CFG, VIRTIO_PCI_CAP_CFG_TYPE, 1, () => RESERVED_CFG_TYPE),
  ),
  'pci-capabilities/device-cfg-offset-aligned': mutant(
    'the device-cfg capability points 2 bytes into the structure',
    blk(),
    patchCapField(VIRTIO_PCI_CAP_DEVICE_CFG, VIRTIO_PCI_CAP_OFFSET, 4, (old) => old + 2),
  ),
  'pci-capabilities/shared-memory-within-bar': mutant(
    'a shared memory region of 32 KiB in the 16 KiB BAR4',
    rng(),
    appendCaps([shm(1, 0, 0x8000)]),
  ),
  'pci-capabilities/shared-memory-id-unique': mutant(
    'two shared memory regions with id 1',
    rng(),
    appendCaps([shm(1, 0, 0x100), shm(1, 0x100, 0x100)]),
  ),
  'pci-capabilities/vendor-data-not-virtio-vendor': mutant(
    'a vendor data capability with vendor_id 0x1af4',
    rng(),
    appendCaps([vendor(0x1af4, 8)]),
  ),
  'pci-capabilities/vendor-data-size': mutant('a vendor data capability of 6 bytes', rng(), appendCaps([vendor(0x8086, 6)])),
  'pci-capabilities/vendor-data-read-no-side-effect': mutant(
    'a vendor data capability whose last byte counts the reads of configuration space',
    rng(),
    appendCaps([vendor(0x8086, 8)], (offset, reads, placed) => (offset === placed[0]! + 7 ? reads & 0xff : undefined)),
  ),
};
