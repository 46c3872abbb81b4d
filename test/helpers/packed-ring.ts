/**
 * Packed virtqueue structures built and read by name from the spec (2.8), for tests that check the
 * driver's bytes and play the device by hand: struct pvirtq_desc, struct pvirtq_event_suppress, the
 * AVAIL/USED flag pairs of 2.8.1, and {@link HandDevice}, a device that reads available chains and
 * writes used descriptors where and when a test says.
 */

import { RamDma } from '../../src/bus/ram-dma.js';
import type { DmaMemory, DmaSpan } from '../../src/memory/dma.js';
import { ArrayGuestMemory, type GuestMemory } from '../../src/memory/guest-memory.js';
import { PackedQueueDriver } from '../../src/queue/packed/driver-ring.js';
import { PVIRTQ_DESC_SIZE, RING_EVENT_WRAP_SHIFT, VIRTQ_DESC_F_AVAIL, VIRTQ_DESC_F_USED } from '../../src/spec/packed-ring.js';
import { VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE } from '../../src/spec/ring.js';
import { ImageDma } from './image-dma.js';

/** struct pvirtq_desc { le64 addr; le32 len; le16 id; le16 flags; } */
export interface PvirtqDesc {
  readonly addr: number;
  readonly len: number;
  readonly id: number;
  readonly flags: number;
}

/** The 16 bytes of a struct pvirtq_desc. */
export function pvirtqDesc(d: PvirtqDesc): Uint8Array {
  const bytes = new Uint8Array(PVIRTQ_DESC_SIZE);
  const dv = new DataView(bytes.buffer);
  dv.setBigUint64(0, BigInt(d.addr), true);
  dv.setUint32(8, d.len, true);
  dv.setUint16(12, d.id, true);
  dv.setUint16(14, d.flags, true);
  return bytes;
}

/** The struct pvirtq_desc at `addr`. */
export function readPvirtqDesc(memory: GuestMemory, addr: number): PvirtqDesc {
  const bytes = new Uint8Array(PVIRTQ_DESC_SIZE);
  memory.read(addr, bytes);
  const dv = new DataView(bytes.buffer);
  return { addr: Number(dv.getBigUint64(0, true)), len: dv.getUint32(8, true), id: dv.getUint16(12, true), flags: dv.getUint16(14, true) };
}

/** 2.8.1: a descriptor made available on a lap with wrap counter `wrap`: AVAIL = wrap, USED = !wrap. */
export function availFlags(wrap: number): number {
  return wrap === 1 ? VIRTQ_DESC_F_AVAIL : VIRTQ_DESC_F_USED;
}

/** 2.8.1: a descriptor the device used on a lap with wrap counter `wrap`: AVAIL = USED = wrap. */
export function usedFlags(wrap: number): number {
  return wrap === 1 ? VIRTQ_DESC_F_AVAIL | VIRTQ_DESC_F_USED : 0;
}

/** The 4 bytes of a struct pvirtq_event_suppress: desc = off | wrap << 15, then flags. */
export function pvirtqEventSuppress(e: { readonly off: number; readonly wrap: number; readonly flags: number }): Uint8Array {
  const bytes = new Uint8Array(4);
  const dv = new DataView(bytes.buffer);
  dv.setUint16(0, e.off | (e.wrap << RING_EVENT_WRAP_SHIFT), true);
  dv.setUint16(2, e.flags, true);
  return bytes;
}

/** The struct pvirtq_event_suppress at `addr`. */
export function readPvirtqEventSuppress(memory: GuestMemory, addr: number): { off: number; wrap: number; flags: number } {
  const desc = memory.read16(addr);
  return { off: desc & 0x7fff, wrap: desc >>> RING_EVENT_WRAP_SHIFT, flags: memory.read16(addr + 2) };
}

/** A device used descriptor written in the order a device would: len and id first, flags last. */
export function writeUsedDesc(
  memory: GuestMemory,
  addr: number,
  d: { readonly id: number; readonly len: number; readonly flags: number },
): void {
  memory.write32(addr + 8, d.len);
  memory.write16(addr + 12, d.id);
  memory.write16(addr + 14, d.flags);
}

/** An available chain as the device read it: its descriptors, in order, and the id of the last. */
export interface HandChain {
  readonly id: number;
  readonly descs: readonly PvirtqDesc[];
}

/**
 * A device played by hand over the descriptor ring at `descAddr`: {@link pop} reads the next available
 * chain (following NEXT), {@link use} writes a used descriptor at the device's used position and skips
 * the chain's descriptors. Both positions and wrap counters follow 2.8.1.
 */
export class HandDevice {
  availNext = 0;
  availWrap = 1;
  usedNext = 0;
  usedWrap = 1;

  constructor(
    readonly memory: GuestMemory,
    readonly descAddr: number,
    readonly size: number,
  ) {}

  slotAddr(slot: number): number {
    return this.descAddr + slot * PVIRTQ_DESC_SIZE;
  }

  /** The next available chain, or null when the descriptor at the device's position is not available. */
  pop(): HandChain | null {
    const descs: PvirtqDesc[] = [];
    for (;;) {
      const d = readPvirtqDesc(this.memory, this.slotAddr(this.availNext));
      if ((d.flags & (VIRTQ_DESC_F_AVAIL | VIRTQ_DESC_F_USED)) !== availFlags(this.availWrap)) {
        if (descs.length === 0) return null;
        throw new Error(`chain broken at slot ${this.availNext}: flags 0x${d.flags.toString(16)}`);
      }
      descs.push(d);
      if (++this.availNext === this.size) {
        this.availNext = 0;
        this.availWrap ^= 1;
      }
      if ((d.flags & VIRTQ_DESC_F_NEXT) === 0) return { id: d.id, descs };
      if (descs.length === this.size) throw new Error('chain longer than the ring');
    }
  }

  /** Write the used descriptor of buffer `id`, whose chain took `slots` descriptors; WRITE when `len` > 0. */
  use(id: number, len: number, slots: number, extraFlags = len > 0 ? VIRTQ_DESC_F_WRITE : 0): void {
    writeUsedDesc(this.memory, this.slotAddr(this.usedNext), { id, len, flags: usedFlags(this.usedWrap) | extraFlags });
    this.usedNext += slots;
    if (this.usedNext >= this.size) {
      this.usedNext -= this.size;
      this.usedWrap ^= 1;
    }
  }
}

export const RIG_DMA_BASE = 0x10000;
export const RIG_DMA_SIZE = 0x100000;

export interface PackedRigOptions {
  readonly size: number;
  readonly eventIdx?: boolean;
  readonly indirect?: boolean;
  /** Non-coherent {@link ImageDma} (the remote-bus path) instead of coherent RamDma. */
  readonly remote?: boolean;
}

/** A packed driver over guest memory, with a {@link HandDevice} on its descriptor ring. */
export interface PackedRig {
  readonly memory: ArrayGuestMemory;
  readonly dma: DmaMemory;
  readonly driver: PackedQueueDriver<number>;
  readonly device: HandDevice;
  /** A DMA buffer of `len` bytes filled with `fill` (flushed by the driver at publish when readable). */
  buffer(len: number, fill?: number): DmaSpan & { readonly bytes: Uint8Array };
}

export function packedRig(options: PackedRigOptions): PackedRig {
  const memory = new ArrayGuestMemory(RIG_DMA_BASE + RIG_DMA_SIZE);
  const dma = options.remote ? new ImageDma(memory, RIG_DMA_BASE, RIG_DMA_SIZE) : new RamDma(memory, RIG_DMA_BASE, RIG_DMA_SIZE);
  const driver = new PackedQueueDriver<number>({
    index: 2,
    size: options.size,
    dma,
    eventIdx: options.eventIdx ?? false,
    indirect: options.indirect ?? false,
  });
  const device = new HandDevice(memory, driver.descAddr, options.size);
  const buffer = (len: number, fill = 0): DmaSpan & { bytes: Uint8Array } => {
    const b = dma.alloc(len, 8);
    b.bytes.fill(fill);
    return { addr: b.addr, len, bytes: b.bytes };
  };
  return { memory, dma, driver, device, buffer };
}
