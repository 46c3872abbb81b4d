/**
 * Vendor data capabilities, driver side (spec 4.1.4.8): read for reporting only. They never change
 * what the probe decides (4.1.4.8.2: a driver uses them for debugging and reporting), and their data
 * is shown with its vendor_id so that a reader qualifies it before interpreting it.
 */

import type { ConfigSpaceSnapshot } from '../../bus/config-space-reader.js';
import { PCI_CONFIG_SPACE_SIZE } from '../../spec/pci.js';
import {
  VIRTIO_PCI_CAP_LEN,
  VIRTIO_PCI_VNDR_DATA_HEADER_SIZE,
  VIRTIO_PCI_VNDR_DATA_SIZE_MULTIPLE,
  VIRTIO_PCI_VNDR_DATA_VENDOR_ID,
} from '../../spec/virtio-pci.js';

/** One vendor data capability as read from configuration space. */
export interface VendorDataCap {
  /** Where the capability sits in configuration space. */
  readonly capOffset: number;
  readonly capLen: number;
  /** The PCI-SIG vendor ID that says how to read `data`. */
  readonly vendorId: number;
  /** The bytes after vendor_id, to cap_len (a copy: nothing the caller does reaches the device). */
  readonly data: Uint8Array;
  /** What the capability gets wrong and the reader should know (4.1.4.8.1), if anything. */
  readonly problems: readonly string[];
}

/**
 * Read the vendor data capability at `capOffset`, or say why it cannot be read at all: a cap_len too
 * short for vendor_id, or one that runs past configuration space (its bytes would be invented).
 */
export function readVendorData(cfg: ConfigSpaceSnapshot, capOffset: number): VendorDataCap | { readonly unreadable: string } {
  const capLen = cfg.read8(capOffset + VIRTIO_PCI_CAP_LEN);
  if (capLen < VIRTIO_PCI_VNDR_DATA_HEADER_SIZE)
    return { unreadable: `cap_len ${capLen} is shorter than struct virtio_pci_vndr_data (${VIRTIO_PCI_VNDR_DATA_HEADER_SIZE})` };
  if (capOffset + capLen > PCI_CONFIG_SPACE_SIZE)
    return { unreadable: `cap_len ${capLen} runs past the end of configuration space (${PCI_CONFIG_SPACE_SIZE} bytes)` };
  const vendorId = cfg.read16(capOffset + VIRTIO_PCI_VNDR_DATA_VENDOR_ID);
  const problems: string[] = [];
  if (capLen % VIRTIO_PCI_VNDR_DATA_SIZE_MULTIPLE !== 0)
    problems.push(`cap_len ${capLen} is not a multiple of ${VIRTIO_PCI_VNDR_DATA_SIZE_MULTIPLE}`);
  const data = cfg.bytes.slice(capOffset + VIRTIO_PCI_VNDR_DATA_HEADER_SIZE, capOffset + capLen);
  return { capOffset, capLen, vendorId, data, problems };
}

/** "vendor-cfg cap at 0x60: vendor 0x8086, 2 bytes of data: 01 02". */
export function describeVendorData(cap: VendorDataCap): string {
  const bytes = [...cap.data].map((b) => b.toString(16).padStart(2, '0')).join(' ');
  const problems = cap.problems.length > 0 ? ` (${cap.problems.join('; ')})` : '';
  return `vendor-cfg cap at 0x${cap.capOffset.toString(16)}: vendor 0x${cap.vendorId.toString(16).padStart(4, '0')}, ${cap.data.length} bytes of data${bytes ? `: ${bytes}` : ''}${problems}`;
}
