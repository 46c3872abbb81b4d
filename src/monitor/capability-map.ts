/**
 * Where a virtio PCI function's structures live, as a driver finds them (4.1.4): each BAR, and for
 * each virtio vendor capability and the MSI-X table and PBA, which BAR, offset and length; the
 * legacy header fills BAR0 of a transitional or legacy function (4.1.4.10). The PCI configuration
 * access capability (4.1.4.9) is a window in configuration space, not a BAR range: it is listed
 * with its place in configuration space. Decoded from a configuration space snapshot with the
 * bounded capability walk the probe uses, so a broken list is shown, not thrown.
 */

import type { DecodedBar } from '../pci/function.js';
import { readMsixCapability, walkCapabilities } from '../bus/capabilities.js';
import type { ConfigSpaceSnapshot } from '../bus/config-space-reader.js';
import { msixPbaSize } from '../pci/msix.js';
import { PCI_CAP_ID_MSIX, PCI_CAP_ID_VNDR, PCI_MSIX_ENTRY_SIZE } from '../spec/pci.js';
import { VIRTIO_PCI_CAP_NAMES, VIRTIO_PCI_CAP_PCI_CFG } from '../spec/virtio-pci.js';
import { readVirtioCap } from '../transport/pci/probe.js';
import { LEGACY_BAR } from '../transport/pci/legacy-device.js';

/** One structure and where it lives. */
export interface MappedStructure {
  /** The capability's cfg_type name ('common-cfg', 'notify-cfg', ...), 'msix-table', 'msix-pba' or 'legacy-header'. */
  readonly name: string;
  /** 'bar': [offset, offset + length) of BAR `bar`; 'config': of configuration space. */
  readonly space: 'bar' | 'config';
  /** The BAR (space 'bar'). */
  readonly bar: number | undefined;
  readonly offset: number;
  readonly length: number;
  /** Where the capability that points at it sits in configuration space (none for the legacy header). */
  readonly capOffset: number | undefined;
}

export interface CapabilityMap {
  /** The function's BARs, by slot, with the base the guest programmed (0: not yet). */
  readonly bars: readonly DecodedBar[];
  readonly structures: readonly MappedStructure[];
  /** Why the capability walk stopped early, when the list is broken. */
  readonly error: string | undefined;
}

/**
 * The map of a function whose configuration space is `cfg` and whose BARs are `bars`; `legacy`:
 * whether BAR0 holds the legacy header (a transitional or legacy function).
 */
export function capabilityMap(cfg: ConfigSpaceSnapshot, bars: readonly DecodedBar[], legacy: boolean): CapabilityMap {
  const structures: MappedStructure[] = [];
  const bar0 = bars.find((bar) => bar.index === LEGACY_BAR);
  if (legacy && bar0 !== undefined)
    structures.push({ name: 'legacy-header', space: 'bar', bar: LEGACY_BAR, offset: 0, length: bar0.size, capOffset: undefined });
  const walk = walkCapabilities(cfg);
  for (const { offset: capOffset, id } of walk.caps) {
    if (id === PCI_CAP_ID_VNDR) {
      const cap = readVirtioCap(cfg, capOffset);
      const name = VIRTIO_PCI_CAP_NAMES.get(cap.cfgType) ?? `cfg_type ${cap.cfgType}`;
      if (cap.cfgType === VIRTIO_PCI_CAP_PCI_CFG)
        structures.push({ name, space: 'config', bar: undefined, offset: capOffset, length: cap.capLen, capOffset });
      else structures.push({ name, space: 'bar', bar: cap.bar, offset: cap.offset, length: cap.length, capOffset });
    } else if (id === PCI_CAP_ID_MSIX) {
      const m = readMsixCapability(cfg, capOffset);
      structures.push(
        { name: 'msix-table', space: 'bar', bar: m.tableBar, offset: m.tableOffset, length: m.tableSize * PCI_MSIX_ENTRY_SIZE, capOffset },
        { name: 'msix-pba', space: 'bar', bar: m.pbaBar, offset: m.pbaOffset, length: msixPbaSize(m.tableSize), capOffset },
      );
    }
  }
  return { bars, structures, error: walk.error };
}
