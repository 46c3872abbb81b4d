/**
 * A PciBus in front of a real in-process device whose every answer the fuzz input may replace: each
 * config, MMIO and port read may come back as the device's value, a bit-flipped one, all-ones or any
 * value the input picks; writes may be dropped; and each `dma.refresh` (the driver's "let me see
 * what the device wrote": used.idx, used elements, data) may find the range overwritten with
 * input-chosen bytes, ids and lengths. When the input runs out the device turns honest, so a driver
 * can still finish: every outcome is then success or a typed error, never a hang.
 *
 * Every bus operation counts against OPERATION_BUDGET: a driver that loops without end (even one
 * that yields only to microtasks, starving timers) exhausts it, the operation then throws, and the
 * harness reports a hang instead of freezing.
 *
 * An {@link Adversary} adds targeted, persistent lies that a byte-per-access stream cannot express
 * cheaply: config-space fields that always read a chosen value (MSI-X table/PBA offsets, BAR sizes or
 * pre-programmed BAR addresses), a DMA allocation that fails midway, and a flood of used elements
 * (thousands of short receive buffers returned at once).
 */

import { BusError, UsageError } from '../../src/errors.js';
import type { Bdf, BusResources, InterruptEvent, PciBus } from '../../src/bus/pci-bus.js';
import type { DmaBuffer, DmaMemory } from '../../src/memory/dma.js';
import type { GuestMemory } from '../../src/memory/guest-memory.js';
import type { AccessSize } from '../../src/memory/access-size.js';
import {
  PVIRTQ_DESC_FLAGS,
  PVIRTQ_DESC_ID,
  PVIRTQ_DESC_LEN,
  PVIRTQ_DESC_SIZE,
  PVIRTQ_EVENT_DESC,
  PVIRTQ_EVENT_FLAGS,
  PVIRTQ_EVENT_SUPPRESS_SIZE,
  VIRTQ_DESC_F_AVAIL,
  VIRTQ_DESC_F_USED,
} from '../../src/spec/packed-ring.js';
import { VIRTQ_DESC_F_WRITE } from '../../src/spec/ring.js';
import { GuaranteeViolation } from '../engine/guarantees.js';
import type { FuzzInput } from '../engine/input.js';

const MASK: Record<AccessSize, number> = { 1: 0xff, 2: 0xffff, 4: 0xffff_ffff };
/** Bus operations one run may make; an honest open/read/write/close needs a few thousand. */
export const OPERATION_BUDGET = 10_000;

/** Config-space bytes [offset, offset + 4) read as `value`, on the reads `when` says. */
export interface ConfigOverride {
  /** 'sizing': only while the dword's last write was all-ones (a BAR size); 'address': only otherwise. */
  readonly when: 'always' | 'sizing' | 'address';
  readonly offset: number;
  readonly value: number;
}

/** Persistent lies of one run (see the file comment). */
export interface Adversary {
  /** The n-th DMA allocation (1-based) throws as an exhausted allocator does; 0: none. */
  readonly failAllocAt: number;
  /** With failAllocAt: every later allocation fails too. */
  readonly failAllocAfter: boolean;
  readonly overrides: readonly ConfigOverride[];
  /**
   * At the `floodAt`-th two-byte refresh (a used.idx, or an event field under EVENT_IDX; 1-based; 0:
   * never), the field moves on by `floodCount` and the used elements the driver then reads name
   * heads 0, 1, 2, ... with len `floodLen`.
   */
  readonly floodAt: number;
  readonly floodCount: number;
  readonly floodLen: number;
}

export const NO_ADVERSARY: Adversary = { failAllocAt: 0, failAllocAfter: false, overrides: [], floodAt: 0, floodCount: 0, floodLen: 0 };

/** Capability id whose position an override offset may be relative to (decodeAdversary). */
const CAP_RELATIVE = 0x8000;

/**
 * An Adversary from the input: failAlloc u8 (bit 7: and every later one), override count u8 (% 4)
 * and per override mode u8 (% 3: always, sizing, address), offset u16 (bit 15 set: offset & 0xff
 * from capability id (offset >> 8) & 0x7f, as the honest device lays it out), value u32; floodAt u8,
 * floodCount u16, floodLen u8.
 */
export function decodeAdversary(input: FuzzInput, capabilities: ReadonlyMap<number, number>): Adversary {
  const fail = input.u8();
  const overrides: ConfigOverride[] = [];
  for (let n = input.u8() % 4; n > 0; n--) {
    const when = (['always', 'sizing', 'address'] as const)[input.u8() % 3]!;
    const raw = input.u16();
    const value = input.u32();
    const offset = raw & CAP_RELATIVE ? (capabilities.get((raw >> 8) & 0x7f) ?? 0) + (raw & 0xff) : raw & 0xfff;
    overrides.push({ when, offset, value });
  }
  return {
    failAllocAt: fail & 0x7f,
    failAllocAfter: (fail & 0x80) !== 0,
    overrides,
    floodAt: input.u8(),
    floodCount: input.u16(),
    floodLen: input.u8(),
  };
}

/** Encodes an override offset relative to capability `id` (for seeds). */
export function capRelative(id: number, offset: number): number {
  return CAP_RELATIVE | (id << 8) | offset;
}

/** Thrown by the bus once the budget is gone: a hang finding, whoever catches it first. */
export class OperationBudgetExceeded extends GuaranteeViolation {
  constructor() {
    super('hang', `more than ${OPERATION_BUDGET} bus operations: a loop without end, or one the device made unboundedly long`);
  }
}

/** What a {@link HostileDma} reports to and asks of its owner: the bus, or a ring-level harness. */
export interface DmaLedger {
  readonly adversary: Adversary;
  /** Tampered answers so far. */
  tampered: number;
  /** DMA allocations made to fail (the Adversary's). */
  allocFailures: number;
  /** DMA bytes allocated and not freed. */
  dmaOutstanding: number;
  /** Count one operation; throws once the budget is gone. */
  spend(): void;
}

/**
 * How a refresh's bytes are read when the input rewrites them: split-ring used elements (le32 id,
 * le32 len) or packed-ring descriptors (le64 addr, le32 len, le16 id, le16 flags) and event
 * suppression areas (le16 desc, le16 flags).
 */
export type RingLayoutKind = 'split' | 'packed';

export class HostileBus implements PciBus, DmaLedger {
  readonly name = 'hostile';
  readonly dma: DmaMemory;
  /** The same object as `dma`, for the harness's checks. */
  readonly hostileDma: HostileDma;
  /** Tampered answers so far (for the harness: a run with none must succeed). */
  tampered = 0;
  operations = 0;
  /** Set once the operation budget ran out (the driver loops without end). */
  exhausted = false;
  /** DMA allocations made to fail (the Adversary's), not counted in `tampered`. */
  allocFailures = 0;
  /** DMA bytes the driver allocated through this bus and has not freed. */
  dmaOutstanding = 0;
  /** After close() every operation fails, as on a remote bus whose peer is gone. */
  private closed = false;
  /** Config dwords whose last write was all-ones (BAR sizing in progress). */
  private readonly sizing = new Set<number>();

  constructor(
    private readonly inner: PciBus,
    memory: GuestMemory,
    private readonly input: FuzzInput,
    readonly adversary: Adversary = NO_ADVERSARY,
    /** The ring format the driver will negotiate: how used-entry lies are laid out. */
    rings: RingLayoutKind = 'split',
  ) {
    this.dma = this.hostileDma = new HostileDma(inner.dma, memory, input, this, rings);
  }

  /** Count one operation; throws once the budget is gone, or BusError once the bus is closed. */
  spend(): void {
    if (this.closed) throw new BusError('hostile bus closed');
    if (++this.operations > OPERATION_BUDGET) {
      this.exhausted = true;
      throw new OperationBudgetExceeded();
    }
  }

  get resources(): BusResources | undefined {
    return this.inner.resources;
  }

  /** The device's value, or a replacement the input chooses (unsigned, as every bus returns them). */
  private answer(value: number, size: AccessSize): number {
    const d = this.input.u8();
    if (d < 0xc0) return value;
    this.tampered++;
    if (d < 0xd0) return ((value ^ (1 << (this.input.u8() % (8 * size)))) & MASK[size]) >>> 0;
    if (d < 0xd8) return MASK[size];
    if (d < 0xe0) return 0;
    return (this.input.u32() & MASK[size]) >>> 0;
  }
  /** Whether the device ignores this write. */
  private dropped(): boolean {
    const drop = this.input.u8() >= 0xf8;
    if (drop) this.tampered++;
    return drop;
  }

  async configRead(fn: Bdf, offset: number, size: AccessSize): Promise<number> {
    this.spend();
    return this.answer(this.overridden(offset, size, await this.inner.configRead(fn, offset, size)), size);
  }
  async configWrite(fn: Bdf, offset: number, size: AccessSize, value: number): Promise<void> {
    this.spend();
    if (size === 4 && value >>> 0 === 0xffff_ffff) this.sizing.add(offset);
    else this.sizing.delete(offset & ~3);
    if (!this.dropped()) await this.inner.configWrite(fn, offset, size, value);
  }
  /** The Adversary's config-space lies applied to the bytes of one read. */
  private overridden(offset: number, size: AccessSize, value: number): number {
    let out = value;
    for (const o of this.adversary.overrides) {
      if (o.when !== 'always' && this.sizing.has(o.offset & ~3) !== (o.when === 'sizing')) continue;
      for (let i = 0; i < size; i++) {
        const k = offset + i - o.offset;
        if (k < 0 || k > 3) continue;
        const shift = 8 * i;
        out = (out & ~(0xff << shift)) | (((o.value >>> (8 * k)) & 0xff) << shift);
      }
    }
    out = (out & MASK[size]) >>> 0;
    if (out !== value) this.tampered++;
    return out;
  }
  async memRead(addr: number, size: AccessSize): Promise<number> {
    this.spend();
    return this.answer(await this.inner.memRead(addr, size), size);
  }
  async memWrite(addr: number, size: AccessSize, value: number): Promise<void> {
    this.spend();
    if (!this.dropped()) await this.inner.memWrite(addr, size, value);
  }
  async ioRead(port: number, size: AccessSize): Promise<number> {
    this.spend();
    return this.answer(await this.inner.ioRead(port, size), size);
  }
  async ioWrite(port: number, size: AccessSize, value: number): Promise<void> {
    this.spend();
    if (!this.dropped()) await this.inner.ioWrite(port, size, value);
  }
  onInterrupt(fn: Bdf, listener: (event: InterruptEvent) => void): () => void {
    return this.inner.onInterrupt(fn, listener);
  }
  msiMessage(fn: Bdf, vector: number): { address: number; data: number } | undefined {
    return this.inner.msiMessage(fn, vector);
  }
  close(): Promise<void> {
    this.closed = true;
    return this.inner.close();
  }
}

export class HostileDma implements DmaMemory {
  private allocs = 0;
  private usedIdxRefreshes = 0;
  /** Flood elements still to write (set when used.idx was flooded), and the next head to name. */
  private floodLeft = 0;
  private floodHead = 0;
  /** Live allocations: address -> size. */
  private readonly live = new Map<number, number>();
  /**
   * The first refresh of a range outside every live allocation: a driver looking at memory it does
   * not own, as one that trusted a used len beyond its buffer would (checked by the harness after
   * the run, since drivers' background loops may swallow what refresh throws).
   */
  strayRefresh: string | undefined;

  constructor(
    private readonly inner: DmaMemory,
    private readonly memory: GuestMemory,
    private readonly input: FuzzInput,
    private readonly bus: DmaLedger,
    private readonly rings: RingLayoutKind = 'split',
  ) {}

  alloc(size: number, align: number): DmaBuffer {
    const { failAllocAt, failAllocAfter } = this.bus.adversary;
    const n = ++this.allocs;
    if (failAllocAt !== 0 && (n === failAllocAt || (failAllocAfter && n > failAllocAt))) {
      this.bus.allocFailures++;
      // What an exhausted DmaAllocator throws.
      throw new UsageError(`DMA memory exhausted: allocation ${n} of ${size} bytes refused by the hostile bus`);
    }
    const buffer = this.inner.alloc(size, align);
    this.bus.dmaOutstanding += buffer.bytes.byteLength;
    this.live.set(buffer.addr, buffer.bytes.byteLength);
    return buffer;
  }
  free(buffer: DmaBuffer): void {
    this.inner.free(buffer);
    this.live.delete(buffer.addr);
    this.bus.dmaOutstanding -= buffer.bytes.byteLength;
  }
  async flush(addr: number, len: number): Promise<void> {
    // async: a failing bus rejects, as a remote one would, rather than throwing at the call.
    this.bus.spend();
    return this.inner.flush(addr, len);
  }

  /** Before the driver looks: maybe the device rewrote the range (a used.idx, a used element, data). */
  async refresh(addr: number, len: number): Promise<void> {
    this.bus.spend();
    if (this.strayRefresh === undefined && !this.owned(addr, len))
      this.strayRefresh = `refresh of [0x${addr.toString(16)}, +${len}) outside every live DMA allocation`;
    await this.inner.refresh(addr, len);
    if (this.flood(addr, len)) return;
    const d = this.input.u8();
    if (d < 0xd0 || !this.memory.contains(addr, len)) return;
    this.bus.tampered++;
    const m = this.memory;
    if (len === 2) m.write16(addr, d & 1 ? this.input.u8() : this.input.u16());
    else if (this.rings === 'packed' && len === PVIRTQ_EVENT_SUPPRESS_SIZE) {
      // the device event suppression area: an offset and wrap, then flags (valid ones or anything)
      m.write16(addr + PVIRTQ_EVENT_DESC, this.input.u16());
      m.write16(addr + PVIRTQ_EVENT_FLAGS, d & 1 ? this.input.u8() % 4 : this.input.u16());
    } else if (this.rings === 'packed' && len % PVIRTQ_DESC_SIZE === 0 && len <= 64) {
      // used descriptors: ids near the queue's range (or anything), AVAIL and USED both set or both
      // clear with WRITE as chosen (or any flags), lengths small (or anything)
      for (let at = addr; at < addr + len; at += PVIRTQ_DESC_SIZE) {
        m.write32(at + PVIRTQ_DESC_LEN, d & 2 ? this.input.u16() : this.input.u32());
        m.write16(at + PVIRTQ_DESC_ID, d & 1 ? this.input.u8() % 64 : this.input.u16());
        const f = this.input.u8();
        const bits = f & 1 ? VIRTQ_DESC_F_AVAIL | VIRTQ_DESC_F_USED : 0;
        m.write16(at + PVIRTQ_DESC_FLAGS, d & 4 ? this.input.u16() : bits | (f & 2 ? VIRTQ_DESC_F_WRITE : 0));
      }
    } else if (len % 8 === 0 && len <= 64) {
      // used elements: ids near the queue's range (or anything), lengths small (or anything)
      for (let at = addr; at < addr + len; at += 8) {
        m.write32(at, d & 1 ? this.input.u8() % 32 : this.input.u32());
        m.write32(at + 4, d & 2 ? this.input.u16() : this.input.u32());
      }
    } else m.write(addr, this.input.bytes(Math.min(len, 4096)));
  }

  private owned(addr: number, len: number): boolean {
    for (const start of this.live.keys()) if (addr >= start && addr + len <= start + this.live.get(start)!) return true;
    return false;
  }

  /** The Adversary's flood of used elements; whether it rewrote this range. */
  private flood(addr: number, len: number): boolean {
    const { floodAt, floodCount, floodLen } = this.bus.adversary;
    if (floodAt === 0 || !this.memory.contains(addr, len)) return false;
    const m = this.memory;
    if (len === 2 && ++this.usedIdxRefreshes === floodAt) {
      m.write16(addr, (m.read16(addr) + floodCount) & 0xffff);
      this.floodLeft = floodCount;
      this.bus.tampered++;
      return true;
    }
    if (this.floodLeft === 0 || len % 8 !== 0) return false;
    for (let at = addr; at < addr + len && this.floodLeft > 0; at += 8, this.floodLeft--) {
      m.write32(at, this.floodHead++);
      m.write32(at + 4, floodLen);
    }
    return true;
  }
}
