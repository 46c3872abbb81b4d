/** Mutants of family 'pci-cfg-access': our function's PCI configuration access window broken for one width and direction. */

import type { PciFunction } from '../../../../src/pci/function.js';
import {
  VIRTIO_PCI_CAP_CFG_TYPE,
  VIRTIO_PCI_CAP_LENGTH,
  VIRTIO_PCI_CAP_PCI_CFG,
  VIRTIO_PCI_CFG_CAP_DATA,
} from '../../../../src/spec/virtio-pci.js';
import type { Mutants } from './mutant.js';
import { capOffset, mutant, patchCapField, rng, type Mutation } from './pci-function-mutant.js';

/** pci_cfg_data accesses while cap.length is `width`: reads give 0, or writes go nowhere. */
function broken(direction: 'read' | 'write', width: number): Mutation {
  return (fn) => {
    const cap = capOffset(fn, VIRTIO_PCI_CAP_PCI_CFG);
    const aimed = (i: PciFunction, offset: number): boolean =>
      offset === cap + VIRTIO_PCI_CFG_CAP_DATA && i.configRead(cap + VIRTIO_PCI_CAP_LENGTH, 4) === width;
    return direction === 'read'
      ? [{ configRead: (i, o, s) => (aimed(i, o) ? 0 : i.configRead(o, s)) }]
      : [{ configWrite: (i, o, s, v) => (aimed(i, o) ? undefined : i.configWrite(o, s, v)) }];
  };
}

export const pciCfgAccessMutants: Mutants = {
  'pci-cfg-access/pci-cfg-present': mutant(
    'the PCI cfg capability has a reserved cfg_type',
    rng(),
    patchCapField(VIRTIO_PCI_CAP_PCI_CFG, VIRTIO_PCI_CAP_CFG_TYPE, 1, () => 0x0a),
  ),
  'pci-cfg-access/read-32': mutant('4-byte reads through the window give 0', rng(), broken('read', 4)),
  'pci-cfg-access/read-16': mutant('2-byte reads through the window give 0', rng(), broken('read', 2)),
  'pci-cfg-access/read-8': mutant('1-byte reads through the window give 0', rng(), broken('read', 1)),
  'pci-cfg-access/write-32': mutant('4-byte writes through the window are dropped', rng(), broken('write', 4)),
  'pci-cfg-access/write-16': mutant('2-byte writes through the window are dropped', rng(), broken('write', 2)),
  'pci-cfg-access/write-8': mutant('1-byte writes through the window are dropped', rng(), broken('write', 1)),
};
