/** A device-specific configuration space held as little-endian bytes (spec 2.5: config fields are little-endian). */

import type { AccessSize } from '../memory/access-size.js';

export class ConfigBytes {
  readonly bytes: Uint8Array;
  private readonly dv: DataView;

  constructor(size: number) {
    this.bytes = new Uint8Array(size);
    this.dv = new DataView(this.bytes.buffer);
  }

  /** Read `size` bytes at `offset`; the transport guarantees offset + size <= the config size. */
  read(offset: number, size: AccessSize): number {
    if (size === 1) return this.dv.getUint8(offset);
    if (size === 2) return this.dv.getUint16(offset, true);
    return this.dv.getUint32(offset, true);
  }

  set8(offset: number, value: number): void {
    this.dv.setUint8(offset, value);
  }
  set16(offset: number, value: number): void {
    this.dv.setUint16(offset, value, true);
  }
  set32(offset: number, value: number): void {
    this.dv.setUint32(offset, value >>> 0, true);
  }
}
