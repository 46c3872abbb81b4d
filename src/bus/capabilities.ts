/**
 * The PCI capability list walk (PCI Local Bus 3.0 6.7), bounded because the device controls every
 * pointer: at most {@link PCI_CAP_WALK_LIMIT} entries, each pointer at or above the type-0 header and
 * 4-byte aligned, and no entry visited twice.
 */

import {
  PCI_CAP_LIST_ID,
  PCI_CAP_LIST_NEXT,
  PCI_HEADER_END,
  PCI_MSIX_BIR_MASK,
  PCI_MSIX_FLAGS,
  PCI_MSIX_FLAGS_ENABLE,
  PCI_MSIX_FLAGS_MASKALL,
  PCI_MSIX_FLAGS_QSIZE,
  PCI_MSIX_PBA,
  PCI_MSIX_TABLE,
  PCI_STATUS_CAP_LIST,
} from '../spec/pci.js';
import type { ConfigSpaceSnapshot } from './config-space-reader.js';

/** The most capabilities 192 bytes of 4-byte aligned entries can hold (Linux's PCI_FIND_CAP_TTL). */
export const PCI_CAP_WALK_LIMIT = 48;

export interface CapabilityEntry {
  /** Offset of the capability in configuration space. */
  readonly offset: number;
  /** Capability ID (PCI_CAP_ID_*). */
  readonly id: number;
}

export interface CapabilityWalk {
  /** Capabilities in list order, up to the first malformed pointer. */
  readonly caps: readonly CapabilityEntry[];
  /** Why the walk stopped early, or undefined when the list ended with a null pointer. */
  readonly error?: string;
}

/** Walk the capability list of a configuration space snapshot. Never throws. */
export function walkCapabilities(cfg: ConfigSpaceSnapshot): CapabilityWalk {
  const caps: CapabilityEntry[] = [];
  if ((cfg.status & PCI_STATUS_CAP_LIST) === 0) return { caps };
  const seen = new Set<number>();
  let from = 'capabilities pointer (0x34)';
  let pos = cfg.capabilityPointer;
  while (pos !== 0) {
    const where = `${from} -> 0x${pos.toString(16)}`;
    if (pos < PCI_HEADER_END) return { caps, error: `${where} points into the type-0 header` };
    // 6.7: the two low bits of a pointer are reserved; a device that sets them is not trusted.
    if ((pos & 3) !== 0) return { caps, error: `${where} is not 4-byte aligned` };
    if (seen.has(pos)) return { caps, error: `${where} loops back to an earlier capability` };
    if (caps.length === PCI_CAP_WALK_LIMIT) return { caps, error: `more than ${PCI_CAP_WALK_LIMIT} capabilities` };
    seen.add(pos);
    caps.push({ offset: pos, id: cfg.read8(pos + PCI_CAP_LIST_ID) });
    from = `next pointer of capability 0x${pos.toString(16)}`;
    pos = cfg.read8(pos + PCI_CAP_LIST_NEXT);
  }
  return { caps };
}

/** The MSI-X capability's fields (PCI Local Bus 3.0 6.8.2). */
export interface MsixCapability {
  readonly offset: number;
  /** Number of table entries (Table Size field + 1). */
  readonly tableSize: number;
  readonly enabled: boolean;
  readonly functionMasked: boolean;
  readonly tableBar: number;
  readonly tableOffset: number;
  readonly pbaBar: number;
  readonly pbaOffset: number;
}

/** Decode the MSI-X capability at `offset`. */
export function readMsixCapability(cfg: ConfigSpaceSnapshot, offset: number): MsixCapability {
  const control = cfg.read16(offset + PCI_MSIX_FLAGS);
  const table = cfg.read32(offset + PCI_MSIX_TABLE);
  const pba = cfg.read32(offset + PCI_MSIX_PBA);
  return {
    offset,
    tableSize: (control & PCI_MSIX_FLAGS_QSIZE) + 1,
    enabled: (control & PCI_MSIX_FLAGS_ENABLE) !== 0,
    functionMasked: (control & PCI_MSIX_FLAGS_MASKALL) !== 0,
    tableBar: table & PCI_MSIX_BIR_MASK,
    tableOffset: (table & ~PCI_MSIX_BIR_MASK) >>> 0,
    pbaBar: pba & PCI_MSIX_BIR_MASK,
    pbaOffset: (pba & ~PCI_MSIX_BIR_MASK) >>> 0,
  };
}
