/**
 * A plain (non-virtio) PCI function for testing emulator adapters: BAR0 is 4 KiB of memory and BAR1
 * 32 I/O ports, both little-endian scratch registers that record every access with its width. Built
 * from the same ConfigSpace and PciEndpoint as the virtio functions, so BAR sizing and the command
 * register behave as theirs do. No driver in the test guest binds to it.
 */

import { ConfigSpace } from '../../src/pci/config-space.js';
import { PciEndpoint } from '../../src/pci/endpoint.js';
import type { DeviceHost } from '../../src/pci/function.js';
import type { AccessSize } from '../../src/memory/access-size.js';
import { PCI_CLASS_OTHERS } from '../../src/spec/pci.js';
import { PCI_INTERRUPT_PIN_INTA } from '../../src/spec/pci-header.js';

/** IDs no Linux driver claims (the PCI SIG's vendor ID for experiments, an arbitrary device). */
export const PROBE_VENDOR_ID = 0x1234;
export const PROBE_DEVICE_ID = 0x7e57;
export const PROBE_MEMORY_BAR = 0;
export const PROBE_MEMORY_SIZE = 4096;
export const PROBE_IO_BAR = 1;
export const PROBE_IO_SIZE = 32;

export interface BarAccess {
  readonly bar: number;
  readonly offset: number;
  readonly size: AccessSize;
  readonly write: boolean;
  readonly value: number;
}

function scratch(bytes: Uint8Array, bar: number, log: BarAccess[]) {
  const dv = new DataView(bytes.buffer);
  return {
    read(offset: number, size: AccessSize): number {
      const value = size === 1 ? dv.getUint8(offset) : size === 2 ? dv.getUint16(offset, true) : dv.getUint32(offset, true);
      log.push({ bar, offset, size, write: false, value });
      return value;
    },
    write(offset: number, size: AccessSize, value: number): void {
      if (size === 1) dv.setUint8(offset, value);
      else if (size === 2) dv.setUint16(offset, value, true);
      else dv.setUint32(offset, value, true);
      log.push({ bar, offset, size, write: true, value });
    },
  };
}

export class ProbeFunction extends PciEndpoint {
  readonly memory = new Uint8Array(PROBE_MEMORY_SIZE);
  readonly io = new Uint8Array(PROBE_IO_SIZE);
  readonly accesses: BarAccess[] = [];

  constructor(host: DeviceHost) {
    super(
      new ConfigSpace(
        {
          vendorId: PROBE_VENDOR_ID,
          deviceId: PROBE_DEVICE_ID,
          revisionId: 0,
          classCode: PCI_CLASS_OTHERS,
          subsystemVendorId: PROBE_VENDOR_ID,
          subsystemId: PROBE_DEVICE_ID,
          interruptPin: PCI_INTERRUPT_PIN_INTA,
        },
        [
          { kind: 'memory', size: PROBE_MEMORY_SIZE, is64: false, prefetchable: false },
          { kind: 'io', size: PROBE_IO_SIZE, is64: false, prefetchable: false },
        ],
      ),
      host,
    );
    this.setBarRegion(PROBE_MEMORY_BAR, scratch(this.memory, PROBE_MEMORY_BAR, this.accesses));
    this.setBarRegion(PROBE_IO_BAR, scratch(this.io, PROBE_IO_BAR, this.accesses));
  }
}
