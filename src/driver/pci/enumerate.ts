/** Finding the functions on a bus: the configuration-space scan a BIOS or OS does at boot. */

import { bdf, type Bdf, type PciBus } from '../pci-bus.js';
import { PCI_HEADER_TYPE, PCI_VENDOR_ID } from '../../spec/pci.js';
import { PCI_DEVICES_PER_BUS, PCI_FUNCTIONS_PER_DEVICE, PCI_HEADER_TYPE_MULTI_FUNCTION } from '../../spec/pci-enumeration.js';

/** A function found by {@link enumerate}. */
export interface PciFunctionId {
  readonly bdf: Bdf;
  readonly vendorId: number;
  readonly deviceId: number;
}

/** Whether a vendor ID read means "nothing here" (all-ones from an empty slot, or zero). */
function absent(vendorId: number): boolean {
  return vendorId === 0xffff || vendorId === 0;
}

/**
 * Scan bus `busNumber` (default 0): devices 0..31, function 0 of each, and functions 1..7 of
 * multi-function devices. One 4-byte read gives vendor and device ID together.
 */
export async function enumerate(bus: PciBus, busNumber = 0): Promise<PciFunctionId[]> {
  const found: PciFunctionId[] = [];
  for (let device = 0; device < PCI_DEVICES_PER_BUS; device++) {
    for (let fnNumber = 0; fnNumber < PCI_FUNCTIONS_PER_DEVICE; fnNumber++) {
      const addr = bdf(busNumber, device, fnNumber);
      const ids = (await bus.configRead(addr, PCI_VENDOR_ID, 4)) >>> 0;
      const vendorId = ids & 0xffff;
      if (absent(vendorId)) {
        if (fnNumber === 0) break;
        continue;
      }
      found.push({ bdf: addr, vendorId, deviceId: ids >>> 16 });
      if (fnNumber === 0 && ((await bus.configRead(addr, PCI_HEADER_TYPE, 1)) & PCI_HEADER_TYPE_MULTI_FUNCTION) === 0) break;
    }
  }
  return found;
}
