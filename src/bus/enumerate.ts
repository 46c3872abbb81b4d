/** Finding the functions on a bus: the configuration-space scan a BIOS or OS does at boot. */

import { bdf, type Bdf, type PciBus } from './pci-bus.js';
import { PCI_HEADER_TYPE, PCI_VENDOR_ID } from '../spec/pci.js';
import { PCI_DEVICES_PER_BUS, PCI_FUNCTIONS_PER_DEVICE, PCI_HEADER_TYPE_MULTI_FUNCTION } from '../spec/pci-enumeration.js';

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
 * multi-function devices. One 4-byte read gives vendor and device ID together; each round of reads
 * is issued at once, so a remote bus pipelines them.
 */
export async function enumerate(bus: PciBus, busNumber = 0): Promise<PciFunctionId[]> {
  const devices = Array.from({ length: PCI_DEVICES_PER_BUS }, (_, device) => device);
  const present = (await Promise.all(devices.map((device) => identify(bus, bdf(busNumber, device, 0))))).filter((f) => f !== undefined);
  const headers = await Promise.all(present.map((f) => bus.configRead(f.bdf, PCI_HEADER_TYPE, 1)));
  const found: PciFunctionId[] = [];
  for (const [i, f0] of present.entries()) {
    found.push(f0);
    if ((headers[i]! & PCI_HEADER_TYPE_MULTI_FUNCTION) === 0) continue;
    const device = (f0.bdf >> 3) & 0x1f;
    const others = Array.from({ length: PCI_FUNCTIONS_PER_DEVICE - 1 }, (_, k) => identify(bus, bdf(busNumber, device, k + 1)));
    for (const f of await Promise.all(others)) if (f !== undefined) found.push(f);
  }
  return found;
}

/** The IDs of the function at `addr`, or undefined when nothing answers there. */
async function identify(bus: PciBus, addr: Bdf): Promise<PciFunctionId | undefined> {
  const ids = (await bus.configRead(addr, PCI_VENDOR_ID, 4)) >>> 0;
  const vendorId = ids & 0xffff;
  return absent(vendorId) ? undefined : { bdf: addr, vendorId, deviceId: ids >>> 16 };
}
