/**
 * A function's 256-byte configuration space fetched once (64 four-byte reads) and read locally, so
 * that probing and decoding cost a fixed number of bus round trips however many capabilities there are.
 */

import type { Bdf, PciBus } from './pci-bus.js';
import {
  PCI_CAPABILITY_LIST,
  PCI_COMMAND,
  PCI_CONFIG_SPACE_SIZE,
  PCI_DEVICE_ID,
  PCI_HEADER_TYPE,
  PCI_INTERRUPT_LINE,
  PCI_INTERRUPT_PIN,
  PCI_REVISION_ID,
  PCI_STATUS,
  PCI_SUBSYSTEM_ID,
  PCI_SUBSYSTEM_VENDOR_ID,
  PCI_VENDOR_ID,
} from '../spec/pci.js';

/** An immutable snapshot of configuration space with little-endian accessors. */
export class ConfigSpaceSnapshot {
  private readonly dv: DataView;

  /** @param bytes exactly 256 bytes, offset 0 first */
  constructor(readonly bytes: Uint8Array) {
    if (bytes.byteLength !== PCI_CONFIG_SPACE_SIZE) throw new RangeError(`config space must be ${PCI_CONFIG_SPACE_SIZE} bytes`);
    this.dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  /** Reads past the end return 0 rather than throwing: callers walk device-controlled pointers. */
  read8(offset: number): number {
    return offset >= 0 && offset + 1 <= PCI_CONFIG_SPACE_SIZE ? this.dv.getUint8(offset) : 0;
  }
  read16(offset: number): number {
    return offset >= 0 && offset + 2 <= PCI_CONFIG_SPACE_SIZE ? this.dv.getUint16(offset, true) : 0;
  }
  read32(offset: number): number {
    return offset >= 0 && offset + 4 <= PCI_CONFIG_SPACE_SIZE ? this.dv.getUint32(offset, true) : 0;
  }

  get vendorId(): number {
    return this.read16(PCI_VENDOR_ID);
  }
  get deviceId(): number {
    return this.read16(PCI_DEVICE_ID);
  }
  get command(): number {
    return this.read16(PCI_COMMAND);
  }
  get status(): number {
    return this.read16(PCI_STATUS);
  }
  get revision(): number {
    return this.read8(PCI_REVISION_ID);
  }
  /** Class code as base << 16 | sub << 8 | prog-if. */
  get classCode(): number {
    return this.read32(PCI_REVISION_ID) >>> 8;
  }
  get headerType(): number {
    return this.read8(PCI_HEADER_TYPE);
  }
  get subsystemVendorId(): number {
    return this.read16(PCI_SUBSYSTEM_VENDOR_ID);
  }
  get subsystemId(): number {
    return this.read16(PCI_SUBSYSTEM_ID);
  }
  get capabilityPointer(): number {
    return this.read8(PCI_CAPABILITY_LIST);
  }
  get interruptLine(): number {
    return this.read8(PCI_INTERRUPT_LINE);
  }
  get interruptPin(): number {
    return this.read8(PCI_INTERRUPT_PIN);
  }
}

/** Fetch all 256 bytes of `fn`'s configuration space with 4-byte reads. */
export async function readConfigSpace(bus: PciBus, fn: Bdf): Promise<ConfigSpaceSnapshot> {
  const bytes = new Uint8Array(PCI_CONFIG_SPACE_SIZE);
  const dv = new DataView(bytes.buffer);
  const reads: Promise<number>[] = [];
  // Issue all reads before awaiting any: a remote bus can pipeline them.
  for (let off = 0; off < PCI_CONFIG_SPACE_SIZE; off += 4) reads.push(bus.configRead(fn, off, 4));
  const words = await Promise.all(reads);
  words.forEach((w, i) => dv.setUint32(i * 4, w >>> 0, true));
  return new ConfigSpaceSnapshot(bytes);
}
