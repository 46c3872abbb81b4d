/** Mutants of family 'pci-legacy': a transitional block device with its IDs or its legacy header broken. */

import type { PciFunction } from '../../../../src/pci/function.js';
import { PCI_BASE_ADDRESS_0, PCI_BASE_ADDRESS_SPACE_IO, PCI_REVISION_ID } from '../../../../src/spec/pci.js';
import {
  VIRTIO_PCI_CONFIG_OFF_MSIX,
  VIRTIO_PCI_CONFIG_OFF_NO_MSIX,
  VIRTIO_PCI_GUEST_FEATURES,
  VIRTIO_PCI_QUEUE_PFN,
  VIRTIO_PCI_QUEUE_SEL,
  VIRTIO_PCI_STATUS,
} from '../../../../src/spec/virtio-pci.js';
import { LEGACY_BAR } from '../../../../src/transport/pci/legacy-device.js';
import type { Mutants } from './mutant.js';
import { blk, mutant, onBarRead, onBarWrite, patchBytes, plug, type Mutation } from './pci-function-mutant.js';

const transitional = blk({ mode: 'transitional' });
const transitionalMsix = blk({ mode: 'transitional', msixVectors: 2 });

/** Reads of BAR0 at `from` and beyond go to `shift` bytes further on, while `when` holds. */
function configMoved(from: number, shift: number, when: (fn: { msix?: { enabled: boolean } | undefined }) => boolean): Mutation {
  return (fn) => [
    {
      barRead: (i: PciFunction, b, o, s) => (b === LEGACY_BAR && o >= from && when(fn) ? i.barRead(b, o + shift, s) : i.barRead(b, o, s)),
    },
  ];
}

export const pciLegacyMutants: Mutants = {
  'pci-legacy/transitional-revision-zero': mutant(
    'a transitional device with revision 1',
    transitional,
    patchBytes(() => new Map([[PCI_REVISION_ID, 1]])),
  ),
  'pci-legacy/transitional-subsystem-id': {
    breaks: "a transitional block device with QEMU's modern subsystem ID 0x1100",
    original: (machine) => plug(machine, transitional, []),
    mutant: (machine) => plug(machine, blk({ mode: 'transitional', subsystemId: 0x1100 }), []),
  },
  'pci-legacy/bar0-io': mutant('BAR0 decodes as a memory BAR', transitional, () => [
    {
      configRead: (i, o, s) =>
        o === PCI_BASE_ADDRESS_0 && s === 4 ? (i.configRead(o, s) & ~PCI_BASE_ADDRESS_SPACE_IO) >>> 0 : i.configRead(o, s),
    },
  ]),
  'pci-legacy/header-status': mutant(
    'the legacy Device Status ignores non-zero writes',
    transitional,
    onBarWrite(LEGACY_BAR, VIRTIO_PCI_STATUS, (i, s, v) =>
      (v & 0xff) === 0 ? i.barWrite(LEGACY_BAR, VIRTIO_PCI_STATUS, s, v) : undefined,
    ),
  ),
  'pci-legacy/header-queue-select': mutant(
    'the legacy Queue Select reads 0',
    transitional,
    onBarRead(LEGACY_BAR, VIRTIO_PCI_QUEUE_SEL, () => 0),
  ),
  'pci-legacy/header-queue-pfn': mutant(
    'the legacy Queue Address reads 0',
    transitional,
    onBarRead(LEGACY_BAR, VIRTIO_PCI_QUEUE_PFN, () => 0),
  ),
  'pci-legacy/header-guest-features': mutant(
    'the legacy Driver Features reads 0',
    transitional,
    onBarRead(LEGACY_BAR, VIRTIO_PCI_GUEST_FEATURES, () => 0),
  ),
  'pci-legacy/config-after-header': mutant(
    'device-specific configuration starts 4 bytes late in BAR0',
    transitional,
    configMoved(VIRTIO_PCI_CONFIG_OFF_NO_MSIX, 4, () => true),
  ),
  'pci-legacy/config-after-header-msix': mutant(
    'with MSI-X on, device-specific configuration stays at 20',
    transitionalMsix,
    configMoved(VIRTIO_PCI_CONFIG_OFF_MSIX, -4, (fn) => fn.msix?.enabled === true),
  ),
  'pci-legacy/config-any-width': mutant('single-byte reads of legacy device-specific configuration give 0', transitional, () => [
    { barRead: (i, b, o, s) => (b === LEGACY_BAR && o >= VIRTIO_PCI_CONFIG_OFF_NO_MSIX && s === 1 ? 0 : i.barRead(b, o, s)) },
  ]),
};
