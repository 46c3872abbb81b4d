/**
 * MSI-X, device side (PCI Local Bus 3.0 6.8.2): the capability, the vector table and the Pending
 * Bit Array, in a memory BAR of their own (as QEMU's msix_init_exclusive_bar: table at 0, PBA at
 * half the BAR, the BAR at least 4 KiB).
 *
 * A message for a vector is sent only while MSI-X is enabled and neither the vector (its Vector
 * Control mask bit) nor the function (MASKALL) is masked; otherwise its pending bit is set, and the
 * message goes out when the mask is lifted. Table entries start masked. Table and PBA accept reads
 * of any width inside them (byte-wise little-endian); PBA writes are ignored. Nothing here throws
 * for guest input.
 *
 *   const msix = new MsixTable(config, host, { vectors: 3, bar: 1 });
 *   endpoint.setBarRegion(1, msix.region);
 *   msix.notify(2);                                   // sends, or sets PBA bit 2 while masked
 */

import { UsageError } from '../errors.js';
import { joinU64 } from '../memory/guest-memory.js';
import {
  PCI_CAP_ID_MSIX,
  PCI_MSIX_CAP_SIZE,
  PCI_MSIX_ENTRY_CTRL_MASKBIT,
  PCI_MSIX_ENTRY_DATA,
  PCI_MSIX_ENTRY_LOWER_ADDR,
  PCI_MSIX_ENTRY_SIZE,
  PCI_MSIX_ENTRY_UPPER_ADDR,
  PCI_MSIX_ENTRY_VECTOR_CTRL,
  PCI_MSIX_FLAGS,
  PCI_MSIX_FLAGS_ENABLE,
  PCI_MSIX_FLAGS_MASKALL,
  PCI_MSIX_FLAGS_QSIZE,
  PCI_MSIX_PBA,
  PCI_MSIX_TABLE,
} from '../spec/pci.js';
import type { BarRegion } from './bar-region.js';
import type { Capability, ConfigSpace } from './config-space.js';
import type { BarDescriptor, DeviceHost } from './function.js';
import type { AccessSize } from '../memory/access-size.js';
import type { SnapshotReader } from '../snapshot/snapshot-reader.js';
import { bytes, struct, type SnapshotStruct } from '../snapshot/snapshot-value.js';

/** The smallest MSI-X BAR QEMU creates (one page). */
const MSIX_MIN_BAR_SIZE = 0x1000;

export interface MsixOptions {
  /** Table entries, 1..2048 (PCI 6.8.2.3: Table Size is 11 bits, N - 1). */
  readonly vectors: number;
  /** The BAR (its BIR) holding table and PBA. */
  readonly bar: number;
}

/** The memory BAR an MSI-X table of `vectors` entries needs: table and PBA, each in half of it. */
export function msixBarDescriptor(vectors: number): BarDescriptor {
  let size = MSIX_MIN_BAR_SIZE;
  while (size / 2 < vectors * PCI_MSIX_ENTRY_SIZE) size *= 2;
  return { kind: 'memory', size, is64: false, prefetchable: false };
}

/** See the file comment. */
export class MsixTable {
  readonly vectors: number;
  readonly capability: Capability;
  /** Table at 0, PBA at {@link pbaOffset}: to be served as the BAR's region. */
  readonly region: BarRegion;
  readonly pbaOffset: number;
  private readonly table: Uint8Array;
  private readonly view: DataView;
  private readonly pending: Uint8Array;
  private readonly enableListeners: ((enabled: boolean) => void)[] = [];
  private wasEnabled = false;

  constructor(
    config: ConfigSpace,
    private readonly host: Pick<DeviceHost, 'sendMsi'>,
    options: MsixOptions,
  ) {
    const n = options.vectors;
    if (!Number.isInteger(n) || n < 1 || n > PCI_MSIX_FLAGS_QSIZE + 1)
      throw new UsageError(`MSI-X: ${n} vectors is not in 1..${PCI_MSIX_FLAGS_QSIZE + 1}`);
    this.vectors = n;
    this.pbaOffset = msixBarDescriptor(n).size / 2;
    this.table = new Uint8Array(n * PCI_MSIX_ENTRY_SIZE);
    this.view = new DataView(this.table.buffer);
    // PBA: one bit per vector, in whole QWORDs (6.8.2.7).
    this.pending = new Uint8Array(Math.ceil(n / 64) * 8);
    for (let v = 0; v < n; v++)
      this.view.setUint32(v * PCI_MSIX_ENTRY_SIZE + PCI_MSIX_ENTRY_VECTOR_CTRL, PCI_MSIX_ENTRY_CTRL_MASKBIT, true);

    this.capability = config.addCapability({
      id: PCI_CAP_ID_MSIX,
      length: PCI_MSIX_CAP_SIZE,
      afterWrite: () => this.controlChanged(),
    });
    this.capability.set(PCI_MSIX_FLAGS, 2, n - 1);
    this.capability.setWritable(PCI_MSIX_FLAGS, 2, PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL);
    this.capability.set(PCI_MSIX_TABLE, 4, options.bar);
    this.capability.set(PCI_MSIX_PBA, 4, this.pbaOffset | options.bar);

    this.region = {
      read: (offset, size) => this.regionRead(offset, size),
      write: (offset, size, value) => this.regionWrite(offset, size, value),
    };
  }

  private get control(): number {
    return this.capability.get(PCI_MSIX_FLAGS, 2);
  }
  /** MSI-X Enable is set: the function signals by messages only (no INTx). */
  get enabled(): boolean {
    return (this.control & PCI_MSIX_FLAGS_ENABLE) !== 0;
  }
  /** Function Mask (MASKALL) is set. */
  get functionMasked(): boolean {
    return (this.control & PCI_MSIX_FLAGS_MASKALL) !== 0;
  }
  /** Whether table entry `vector`'s own mask bit is set. */
  vectorMasked(vector: number): boolean {
    return (this.entry(vector, PCI_MSIX_ENTRY_VECTOR_CTRL) & PCI_MSIX_ENTRY_CTRL_MASKBIT) !== 0;
  }
  /** Whether `vector`'s pending bit is set. */
  isPending(vector: number): boolean {
    return (this.pending[vector >>> 3]! & (1 << (vector & 7))) !== 0;
  }
  /** Whether `vector` is an entry of the table. */
  has(vector: number): boolean {
    return Number.isInteger(vector) && vector >= 0 && vector < this.vectors;
  }

  /** Run `listener` whenever MSI-X Enable changes (the function silences INTx while it is set). */
  onEnableChange(listener: (enabled: boolean) => void): void {
    this.enableListeners.push(listener);
  }

  /**
   * Signal `vector`: send its message, or set its pending bit while it or the function is masked.
   * Vectors outside the table, and any vector while MSI-X is disabled, do nothing.
   */
  notify(vector: number): void {
    if (!this.enabled || !this.has(vector)) return;
    if (this.functionMasked || this.vectorMasked(vector)) this.setPending(vector, true);
    else this.send(vector);
  }

  /** The table and the PBA (docs/snapshots.md); the capability's control word is in config space. */
  snapshot(): SnapshotStruct {
    return struct({ table: bytes(this.table), pba: bytes(this.pending) });
  }

  /** Check `r` (SnapshotError otherwise) and return what applies it; run after config space is restored. */
  prepareRestore(r: SnapshotReader): () => void {
    const table = r.bytes('table', this.table.byteLength).slice();
    const pba = r.bytes('pba', this.pending.byteLength).slice();
    return () => {
      this.table.set(table);
      this.pending.set(pba);
      this.wasEnabled = this.enabled;
    };
  }

  private entry(vector: number, field: number): number {
    return this.view.getUint32(vector * PCI_MSIX_ENTRY_SIZE + field, true);
  }

  private send(vector: number): void {
    const address = joinU64(this.entry(vector, PCI_MSIX_ENTRY_LOWER_ADDR), this.entry(vector, PCI_MSIX_ENTRY_UPPER_ADDR));
    this.host.sendMsi(address, this.entry(vector, PCI_MSIX_ENTRY_DATA));
  }

  private setPending(vector: number, on: boolean): void {
    const bit = 1 << (vector & 7);
    this.pending[vector >>> 3] = on ? this.pending[vector >>> 3]! | bit : this.pending[vector >>> 3]! & ~bit;
  }

  /** 6.8.2.9: a pending vector whose masks are all lifted sends its message and clears its bit. */
  private deliverPending(vector: number): void {
    if (this.enabled && !this.functionMasked && !this.vectorMasked(vector) && this.isPending(vector)) {
      this.setPending(vector, false);
      this.send(vector);
    }
  }

  private controlChanged(): void {
    const enabled = this.enabled;
    if (enabled !== this.wasEnabled) {
      this.wasEnabled = enabled;
      for (const listener of this.enableListeners) listener(enabled);
    }
    for (let v = 0; v < this.vectors; v++) this.deliverPending(v);
  }

  private regionRead(offset: number, size: AccessSize): number {
    const bytes = offset < this.pbaOffset ? this.table : this.pending;
    const base = offset < this.pbaOffset ? 0 : this.pbaOffset;
    let value = 0;
    for (let i = size - 1; i >= 0; i--) value = value * 256 + (bytes[offset - base + i] ?? 0);
    return value;
  }

  private regionWrite(offset: number, size: AccessSize, value: number): void {
    if (offset >= this.pbaOffset || offset + size > this.table.length) return; // the PBA is read-only
    for (let i = 0, v = value >>> 0; i < size; i++, v >>>= 8) this.table[offset + i] = v & 0xff;
    // A write touching Vector Control may have unmasked the vector.
    const vector = Math.floor(offset / PCI_MSIX_ENTRY_SIZE);
    if (offset + size > vector * PCI_MSIX_ENTRY_SIZE + PCI_MSIX_ENTRY_VECTOR_CTRL) this.deliverPending(vector);
  }
}
