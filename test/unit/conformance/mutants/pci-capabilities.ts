/**
 * Mutants of family 'pci-capabilities': our function with a capability shortened, moved, hidden or
 * added wrongly. The shared memory and vendor data statements run on our function presenting real
 * ones (two regions of an rng device model, a vendor data capability), each mutant breaking one field.
 */

import type { VirtioDevice } from '../../../../src/core/virtio-device.js';
import { SharedMemory } from '../../../../src/core/shared-memory.js';
import {
  VIRTIO_PCI_CAP64_LENGTH_HI,
  VIRTIO_PCI_CAP_CFG_TYPE,
  VIRTIO_PCI_CAP_ID,
  VIRTIO_PCI_CAP_DEVICE_CFG,
  VIRTIO_PCI_CAP_LEN,
  VIRTIO_PCI_CAP_NOTIFY_CFG,
  VIRTIO_PCI_CAP_OFFSET,
  VIRTIO_PCI_CAP_SHARED_MEMORY_CFG,
  VIRTIO_PCI_CAP_VENDOR_CFG,
  VIRTIO_PCI_VNDR_DATA_VENDOR_ID,
} from '../../../../src/spec/virtio-pci.js';
import type { Mutant, Mutants } from './mutant.js';
import {
  appendCaps,
  blk,
  capOffset,
  mutant,
  patchBytes,
  patchCapField,
  plug,
  rng,
  type Mutation,
  type Plugging,
} from './pci-function-mutant.js';

/** A reserved cfg_type: the capability stops being the structure it was. */
const RESERVED_CFG_TYPE = 0x0a;

/** Our device model presenting shared memory regions 1 and 2 (in BAR2, one cap64 each). */
function withRegions(device: VirtioDevice): VirtioDevice {
  return Object.defineProperty(device, 'sharedMemoryRegions', { value: [new SharedMemory(1, 0x1000), new SharedMemory(2, 0x2000)] });
}

/** Our rng with a vendor data capability (vendor 0x8086, 6 bytes of data: cap_len 12). */
const WITH_VENDOR_DATA = rng({ vendorData: [{ vendorId: 0x8086, data: new Uint8Array([1, 2, 3, 4, 5, 6]) }] });

/** Our rng with its shared memory regions, as is and under `mutation`. */
function regionsMutant(breaks: string, mutation: Mutation, plugging: Plugging = rng()): Mutant {
  return {
    breaks,
    original: (machine) => plug(machine, plugging, [], withRegions),
    mutant: (machine) => plug(machine, plugging, [mutation], withRegions),
  };
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
  'pci-capabilities/shared-memory-within-bar': regionsMutant(
    "the first shared memory capability's length_hi says 4 GiB more than the 16 KiB BAR2 holds",
    patchCapField(VIRTIO_PCI_CAP_SHARED_MEMORY_CFG, VIRTIO_PCI_CAP64_LENGTH_HI, 4, () => 1),
  ),
  'pci-capabilities/shared-memory-id-unique': regionsMutant(
    'the second shared memory capability repeats the id of the first',
    patchBytes((fn) => {
      const first = capOffset(fn, VIRTIO_PCI_CAP_SHARED_MEMORY_CFG);
      const second = fn.configRead(first + 1, 1);
      return new Map([[second + VIRTIO_PCI_CAP_ID, fn.configRead(first + VIRTIO_PCI_CAP_ID, 1)]]);
    }),
  ),
  'pci-capabilities/vendor-data-not-virtio-vendor': mutant(
    'the vendor data capability carries vendor_id 0x1af4',
    WITH_VENDOR_DATA,
    patchCapField(VIRTIO_PCI_CAP_VENDOR_CFG, VIRTIO_PCI_VNDR_DATA_VENDOR_ID, 2, () => 0x1af4),
  ),
  'pci-capabilities/vendor-data-size': mutant(
    'the vendor data capability says cap_len 10, not a multiple of 4',
    WITH_VENDOR_DATA,
    patchCapField(VIRTIO_PCI_CAP_VENDOR_CFG, VIRTIO_PCI_CAP_LEN, 1, () => 10),
  ),
  'pci-capabilities/vendor-data-read-no-side-effect': mutant(
    'a second vendor data capability whose last byte counts the reads of configuration space',
    WITH_VENDOR_DATA,
    appendCaps([vendor(0x8086, 8)], (offset, reads, placed) => (offset === placed[0]! + 7 ? reads & 0xff : undefined)),
  ),
};
