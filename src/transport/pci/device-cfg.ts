/**
 * The device-specific configuration structure, device side (4.1.4.6): accesses inside the device's
 * config go to the device model (through the core); outside, reads return all-ones and writes do
 * nothing (as QEMU 7.2).
 */

import { ALL_ONES, truncate, type AccessSize } from '../../memory/access-size.js';
import type { BarRegion } from '../../pci/bar-region.js';
import type { DeviceCore } from '../../core/device-core.js';

/** The device configuration block of BAR4 over `core`. */
export function deviceCfgRegion(core: DeviceCore): BarRegion {
  return {
    read: (offset: number, size: AccessSize) => core.readDeviceConfig(offset, size) ?? ALL_ONES[size],
    write: (offset: number, size: AccessSize, value: number) => core.writeDeviceConfig(offset, size, truncate(value, size)),
  };
}
