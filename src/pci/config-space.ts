/**
 * A type-0 PCI configuration space (PCI Local Bus 3.0 section 6): the header, the BAR sizing
 * protocol, the command/status registers and a capability list, held as 256 bytes plus a per-byte
 * writable mask (the way QEMU's pci.c models it, so BAR sizing falls out of the mask).
 *
 * Access rules (hardware decodes config cycles per byte lane, so we compose byte-wise):
 * - a read of 1, 2 or 4 bytes at ANY offset, aligned or not, is the little-endian composition of
 *   the bytes [offset, offset + size); bytes outside 0..255 read as 0;
 * - a write stores each byte through its writable mask (read-only bits keep their value), bytes
 *   outside 0..255 are dropped; reserved and unimplemented space has mask 0 and reads 0;
 * - any other access size reads 0 and writes nothing; nothing here throws for guest input.
 * Status register bits: CAP_LIST is set once a capability exists; INTERRUPT mirrors the function's
 * internal INTx state. The RW1C error bits are never set by this model, so they read 0 and writes
 * have nothing to clear. The expansion ROM BAR (0x30) reads 0: no ROM.
 */

import { UsageError } from '../errors.js';
import { joinU64 } from '../memory/guest-memory.js';
import type { BarDescriptor, DecodedBar } from './function.js';
import type { AccessSize } from '../memory/access-size.js';
import {
  PCI_BASE_ADDRESS_0,
  PCI_BASE_ADDRESS_MEM_PREFETCH,
  PCI_BASE_ADDRESS_MEM_TYPE_64,
  PCI_BASE_ADDRESS_SPACE_IO,
  PCI_CACHE_LINE_SIZE,
  PCI_CAP_LIST_ID,
  PCI_CAP_LIST_NEXT,
  PCI_CAPABILITY_LIST,
  PCI_CLASS_PROG,
  PCI_COMMAND,
  PCI_COMMAND_INTX_DISABLE,
  PCI_COMMAND_IO,
  PCI_COMMAND_MASTER,
  PCI_COMMAND_MEMORY,
  PCI_CONFIG_SPACE_SIZE,
  PCI_DEVICE_ID,
  PCI_HEADER_END,
  PCI_HEADER_TYPE,
  PCI_HEADER_TYPE_NORMAL,
  PCI_INTERRUPT_LINE,
  PCI_INTERRUPT_PIN,
  PCI_NUM_BARS,
  PCI_REVISION_ID,
  PCI_STATUS,
  PCI_STATUS_CAP_LIST,
  PCI_STATUS_INTERRUPT,
  PCI_SUBSYSTEM_ID,
  PCI_SUBSYSTEM_VENDOR_ID,
  PCI_VENDOR_ID,
} from '../spec/pci.js';
import {
  PCI_BAR_MIN_IO_SIZE,
  PCI_BAR_MIN_MEM_SIZE,
  PCI_BASE_ADDRESS_IO_TYPE_BITS,
  PCI_BASE_ADDRESS_MEM_TYPE_BITS,
  PCI_CAP_ALIGN,
} from '../spec/pci-header.js';
import type { SnapshotReader } from '../snapshot/snapshot-reader.js';
import { bytes, struct, type SnapshotStruct } from '../snapshot/snapshot-value.js';

/** The identity fields of a type-0 header. */
export interface PciHeader {
  readonly vendorId: number;
  readonly deviceId: number;
  readonly revisionId: number;
  /** base class << 16 | subclass << 8 | programming interface. */
  readonly classCode: number;
  readonly subsystemVendorId: number;
  readonly subsystemId: number;
  /** PCI_INTERRUPT_PIN_NONE or PCI_INTERRUPT_PIN_INTA.. (src/spec/pci-header.ts). */
  readonly interruptPin: number;
}

/** Command register bits the driver may change (the set QEMU makes writable on an endpoint). */
const COMMAND_WRITABLE = PCI_COMMAND_IO | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER | PCI_COMMAND_INTX_DISABLE;

const TWO_32 = 0x1_0000_0000;

/** What a capability is when added: its ID, length, and hooks for registers with side effects. */
export interface CapabilityDefinition {
  /** PCI capability ID (PCI_CAP_ID_*). */
  readonly id: number;
  /** Length in bytes, including the ID and next-pointer bytes. */
  readonly length: number;
  /**
   * Called before a read touches bytes [rel, rel + len) of this capability (offsets relative to its
   * start), so that registers backed by live state can refresh their bytes.
   */
  beforeRead?(rel: number, len: number): void;
  /** Called after a write touched bytes [rel, rel + len) of this capability (masked bytes stored). */
  afterWrite?(rel: number, len: number): void;
}

/** A capability placed in config space: the device side's handle to its bytes. */
export class Capability {
  constructor(
    private readonly space: ConfigSpace,
    /** Config-space offset of the capability's ID byte. */
    readonly offset: number,
    readonly definition: CapabilityDefinition,
  ) {}

  get length(): number {
    return this.definition.length;
  }
  /** Device-side access to the capability's bytes (no writable mask applies). */
  get(rel: number, size: AccessSize): number {
    return this.space.getRaw(this.offset + this.checkRel(rel, size), size);
  }
  set(rel: number, size: AccessSize, value: number): void {
    this.space.setRaw(this.offset + this.checkRel(rel, size), size, value);
  }
  /** Make the driver able to change `mask` bits of the `size`-byte field at `rel`. */
  setWritable(rel: number, size: AccessSize, mask: number): void {
    this.space.setWritableMask(this.offset + this.checkRel(rel, size), size, mask);
  }

  private checkRel(rel: number, size: number): number {
    // The ID and next bytes belong to the list; device code addresses only the body.
    if (rel < 2 || rel + size > this.definition.length) throw new UsageError(`capability field [${rel}, +${size}) outside its body`);
    return rel;
  }
}

function checkBars(bars: readonly (BarDescriptor | undefined)[]): void {
  if (bars.length > PCI_NUM_BARS) throw new UsageError(`a type-0 header has ${PCI_NUM_BARS} BARs`);
  bars.forEach((bar, i) => {
    if (bar === undefined) return;
    const min = bar.kind === 'io' ? PCI_BAR_MIN_IO_SIZE : PCI_BAR_MIN_MEM_SIZE;
    const max = bar.is64 ? 2 ** 52 : 2 ** 31;
    const powerOfTwo = Number.isSafeInteger(bar.size) && bar.size > 0 && 2 ** Math.round(Math.log2(bar.size)) === bar.size;
    if (!powerOfTwo || bar.size < min || bar.size > max)
      throw new UsageError(`BAR${i}: size ${bar.size} is not a power of two in [${min}, ${max}]`);
    if (bar.kind === 'io' && (bar.is64 || bar.prefetchable)) throw new UsageError(`BAR${i}: an I/O BAR is neither 64-bit nor prefetchable`);
    if (bar.is64 && (i + 1 >= PCI_NUM_BARS || bars[i + 1] !== undefined))
      throw new UsageError(`BAR${i}: a 64-bit BAR needs the next slot free`);
  });
}

/** A type-0 configuration space: see the file comment for the access rules. */
export class ConfigSpace {
  private readonly bytes = new Uint8Array(PCI_CONFIG_SPACE_SIZE);
  private readonly wmask = new Uint8Array(PCI_CONFIG_SPACE_SIZE);
  private readonly caps: Capability[] = [];
  /** Next free offset for a capability. */
  private capEnd = PCI_HEADER_END;
  readonly bars: readonly (BarDescriptor | undefined)[];

  constructor(header: PciHeader, bars: readonly (BarDescriptor | undefined)[]) {
    checkBars(bars);
    this.bars = Array.from({ length: PCI_NUM_BARS }, (_, i) => bars[i]);
    this.setRaw(PCI_VENDOR_ID, 2, header.vendorId);
    this.setRaw(PCI_DEVICE_ID, 2, header.deviceId);
    this.setRaw(PCI_REVISION_ID, 1, header.revisionId);
    this.setRaw(PCI_CLASS_PROG, 1, header.classCode & 0xff);
    this.setRaw(PCI_CLASS_PROG + 1, 2, header.classCode >>> 8);
    this.setRaw(PCI_HEADER_TYPE, 1, PCI_HEADER_TYPE_NORMAL);
    this.setRaw(PCI_SUBSYSTEM_VENDOR_ID, 2, header.subsystemVendorId);
    this.setRaw(PCI_SUBSYSTEM_ID, 2, header.subsystemId);
    this.setRaw(PCI_INTERRUPT_PIN, 1, header.interruptPin);
    this.setWritableMask(PCI_COMMAND, 2, COMMAND_WRITABLE);
    this.setWritableMask(PCI_CACHE_LINE_SIZE, 1, 0xff);
    this.setWritableMask(PCI_INTERRUPT_LINE, 1, 0xff);
    this.bars.forEach((bar, i) => {
      if (bar !== undefined) this.initBar(i, bar);
    });
  }

  /** Type bits in the low dword and the writable masks that make the sizing protocol work. */
  private initBar(i: number, bar: BarDescriptor): void {
    const reg = PCI_BASE_ADDRESS_0 + 4 * i;
    if (bar.kind === 'io') {
      this.setRaw(reg, 4, PCI_BASE_ADDRESS_SPACE_IO);
      this.setWritableMask(reg, 4, ~(bar.size - 1) & ~PCI_BASE_ADDRESS_IO_TYPE_BITS);
      return;
    }
    const type = (bar.is64 ? PCI_BASE_ADDRESS_MEM_TYPE_64 : 0) | (bar.prefetchable ? PCI_BASE_ADDRESS_MEM_PREFETCH : 0);
    this.setRaw(reg, 4, type);
    // ~(size - 1) split into dwords; for sizes >= 4 GiB the whole low dword is the size's.
    const lowMask = bar.size >= TWO_32 ? 0 : ~(bar.size - 1);
    this.setWritableMask(reg, 4, lowMask & ~PCI_BASE_ADDRESS_MEM_TYPE_BITS);
    if (bar.is64) this.setWritableMask(reg + 4, 4, ~(Math.ceil(bar.size / TWO_32) - 1));
  }

  /**
   * Add a capability at the next free DWORD-aligned offset from 0x40 on. As in QEMU, the newest
   * capability becomes the head of the list (0x34 points to it, its next to the previous head).
   */
  addCapability(definition: CapabilityDefinition): Capability {
    const offset = this.capEnd;
    if (definition.length < 2 || offset + definition.length > PCI_CONFIG_SPACE_SIZE)
      throw new UsageError(`no room for a ${definition.length}-byte capability at 0x${offset.toString(16)}`);
    const cap = new Capability(this, offset, definition);
    this.setRaw(offset + PCI_CAP_LIST_ID, 1, definition.id);
    this.setRaw(offset + PCI_CAP_LIST_NEXT, 1, this.bytes[PCI_CAPABILITY_LIST]!);
    this.setRaw(PCI_CAPABILITY_LIST, 1, offset);
    this.setRaw(PCI_STATUS, 2, this.getRaw(PCI_STATUS, 2) | PCI_STATUS_CAP_LIST);
    this.caps.push(cap);
    this.capEnd = Math.ceil((offset + definition.length) / PCI_CAP_ALIGN) * PCI_CAP_ALIGN;
    return cap;
  }

  /** Capabilities in the order they were added. */
  get capabilities(): readonly Capability[] {
    return this.caps;
  }

  /** Guest read: see the file comment. */
  read(offset: number, size: AccessSize): number {
    if (!validAccess(offset, size)) return 0;
    for (const cap of this.caps) {
      const [rel, len] = overlap(offset, size, cap.offset, cap.length);
      if (len > 0) cap.definition.beforeRead?.(rel, len);
    }
    let value = 0;
    for (let i = size - 1; i >= 0; i--) value = value * 256 + (this.bytes[offset + i] ?? 0);
    return value;
  }

  /** Guest write: see the file comment. */
  write(offset: number, size: AccessSize, value: number): void {
    if (!validAccess(offset, size)) return;
    let v = value >>> 0;
    for (let i = 0; i < size; i++, v >>>= 8) {
      const at = offset + i;
      if (at >= PCI_CONFIG_SPACE_SIZE) break;
      const m = this.wmask[at]!;
      this.bytes[at] = (this.bytes[at]! & ~m) | (v & m);
    }
    for (const cap of this.caps) {
      const [rel, len] = overlap(offset, size, cap.offset, cap.length);
      if (len > 0) cap.definition.afterWrite?.(rel, len);
    }
  }

  /** The 256 bytes (docs/snapshots.md): header, BAR addresses, command register, capabilities. */
  snapshot(): SnapshotStruct {
    return struct({ bytes: bytes(this.bytes) });
  }

  /**
   * Check `r` (SnapshotError otherwise) and return what applies it. Bytes the guest cannot write
   * must be this function's own (IDs, capability list and contents, BAR types), except the status
   * register's Interrupt Status bit, which is the function's state: a snapshot of another device or
   * layout is 'ERR_SNAPSHOT_KIND'.
   */
  prepareRestore(r: SnapshotReader): () => void {
    const b = r.bytes('bytes', PCI_CONFIG_SPACE_SIZE);
    for (let i = 0; i < PCI_CONFIG_SPACE_SIZE; i++) {
      const fixed = ~this.wmask[i]! & (i === PCI_STATUS ? ~PCI_STATUS_INTERRUPT : 0xff);
      if (((b[i]! ^ this.bytes[i]!) & fixed) !== 0)
        throw r.error(
          'ERR_SNAPSHOT_KIND',
          `config space byte 0x${i.toString(16)} is 0x${b[i]!.toString(16)}, this function's read-only 0x${this.bytes[i]!.toString(16)}: a snapshot of another function`,
        );
    }
    const copy = b.slice();
    return () => this.bytes.set(copy);
  }

  /** Device-side read of an in-range field (no hooks). */
  getRaw(offset: number, size: AccessSize): number {
    const b = this.bytes;
    // Unrolled: the status and command registers are read on every interrupt.
    if (size === 1) return b[offset]!;
    if (size === 2) return b[offset]! | (b[offset + 1]! << 8);
    return (b[offset]! | (b[offset + 1]! << 8) | (b[offset + 2]! << 16) | (b[offset + 3]! << 24)) >>> 0;
  }
  /** Device-side write of an in-range field (ignores the writable mask). */
  setRaw(offset: number, size: AccessSize, value: number): void {
    const b = this.bytes;
    b[offset] = value & 0xff;
    if (size === 1) return;
    b[offset + 1] = (value >>> 8) & 0xff;
    if (size === 2) return;
    b[offset + 2] = (value >>> 16) & 0xff;
    b[offset + 3] = (value >>> 24) & 0xff;
  }
  setWritableMask(offset: number, size: AccessSize, mask: number): void {
    for (let i = 0, m = mask >>> 0; i < size; i++, m >>>= 8) this.wmask[offset + i] = m & 0xff;
  }

  get command(): number {
    return this.getRaw(PCI_COMMAND, 2);
  }

  /** The function's internal interrupt state, shown in the status register's INTERRUPT bit. */
  get interruptStatus(): boolean {
    return (this.getRaw(PCI_STATUS, 2) & PCI_STATUS_INTERRUPT) !== 0;
  }
  set interruptStatus(level: boolean) {
    const status = this.getRaw(PCI_STATUS, 2);
    this.setRaw(PCI_STATUS, 2, level ? status | PCI_STATUS_INTERRUPT : status & ~PCI_STATUS_INTERRUPT);
  }

  /** Whether the pin should be driven: interrupt pending and not masked by INTX_DISABLE. */
  get intxAsserted(): boolean {
    return this.interruptStatus && (this.command & PCI_COMMAND_INTX_DISABLE) === 0;
  }

  /** Whether accesses to BAR `index` are enabled by the command register (no address check). */
  barEnabled(index: number): boolean {
    const bar = this.bars[index];
    if (bar === undefined) return false;
    return (this.command & (bar.kind === 'io' ? PCI_COMMAND_IO : PCI_COMMAND_MEMORY)) !== 0;
  }

  /** The BAR's programmed base address (type bits stripped; 64-bit BARs joined from both halves). */
  barBase(index: number): number {
    const bar = this.bars[index];
    if (bar === undefined) return 0;
    const reg = PCI_BASE_ADDRESS_0 + 4 * index;
    const typeBits = bar.kind === 'io' ? PCI_BASE_ADDRESS_IO_TYPE_BITS : PCI_BASE_ADDRESS_MEM_TYPE_BITS;
    const lo = (this.getRaw(reg, 4) & ~typeBits) >>> 0;
    return bar.is64 ? joinU64(lo, this.getRaw(reg + 4, 4)) : lo;
  }

  /**
   * BARs that decode: space enabled in the command register, and (as QEMU's pci_bar_address
   * decides) a base that is neither 0 nor the sizing pattern: the range must not reach the top of
   * a 32-bit BAR's space, nor 2^53 for a 64-bit one.
   */
  decodedBars(): DecodedBar[] {
    const out: DecodedBar[] = [];
    this.bars.forEach((bar, index) => {
      if (bar === undefined || !this.barEnabled(index)) return;
      const base = this.barBase(index);
      const limit = bar.is64 ? Number.MAX_SAFE_INTEGER : TWO_32 - 1;
      if (base === 0 || base + bar.size > limit) return;
      out.push({ ...bar, index, base });
    });
    return out;
  }
}

function validAccess(offset: number, size: number): boolean {
  return (size === 1 || size === 2 || size === 4) && Number.isInteger(offset) && offset >= 0 && offset < PCI_CONFIG_SPACE_SIZE;
}

/** The part of [offset, offset + size) inside [start, start + length), relative to start. */
function overlap(offset: number, size: number, start: number, length: number): [rel: number, len: number] {
  const lo = Math.max(offset, start);
  const hi = Math.min(offset + size, start + length);
  return [lo - start, Math.max(0, hi - lo)];
}
