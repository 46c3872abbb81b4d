/**
 * The descriptor ring as the driver of a packed virtqueue makes descriptors available in it (2.8.6,
 * 2.8.21.1): which buffer ids and ring slots are free, chains written at the next slots (or as one
 * INDIRECT descriptor), and the Driver Ring Wrap Counter (2.8.1, starts at 1).
 *
 * Buffer ids are independent of ring slots: a free-id list hands them out, and the caller remembers
 * how many slots each chain took (2.8.6).
 *
 * Visibility: a chain's descriptors are written at once, except the flags of the first descriptor
 * written since the last publish, which the publish writes last. The device processes descriptors in
 * ring order (2.8.12), so until that one is available it sees none of the batch, and it never sees a
 * half-built chain (2.8.6).
 */

import type { DmaBuffer, DmaSpan } from '../../memory/dma.js';
import { hi32, lo32 } from '../../memory/guest-memory.js';
import {
  PVIRTQ_DESC_ADDR,
  PVIRTQ_DESC_FLAGS,
  PVIRTQ_DESC_ID,
  PVIRTQ_DESC_LEN,
  PVIRTQ_DESC_SIZE,
  VIRTQ_DESC_F_AVAIL,
  VIRTQ_DESC_F_USED,
} from '../../spec/packed-ring.js';
import { VIRTQ_DESC_F_INDIRECT, VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE } from '../../spec/ring.js';
import { ringRuns, type RingDma, type RingPart } from '../ring-dma.js';

export class DriverDescriptorRing {
  /** Next slot to make available, and the Driver Ring Wrap Counter. */
  next = 0;
  wrap = 1;
  /** Descriptors written since the last publish: the slots before `next`. */
  private pendingSlots = 0;
  /** The flags of the first pending descriptor, held back until publish. */
  private heldFlags = 0;
  /** Ring slots not taken by a chain in flight. */
  private freeSlots: number;
  /** Free buffer ids, a stack. */
  private readonly freeIds: Uint16Array;
  private freeIdCount = 0;

  constructor(
    private readonly ring: RingPart,
    private readonly size: number,
  ) {
    this.freeSlots = size;
    this.freeIds = new Uint16Array(size);
    this.restart();
  }

  /** Ring slots free for new chains. */
  get free(): number {
    return this.freeSlots;
  }

  /** A free buffer id. Chains in flight never outnumber the slots they hold, so one is free when a slot is. */
  takeId(): number {
    return this.freeIds[--this.freeIdCount]!;
  }

  /** Write `out` then `inn` as buffer `id` at the next slots: NEXT on all but the last, the id in each (the device reads the last). */
  writeChain(id: number, out: readonly DmaSpan[], inn: readonly DmaSpan[]): void {
    const nOut = out.length;
    const n = nOut + inn.length;
    for (let k = 0; k < n; k++) {
      const span = k < nOut ? out[k]! : inn[k - nOut]!;
      this.put(span.addr, span.len, id, (k < nOut ? 0 : VIRTQ_DESC_F_WRITE) | (k === n - 1 ? 0 : VIRTQ_DESC_F_NEXT));
    }
  }

  /** Write `out` then `inn` into indirect table `table` (its own DMA allocation), behind one slot, as buffer `id`. */
  writeIndirect(id: number, table: DmaBuffer, out: readonly DmaSpan[], inn: readonly DmaSpan[]): void {
    const nOut = out.length;
    const n = nOut + inn.length;
    const dv = new DataView(table.bytes.buffer, table.bytes.byteOffset, n * PVIRTQ_DESC_SIZE);
    // 2.8.7: in an indirect table WRITE is the only valid flag and the id is reserved.
    for (let k = 0; k < n; k++) {
      const span = k < nOut ? out[k]! : inn[k - nOut]!;
      writeDesc(dv, k * PVIRTQ_DESC_SIZE, span.addr, span.len, 0);
      dv.setUint16(k * PVIRTQ_DESC_SIZE + PVIRTQ_DESC_FLAGS, k < nOut ? 0 : VIRTQ_DESC_F_WRITE, true);
    }
    this.put(table.addr, n * PVIRTQ_DESC_SIZE, id, VIRTQ_DESC_F_INDIRECT);
  }

  /** The slot of the first descriptor written since the last publish. */
  pendingStart(): number {
    const at = this.next - this.pendingSlots;
    return at < 0 ? at + this.size : at;
  }

  /** 2.9: the slot after the last published descriptor (next_off) with its wrap counter in bit 15 (next_wrap). */
  notificationData(): number {
    const off = this.next - this.pendingSlots;
    return off < 0 ? (off + this.size) | ((this.wrap ^ 1) << 15) : off | (this.wrap << 15);
  }

  /** Issue the flush of the descriptors written since the last publish (the first one's flags still say "not available"). */
  flushPending(dma: RingDma): void {
    ringRuns(this.size, this.pendingStart(), this.pendingSlots, (slot, count) =>
      dma.flush(this.ring.addr + slot * PVIRTQ_DESC_SIZE, count * PVIRTQ_DESC_SIZE),
    );
  }

  /** The flags held back for the first pending descriptor; read before {@link takePending}. */
  get held(): number {
    return this.heldFlags;
  }

  /** Take every descriptor written so far into the next publish; returns how many there are. */
  takePending(): number {
    const added = this.pendingSlots;
    this.pendingSlots = 0;
    return added;
  }

  /** Make the descriptors from slot `first` available: write its held-back `flags` (with `dma`, and issue their flush). */
  writeHeldFlags(first: number, flags: number, dma?: RingDma): void {
    const at = first * PVIRTQ_DESC_SIZE + PVIRTQ_DESC_FLAGS;
    this.ring.dv.setUint16(at, flags, true);
    dma?.flush(this.ring.addr + at, 2);
  }

  /** Free buffer `id` and the `slots` ring slots its chain took. */
  release(id: number, slots: number): void {
    this.freeSlots += slots;
    this.freeIds[this.freeIdCount++] = id;
  }

  /** After a device reset (every chain released): every id free, slot 0, wrap counter 1. */
  restart(): void {
    for (let i = 0; i < this.size; i++) this.freeIds[i] = this.size - 1 - i;
    this.freeIdCount = this.size;
    this.next = 0;
    this.wrap = 1;
    this.pendingSlots = 0;
  }

  /** Write the next descriptor; the first one since the last publish keeps its flags back. */
  private put(addr: number, len: number, id: number, flags: number): void {
    const at = this.next * PVIRTQ_DESC_SIZE;
    writeDesc(this.ring.dv, at, addr, len, id);
    const full = flags | availFlags(this.wrap);
    if (this.pendingSlots === 0) this.heldFlags = full;
    else this.ring.dv.setUint16(at + PVIRTQ_DESC_FLAGS, full, true);
    this.pendingSlots++;
    this.freeSlots--;
    if (++this.next === this.size) {
      this.next = 0;
      this.wrap ^= 1;
    }
  }
}

/** AVAIL set to the wrap counter and USED to its inverse: a descriptor made available (2.8.1). */
function availFlags(wrap: number): number {
  return wrap === 1 ? VIRTQ_DESC_F_AVAIL : VIRTQ_DESC_F_USED;
}

/** The addr, len and id of the struct pvirtq_desc at byte `at` of `dv`; the caller writes its flags. */
function writeDesc(dv: DataView, at: number, addr: number, len: number, id: number): void {
  dv.setUint32(at + PVIRTQ_DESC_ADDR, lo32(addr), true);
  dv.setUint32(at + PVIRTQ_DESC_ADDR + 4, hi32(addr), true);
  dv.setUint32(at + PVIRTQ_DESC_LEN, len, true);
  dv.setUint16(at + PVIRTQ_DESC_ID, id, true);
}
