/**
 * Builds a PCI configuration space image by name (header fields, BARs, capabilities) for driver-side
 * tests, so that no test writes config-space offsets by hand. Malformed images (loops, pointers into
 * the header, bad capabilities) are built with the same calls plus {@link ConfigSpaceBuilder.pointer}.
 */

import {
  PCI_CAPABILITY_LIST,
  PCI_CAP_LIST_NEXT,
  PCI_CAP_ID_MSIX,
  PCI_CAP_ID_VNDR,
  PCI_CLASS_DEVICE,
  PCI_CONFIG_SPACE_SIZE,
  PCI_DEVICE_ID,
  PCI_HEADER_END,
  PCI_HEADER_TYPE,
  PCI_INTERRUPT_PIN,
  PCI_MSIX_FLAGS,
  PCI_MSIX_PBA,
  PCI_MSIX_TABLE,
  PCI_REVISION_ID,
  PCI_STATUS,
  PCI_STATUS_CAP_LIST,
  PCI_SUBSYSTEM_ID,
  PCI_SUBSYSTEM_VENDOR_ID,
  PCI_VENDOR_ID,
} from '../spec/pci.js';
import {
  VIRTIO_PCI_CAP64_LENGTH_HI,
  VIRTIO_PCI_CAP64_OFFSET_HI,
  VIRTIO_PCI_CAP64_SIZE,
  VIRTIO_PCI_CAP_BAR,
  VIRTIO_PCI_CAP_CFG_TYPE,
  VIRTIO_PCI_CAP_ID,
  VIRTIO_PCI_CAP_SHARED_MEMORY_CFG,
  VIRTIO_PCI_CAP_VENDOR_CFG,
  VIRTIO_PCI_VNDR_DATA_HEADER_SIZE,
  VIRTIO_PCI_VNDR_DATA_VENDOR_ID,
  VIRTIO_PCI_CAP_LEN,
  VIRTIO_PCI_CAP_LENGTH,
  VIRTIO_PCI_CAP_OFFSET,
  VIRTIO_PCI_CAP_SIZE,
  VIRTIO_PCI_NOTIFY_CAP_MULT,
  VIRTIO_PCI_NOTIFY_CAP_SIZE,
  VIRTIO_PCI_CAP_COMMON_CFG,
  VIRTIO_PCI_CAP_DEVICE_CFG,
  VIRTIO_PCI_CAP_ISR_CFG,
  VIRTIO_PCI_CAP_NOTIFY_CFG,
} from '../spec/virtio-pci.js';

export interface BarSpec {
  readonly kind: 'memory' | 'io';
  readonly size: number;
  readonly is64?: boolean;
  readonly prefetchable?: boolean;
}

export interface VirtioCapSpec {
  readonly cfgType: number;
  readonly bar: number;
  readonly offset: number;
  readonly length: number;
  /** notify_off_multiplier (NOTIFY_CFG only). */
  readonly multiplier?: number;
  /** Override cap_len (default 16, or 20 for NOTIFY_CFG). */
  readonly capLen?: number;
}

/** A shared memory capability (struct virtio_pci_cap64, 4.1.4.7); offset and length may be 4 GiB or more. */
export interface SharedMemoryCapSpec {
  readonly bar: number;
  /** shmid (cap.id). */
  readonly id: number;
  readonly offset: number;
  readonly length: number;
  /** Override cap_len (default 24). */
  readonly capLen?: number;
}

export interface HeaderSpec {
  readonly vendorId?: number;
  readonly deviceId: number;
  readonly revision?: number;
  readonly subsystemVendorId?: number;
  readonly subsystemId?: number;
  readonly classCode?: number;
  readonly headerType?: number;
  readonly interruptPin?: number;
}

/** A built function: the config image and the BARs the fake bus should implement. */
export interface BuiltFunction {
  readonly config: Uint8Array;
  readonly bars: readonly (BarSpec | undefined)[];
}

export class ConfigSpaceBuilder {
  private readonly bytes = new Uint8Array(PCI_CONFIG_SPACE_SIZE);
  private readonly dv = new DataView(this.bytes.buffer);
  private readonly bars: (BarSpec | undefined)[] = [];
  private readonly caps: number[] = [];
  private readonly pointers = new Map<number, number>();
  private nextFree = PCI_HEADER_END;

  constructor(header: HeaderSpec) {
    this.dv.setUint16(PCI_VENDOR_ID, header.vendorId ?? 0x1af4, true);
    this.dv.setUint16(PCI_DEVICE_ID, header.deviceId, true);
    this.dv.setUint8(PCI_REVISION_ID, header.revision ?? 1);
    this.dv.setUint16(PCI_CLASS_DEVICE, (header.classCode ?? 0xff0000) >>> 8, true);
    this.dv.setUint8(PCI_HEADER_TYPE, header.headerType ?? 0);
    this.dv.setUint16(PCI_SUBSYSTEM_VENDOR_ID, header.subsystemVendorId ?? 0x1af4, true);
    this.dv.setUint16(PCI_SUBSYSTEM_ID, header.subsystemId ?? 0, true);
    this.dv.setUint8(PCI_INTERRUPT_PIN, header.interruptPin ?? 1);
  }

  bar(index: number, spec: BarSpec): this {
    this.bars[index] = spec;
    return this;
  }

  /** Append a raw capability of `length` bytes; returns the builder. Body bytes after the header are zero. */
  cap(id: number, length: number, fill?: (offset: number, dv: DataView) => void): this {
    const offset = this.nextFree;
    if (offset + length > PCI_CONFIG_SPACE_SIZE) throw new RangeError('config space full');
    this.dv.setUint8(offset, id);
    this.caps.push(offset);
    fill?.(offset, this.dv);
    this.nextFree = offset + Math.ceil(length / 4) * 4;
    return this;
  }

  /** Append a virtio vendor capability (struct virtio_pci_cap / virtio_pci_notify_cap). */
  virtioCap(spec: VirtioCapSpec): this {
    const size = spec.cfgType === VIRTIO_PCI_CAP_NOTIFY_CFG ? VIRTIO_PCI_NOTIFY_CAP_SIZE : VIRTIO_PCI_CAP_SIZE;
    return this.cap(PCI_CAP_ID_VNDR, Math.max(size, spec.capLen ?? 0), (off, dv) => {
      dv.setUint8(off + VIRTIO_PCI_CAP_LEN, spec.capLen ?? size);
      dv.setUint8(off + VIRTIO_PCI_CAP_CFG_TYPE, spec.cfgType);
      dv.setUint8(off + VIRTIO_PCI_CAP_BAR, spec.bar);
      dv.setUint32(off + VIRTIO_PCI_CAP_OFFSET, spec.offset >>> 0, true);
      dv.setUint32(off + VIRTIO_PCI_CAP_LENGTH, spec.length >>> 0, true);
      if (spec.multiplier !== undefined) dv.setUint32(off + VIRTIO_PCI_NOTIFY_CAP_MULT, spec.multiplier >>> 0, true);
    });
  }

  /** Append a shared memory capability (offset_hi and length_hi hold bits 32-63). */
  sharedMemoryCap(spec: SharedMemoryCapSpec): this {
    const split = (v: number): [number, number] => [v >>> 0, Math.floor(v / 2 ** 32) >>> 0];
    return this.cap(PCI_CAP_ID_VNDR, Math.max(VIRTIO_PCI_CAP64_SIZE, spec.capLen ?? 0), (off, dv) => {
      const [offsetLo, offsetHi] = split(spec.offset);
      const [lengthLo, lengthHi] = split(spec.length);
      dv.setUint8(off + VIRTIO_PCI_CAP_LEN, spec.capLen ?? VIRTIO_PCI_CAP64_SIZE);
      dv.setUint8(off + VIRTIO_PCI_CAP_CFG_TYPE, VIRTIO_PCI_CAP_SHARED_MEMORY_CFG);
      dv.setUint8(off + VIRTIO_PCI_CAP_BAR, spec.bar);
      dv.setUint8(off + VIRTIO_PCI_CAP_ID, spec.id);
      dv.setUint32(off + VIRTIO_PCI_CAP_OFFSET, offsetLo, true);
      dv.setUint32(off + VIRTIO_PCI_CAP_LENGTH, lengthLo, true);
      dv.setUint32(off + VIRTIO_PCI_CAP64_OFFSET_HI, offsetHi, true);
      dv.setUint32(off + VIRTIO_PCI_CAP64_LENGTH_HI, lengthHi, true);
    });
  }

  /** Append a vendor data capability (struct virtio_pci_vndr_data, 4.1.4.8); cap_len defaults to header + data. */
  vendorDataCap(vendorId: number, data: readonly number[], capLen?: number): this {
    const length = VIRTIO_PCI_VNDR_DATA_HEADER_SIZE + data.length;
    return this.cap(PCI_CAP_ID_VNDR, Math.max(length, capLen ?? 0), (off, dv) => {
      dv.setUint8(off + VIRTIO_PCI_CAP_LEN, capLen ?? length);
      dv.setUint8(off + VIRTIO_PCI_CAP_CFG_TYPE, VIRTIO_PCI_CAP_VENDOR_CFG);
      dv.setUint16(off + VIRTIO_PCI_VNDR_DATA_VENDOR_ID, vendorId, true);
      data.forEach((b, i) => dv.setUint8(off + VIRTIO_PCI_VNDR_DATA_HEADER_SIZE + i, b));
    });
  }

  /** Append an MSI-X capability with `tableSize` entries, table and PBA in `bar`. */
  msix(tableSize: number, bar: number, tableOffset: number, pbaOffset: number): this {
    return this.cap(PCI_CAP_ID_MSIX, 12, (off, dv) => {
      dv.setUint16(off + PCI_MSIX_FLAGS, tableSize - 1, true);
      dv.setUint32(off + PCI_MSIX_TABLE, tableOffset | bar, true);
      dv.setUint32(off + PCI_MSIX_PBA, pbaOffset | bar, true);
    });
  }

  /**
   * Force a pointer: `from` is 'head' (the capabilities pointer at 0x34) or the index of a
   * capability whose next pointer to overwrite.
   */
  pointer(from: 'head' | number, value: number): this {
    this.pointers.set(from === 'head' ? -1 : from, value);
    return this;
  }

  /** Offset of capability number `index` (0 = first appended). */
  capOffset(index: number): number {
    return this.caps[index]!;
  }

  build(): BuiltFunction {
    const config = this.bytes.slice();
    const dv = new DataView(config.buffer);
    if (this.caps.length > 0 || this.pointers.has(-1)) dv.setUint16(PCI_STATUS, PCI_STATUS_CAP_LIST, true);
    dv.setUint8(PCI_CAPABILITY_LIST, this.pointers.get(-1) ?? this.caps[0] ?? 0);
    this.caps.forEach((off, i) => dv.setUint8(off + PCI_CAP_LIST_NEXT, this.pointers.get(i) ?? this.caps[i + 1] ?? 0));
    return { config, bars: [...this.bars] };
  }
}

/**
 * The capability set QEMU 7.2 gives a virtio PCI device (shared/QTEST.md): all in a 16 KiB 64-bit
 * prefetchable BAR4, common at 0, ISR at 0x1000, device at 0x2000, notify at 0x3000 (multiplier 4).
 */
export function qemuLikeVirtio(
  header: HeaderSpec,
  options: { legacyBar0?: boolean; msixTableOffset?: number; msixPbaOffset?: number } = {},
): ConfigSpaceBuilder {
  const b = new ConfigSpaceBuilder(header);
  if (options.legacyBar0 === true) b.bar(0, { kind: 'io', size: 0x80 });
  return b
    .bar(1, { kind: 'memory', size: 0x1000 })
    .bar(4, { kind: 'memory', size: 0x4000, is64: true, prefetchable: true })
    .msix(3, 1, options.msixTableOffset ?? 0, options.msixPbaOffset ?? 0x800)
    .virtioCap({ cfgType: VIRTIO_PCI_CAP_COMMON_CFG, bar: 4, offset: 0, length: 0x1000 })
    .virtioCap({ cfgType: VIRTIO_PCI_CAP_ISR_CFG, bar: 4, offset: 0x1000, length: 0x1000 })
    .virtioCap({ cfgType: VIRTIO_PCI_CAP_DEVICE_CFG, bar: 4, offset: 0x2000, length: 0x1000 })
    .virtioCap({ cfgType: VIRTIO_PCI_CAP_NOTIFY_CFG, bar: 4, offset: 0x3000, length: 0x1000, multiplier: 4 });
}
