/**
 * Vendor data capabilities, device side (spec 4.1.4.8: struct virtio_pci_vndr_data): a vendor's own
 * bytes in configuration space, for debugging and reporting. They are plain read-only bytes (4.1.4.8.1:
 * reads have no side effect), padded with zeroes to a multiple of 4 bytes.
 */

import { UsageError } from '../../errors.js';
import type { Capability, ConfigSpace } from '../../pci/config-space.js';
import { PCI_CAP_ID_VNDR } from '../../spec/pci.js';
import { VIRTIO_PCI_VENDOR_ID } from '../../spec/ids.js';
import {
  VIRTIO_PCI_CAP_CFG_TYPE,
  VIRTIO_PCI_CAP_LEN,
  VIRTIO_PCI_CAP_VENDOR_CFG,
  VIRTIO_PCI_VNDR_DATA_HEADER_SIZE,
  VIRTIO_PCI_VNDR_DATA_SIZE_MULTIPLE,
  VIRTIO_PCI_VNDR_DATA_VENDOR_ID,
} from '../../spec/virtio-pci.js';

/** One vendor data capability as a function declares it. */
export interface VendorData {
  /** The PCI-SIG vendor ID that says how to read `data`; never 0x1af4 (4.1.4.8.1). */
  readonly vendorId: number;
  /** The vendor-defined bytes after vendor_id. */
  readonly data: Uint8Array;
}

/** Add one struct virtio_pci_vndr_data to `config`; UsageError when the spec forbids it or it cannot fit. */
export function addVendorDataCap(config: ConfigSpace, vendor: VendorData): Capability {
  const { vendorId, data } = vendor;
  if (!Number.isInteger(vendorId) || vendorId < 0 || vendorId > 0xffff) throw new UsageError(`vendor_id ${vendorId} is not a 16-bit ID`);
  if (vendorId === VIRTIO_PCI_VENDOR_ID) throw new UsageError('a vendor data capability may not carry vendor_id 0x1af4 (spec 4.1.4.8.1)');
  const length =
    Math.ceil((VIRTIO_PCI_VNDR_DATA_HEADER_SIZE + data.length) / VIRTIO_PCI_VNDR_DATA_SIZE_MULTIPLE) * VIRTIO_PCI_VNDR_DATA_SIZE_MULTIPLE;
  // ConfigSpace refuses a capability that does not fit what is left of configuration space.
  const cap = config.addCapability({ id: PCI_CAP_ID_VNDR, length });
  cap.set(VIRTIO_PCI_CAP_LEN, 1, length);
  cap.set(VIRTIO_PCI_CAP_CFG_TYPE, 1, VIRTIO_PCI_CAP_VENDOR_CFG);
  cap.set(VIRTIO_PCI_VNDR_DATA_VENDOR_ID, 2, vendorId);
  data.forEach((byte, i) => cap.set(VIRTIO_PCI_VNDR_DATA_HEADER_SIZE + i, 1, byte));
  return cap;
}
