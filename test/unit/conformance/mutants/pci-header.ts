/** Mutants of family 'pci-header': our function with one of its PCI IDs or its capability list broken. */

import { PCI_DEVICE_ID, PCI_REVISION_ID, PCI_VENDOR_ID } from '../../../../src/spec/pci.js';
import { VIRTIO_PCI_CAP_PCI_CFG } from '../../../../src/spec/virtio-pci.js';
import type { Mutants } from './mutant.js';
import { blk, bytesAt, capOffset, mutant, patchBytes, plug, rng } from './pci-function-mutant.js';

export const pciHeaderMutants: Mutants = {
  'pci-header/pci-capability-list': mutant(
    'the last capability points back at the PCI cfg capability: the list loops',
    rng(),
    patchBytes((fn) => {
      let last = capOffset(fn, VIRTIO_PCI_CAP_PCI_CFG);
      for (let n = 0; fn.configRead(last + 1, 1) !== 0 && n < 48; n++) last = fn.configRead(last + 1, 1);
      return new Map([[last + 1, capOffset(fn, VIRTIO_PCI_CAP_PCI_CFG)]]);
    }),
  ),
  'pci-header/vendor-id': mutant(
    'vendor ID 0x1af5',
    rng(),
    patchBytes(() => new Map(bytesAt(PCI_VENDOR_ID, 2, 0x1af5))),
  ),
  'pci-header/device-id': mutant(
    "a transitional block device with the network device's transitional ID",
    blk({ mode: 'transitional' }),
    patchBytes(() => new Map(bytesAt(PCI_DEVICE_ID, 2, 0x1000))),
  ),
  'pci-header/non-transitional-device-id': mutant(
    'a modern-only entropy device with the transitional device ID 0x1005',
    rng(),
    patchBytes(() => new Map(bytesAt(PCI_DEVICE_ID, 2, 0x1005))),
  ),
  'pci-header/non-transitional-revision': mutant(
    'a modern-only device with revision 0',
    rng(),
    patchBytes(() => new Map([[PCI_REVISION_ID, 0]])),
  ),
  'pci-header/non-transitional-subsystem-id': {
    breaks: 'a modern-only device with subsystem ID 4 (a legacy driver would take it for an entropy device)',
    original: (machine) => plug(machine, rng(), []),
    mutant: (machine) => plug(machine, rng({ subsystemId: 4 }), []),
  },
};
