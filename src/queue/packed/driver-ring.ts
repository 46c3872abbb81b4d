/**
 * The driver half of a packed virtqueue (spec 2.8): one descriptor ring that both sides write, the
 * driver making descriptors available and the device overwriting them with used descriptors, plus
 * two event suppression areas. Ring memory is DmaMemory through a {@link RingDma}, which flushes the
 * local image before the device may look and refreshes it before the driver reads, so the same code
 * runs in-process and over a remote bus.
 *
 * Buffer ids are independent of ring slots: a free-id list hands them out, and each id remembers how
 * many ring descriptors its chain took, which is how far the driver skips past its used descriptor
 * (2.8.6). All bookkeeping is kept here, never read back from ring memory the device could change.
 *
 * With VIRTIO_F_IN_ORDER (2.8.8) one used descriptor may stand for a batch: it names the batch's last
 * buffer, overwrites the batch's first descriptor, and the driver skips every descriptor of the
 * batch. The skipped buffers were "used (read or written) by the device completely", so they come
 * back with all their writable bytes as len.
 */

import { DeviceFaultError, UsageError, type DeviceFaultCode } from '../../errors.js';
import type { DmaBuffer, DmaMemory, DmaSpan } from '../../memory/dma.js';
import { hi32, lo32 } from '../../memory/guest-memory.js';
import {
  PVIRTQ_DESC_ADDR,
  PVIRTQ_DESC_FLAGS,
  PVIRTQ_DESC_ID,
  PVIRTQ_DESC_LEN,
  PVIRTQ_DESC_SIZE,
  PVIRTQ_EVENT_DESC,
  PVIRTQ_EVENT_FLAGS,
  PVIRTQ_EVENT_SUPPRESS_SIZE,
  RING_EVENT_FLAGS_DESC,
  RING_EVENT_FLAGS_DISABLE,
  RING_EVENT_FLAGS_ENABLE,
  RING_EVENT_FLAGS_RESERVED,
  RING_EVENT_OFF_MASK,
  RING_EVENT_WRAP_SHIFT,
  VIRTQ_DESC_F_AVAIL,
  VIRTQ_DESC_F_USED,
  packedDescRingSize,
} from '../../spec/packed-ring.js';
import { VIRTQ_DESC_F_INDIRECT, VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE, vringNeedEvent } from '../../spec/ring.js';
import { admitChain, descriptorsNeeded } from '../chain-admission.js';
import { InFlightChains } from '../in-flight-chains.js';
import { RingDma } from '../ring-dma.js';
import { PACKED_RING } from '../ring-format.js';
import type { DriverRing, RingAreas, UsedBuffer } from '../types.js';

export interface PackedQueueDriverOptions {
  readonly index: number;
  /** Queue size (PACKED_RING.isQueueSize: any size up to 32768). */
  readonly size: number;
  readonly dma: DmaMemory;
  /** VIRTIO_F_EVENT_IDX negotiated: RING_EVENT_FLAGS_DESC is valid in both directions. */
  readonly eventIdx: boolean;
  /** VIRTIO_F_INDIRECT_DESC negotiated. */
  readonly indirect: boolean;
  /** VIRTIO_F_IN_ORDER negotiated. */
  readonly inOrder?: boolean;
}

const U32_MAX = 0xffff_ffff;
const MAX_CHAIN_BYTES = PACKED_RING.maxChainBytes;
/** The bits of an event suppression area's flags field that may be set: desc_event_flags (2.8.14). */
const RING_EVENT_FLAGS_MASK = 0x3;

/** A ring area: where it is on the bus, and a DataView over its bytes in the local image. */
interface Area {
  readonly addr: number;
  readonly dv: DataView;
}

function area(buffer: DmaBuffer): Area {
  return { addr: buffer.addr, dv: new DataView(buffer.bytes.buffer, buffer.bytes.byteOffset, buffer.bytes.byteLength) };
}

/** AVAIL set to the wrap counter and USED to its inverse: a descriptor made available (2.8.1). */
function availFlags(wrap: number): number {
  return wrap === 1 ? VIRTQ_DESC_F_AVAIL : VIRTQ_DESC_F_USED;
}

/**
 * Driver side of one packed virtqueue.
 *
 * Visibility: a chain's descriptors are written at add(), except the flags of the first descriptor
 * added since the last publish, which publish() writes last. The device processes descriptors in ring
 * order (2.8.12), so until that one is available it sees none of the batch, and it never sees a
 * half-built chain (2.8.6).
 *
 * Indirect tables: with VIRTIO_F_INDIRECT_DESC, a chain of several buffers goes into an indirect table
 * (one DMA allocation, freed when it is used) only when the ring has too few free descriptors for it,
 * as the split driver does.
 *
 * The span arrays given to add() are kept by reference until the chain is reaped (their writable
 * spans are refreshed then), so don't change them while the chain is in flight.
 */
export class PackedQueueDriver<T> implements DriverRing<T> {
  readonly index: number;
  readonly size: number;
  /** Bus address of the descriptor ring (queue_desc). */
  readonly descAddr: number;
  /** Bus address of the driver event suppression area (queue_driver). */
  readonly driverEventAddr: number;
  /** Bus address of the device event suppression area (queue_device). */
  readonly deviceEventAddr: number;
  readonly areas: RingAreas;
  /** DmaMemory.coherent: no flush or refresh is issued, and publishSync/reapSync work. */
  readonly coherent: boolean;
  private readonly dma: RingDma;
  private readonly eventIdx: boolean;
  private readonly indirect: boolean;
  private readonly inOrder: boolean;
  private readonly maxBuffers: number;
  private readonly desc: Area;
  private readonly driverEvent: Area;
  private readonly deviceEvent: Area;
  /** Free buffer ids, a stack. */
  private readonly freeIds: Uint16Array;
  private freeIdCount: number;
  /** Per id: ring descriptors its chain takes (1 for an indirect chain), 0 when not in flight. */
  private readonly chainSlots: Uint16Array;
  /** 1 for a chain added but not yet published: the device cannot have seen it, so it cannot be used. */
  private readonly unpublished: Uint8Array;
  /** validateUsed(): `usedMark[id] === usedPass` when id was already named in this pass. */
  private readonly usedMark: Uint32Array;
  private usedPass = 0;
  private readonly chains: InFlightChains<T>;
  private inFlightCount = 0;
  /** Ring descriptors not taken by a chain in flight. */
  private freeSlots: number;
  /** Next slot to make available, and the Driver Ring Wrap Counter (2.8.1, starts at 1). */
  private nextAvail = 0;
  private availWrap = 1;
  /** Next slot to read a used descriptor from, and the wrap counter it is expected with. */
  private nextUsed = 0;
  private usedWrap = 1;
  /** Descriptors published and not yet used: slots [nextUsed, nextUsed + publishedSlots). */
  private publishedSlots = 0;
  /** Descriptors added since the last publish, which follow the published ones. */
  private pendingSlots = 0;
  /** Ids added since the last publish. */
  private readonly pending: Uint16Array;
  private pendingCount = 0;
  /**
   * With IN_ORDER: chains are numbered in the order they were added (`addSeq` per id, `seqId` per
   * number modulo the size: no more chains are in flight than the ring has descriptors); `usedSeq`
   * is the oldest in flight. A used descriptor's batch is the chains from `usedSeq` to the one it names.
   */
  private readonly addSeq: Float64Array;
  private readonly seqId: Uint16Array;
  private addedSeq = 0;
  private usedSeq = 0;
  /** The flags of the first pending descriptor, held back until publish. */
  private heldFlags = 0;
  private suppressed = false;

  /** Throws UsageError for a bad size; DmaMemory errors when it cannot allocate the rings. */
  constructor(options: PackedQueueDriverOptions) {
    const { index, size } = options;
    if (!PACKED_RING.isQueueSize(size)) {
      throw new UsageError(`queue ${index}: size ${size} is not in 1..${PACKED_RING.maxQueueSize}`);
    }
    this.index = index;
    this.size = size;
    const dma = (this.dma = new RingDma(options.dma, index));
    this.coherent = dma.coherent;
    this.eventIdx = options.eventIdx;
    this.indirect = options.indirect;
    this.inOrder = options.inOrder ?? false;
    this.maxBuffers = PACKED_RING.maxChainBuffers(size);
    const align = PACKED_RING.areaAlign;
    // Zeroed (2.8.13: the descriptor ring is zero-initialized; both event areas start ENABLE).
    try {
      this.desc = area(dma.area(packedDescRingSize(size), align.desc));
      this.driverEvent = area(dma.area(PVIRTQ_EVENT_SUPPRESS_SIZE, align.driver));
      this.deviceEvent = area(dma.area(PVIRTQ_EVENT_SUPPRESS_SIZE, align.device));
    } catch (err) {
      // All or nothing: the areas already taken go back before the failure is reported.
      dma.destroy();
      throw err;
    }
    this.descAddr = this.desc.addr;
    this.driverEventAddr = this.driverEvent.addr;
    this.deviceEventAddr = this.deviceEvent.addr;
    this.areas = { desc: this.descAddr, driver: this.driverEventAddr, device: this.deviceEventAddr };
    this.freeIds = new Uint16Array(size);
    for (let i = 0; i < size; i++) this.freeIds[i] = size - 1 - i;
    this.freeIdCount = size;
    this.freeSlots = size;
    this.chainSlots = new Uint16Array(size);
    this.chains = new InFlightChains<T>(size);
    this.unpublished = new Uint8Array(size);
    this.usedMark = new Uint32Array(size);
    this.pending = new Uint16Array(size);
    this.addSeq = new Float64Array(size);
    this.seqId = new Uint16Array(size);
  }

  /** Ring descriptors free for new chains. */
  get numFree(): number {
    return this.freeSlots;
  }

  /** Chains added and not yet reaped. */
  get inFlight(): number {
    return this.inFlightCount;
  }

  /**
   * Make the zeroed rings visible to the device. Call it before telling the device where the rings
   * are: over a remote bus the device's memory may still hold an earlier owner's descriptors.
   */
  flushRings(): Promise<void> {
    return this.dma.serial(async () => {
      this.dma.flushAreas();
      await this.dma.settle();
    });
  }

  /**
   * Put a chain of device-readable `out` then device-writable `inn` buffers in the ring (visible to
   * the device after publish()). Returns its buffer id. Throws QueueFullError when too few
   * descriptors are free, UsageError for a chain the spec forbids (empty, more buffers than the
   * queue size, a length beyond 32 bits or more than 2^32 bytes in total).
   */
  add(out: readonly DmaSpan[], inn: readonly DmaSpan[], token: T): number {
    const writable = admitChain(this.index, out, inn, this.maxBuffers, MAX_CHAIN_BYTES);
    const nOut = out.length;
    const n = nOut + inn.length;
    const needed = descriptorsNeeded(this.index, n, this.freeSlots, this.indirect);
    const useTable = needed < n;

    // The table first: when DMA memory runs out, nothing has changed yet.
    const table = useTable ? this.dma.memory.alloc(n * PVIRTQ_DESC_SIZE, PACKED_RING.areaAlign.desc) : undefined;
    // Chains in flight never outnumber the descriptors they hold, so an id is free when a slot is.
    const id = this.freeIds[--this.freeIdCount]!;
    if (table !== undefined) {
      const dv = new DataView(table.bytes.buffer, table.bytes.byteOffset, n * PVIRTQ_DESC_SIZE);
      // 2.8.7: in an indirect table WRITE is the only valid flag and the id is reserved.
      for (let k = 0; k < n; k++) {
        const span = k < nOut ? out[k]! : inn[k - nOut]!;
        writeDesc(dv, k * PVIRTQ_DESC_SIZE, span.addr, span.len, 0);
        dv.setUint16(k * PVIRTQ_DESC_SIZE + PVIRTQ_DESC_FLAGS, k < nOut ? 0 : VIRTQ_DESC_F_WRITE, true);
      }
      this.putDesc(table.addr, n * PVIRTQ_DESC_SIZE, id, VIRTQ_DESC_F_INDIRECT);
    } else {
      // 2.8.6: NEXT on all but the last; the id goes in every descriptor (the device reads the last).
      for (let k = 0; k < n; k++) {
        const span = k < nOut ? out[k]! : inn[k - nOut]!;
        this.putDesc(span.addr, span.len, id, (k < nOut ? 0 : VIRTQ_DESC_F_WRITE) | (k === n - 1 ? 0 : VIRTQ_DESC_F_NEXT));
      }
    }
    this.chainSlots[id] = needed;
    this.chains.record(id, out, inn, writable, token, table);
    this.inFlightCount++;
    this.pending[this.pendingCount++] = id;
    this.unpublished[id] = 1;
    this.addSeq[id] = this.addedSeq;
    this.seqId[this.addedSeq % this.size] = id;
    this.addedSeq++;
    return id;
  }

  /** Write the next available descriptor; the first one since the last publish keeps its flags back. */
  private putDesc(addr: number, len: number, id: number, flags: number): void {
    const at = this.nextAvail * PVIRTQ_DESC_SIZE;
    writeDesc(this.desc.dv, at, addr, len, id);
    const full = flags | availFlags(this.availWrap);
    if (this.pendingSlots === 0) this.heldFlags = full;
    else this.desc.dv.setUint16(at + PVIRTQ_DESC_FLAGS, full, true);
    this.pendingSlots++;
    this.freeSlots--;
    if (++this.nextAvail === this.size) {
      this.nextAvail = 0;
      this.availWrap ^= 1;
    }
  }

  /**
   * Make the chains added since the last call visible to the device: flush their readable buffers,
   * indirect tables and descriptors, then write and flush the flags of the first one (2.8.21.1).
   * Resolves whether the device wants a notification (its event suppression area, 2.8.10); throws
   * DeviceFaultError ERR_DEVICE_EVENT_SUPPRESSION when that area holds what the spec forbids (the
   * chains are published all the same).
   */
  publish(): Promise<boolean> {
    return this.dma.serial(() => this.publishNow());
  }

  /** publish() for coherent DMA ({@link coherent}): done at once. Throws UsageError on a non-coherent bus. */
  publishSync(): boolean {
    this.dma.requireCoherent('publishSync');
    const first = this.pendingStart();
    const added = this.takePending();
    if (added === 0) return false;
    this.desc.dv.setUint16(first * PVIRTQ_DESC_SIZE + PVIRTQ_DESC_FLAGS, this.heldFlags, true);
    return this.wantsNotification(this.nextAvail, this.availWrap, added);
  }

  /** publishSync()'s steps with the DMA waits a remote bus needs between them. */
  private async publishNow(): Promise<boolean> {
    if (this.dma.coherent) return this.publishSync();
    this.flushAdded();
    // Taken before the first wait: chains added meanwhile belong to the next publish.
    const first = this.pendingStart();
    const flags = this.heldFlags;
    const added = this.takePending();
    const next = this.nextAvail;
    const wrap = this.availWrap;
    await this.dma.settle();
    if (added === 0) return false;
    const at = first * PVIRTQ_DESC_SIZE + PVIRTQ_DESC_FLAGS;
    this.desc.dv.setUint16(at, flags, true);
    this.dma.flush(this.desc.addr + at, 2);
    await this.dma.settle();
    this.dma.refresh(this.deviceEvent.addr, PVIRTQ_EVENT_SUPPRESS_SIZE);
    await this.dma.settle();
    return this.wantsNotification(next, wrap, added);
  }

  /** 2.9: the slot after the last published descriptor (next_off) with its wrap counter in bit 15 (next_wrap). */
  notificationData(): number {
    const off = this.nextAvail - this.pendingSlots;
    return off < 0 ? (off + this.size) | ((this.availWrap ^ 1) << 15) : off | (this.availWrap << 15);
  }

  /** The slot of the first descriptor added since the last publish. */
  private pendingStart(): number {
    const at = this.nextUsed + this.publishedSlots;
    return at >= this.size ? at - this.size : at;
  }

  /** Mark every chain added so far as published; returns how many descriptors that publishes. */
  private takePending(): number {
    const added = this.pendingSlots;
    this.publishedSlots += added;
    this.pendingSlots = 0;
    for (let p = 0; p < this.pendingCount; p++) this.unpublished[this.pending[p]!] = 0;
    this.pendingCount = 0;
    return added;
  }

  /** Issue what publish() flushes before the first flags: readable buffers, tables, descriptors. */
  private flushAdded(): void {
    this.dma.flushAreas();
    for (let p = 0; p < this.pendingCount; p++) {
      const id = this.pending[p]!;
      this.chains.flushOut(this.dma, id);
    }
    // The first descriptor's flags in the local image still say "not available" for this lap.
    this.ringRanges(this.pendingStart(), this.pendingSlots, (slot, count) =>
      this.dma.flush(this.desc.addr + slot * PVIRTQ_DESC_SIZE, count * PVIRTQ_DESC_SIZE),
    );
  }

  /**
   * Whether the device wants to hear that the `added` descriptors before slot `next` (whose wrap
   * counter is `wrap`) became available: its event suppression area (2.8.10, 2.8.21.3).
   */
  private wantsNotification(next: number, wrap: number, added: number): boolean {
    const flags = this.deviceEvent.dv.getUint16(PVIRTQ_EVENT_FLAGS, true);
    const desc = this.deviceEvent.dv.getUint16(PVIRTQ_EVENT_DESC, true);
    const mode = flags & RING_EVENT_FLAGS_MASK;
    if ((flags & ~RING_EVENT_FLAGS_MASK) !== 0 || mode === RING_EVENT_FLAGS_RESERVED || (mode === RING_EVENT_FLAGS_DESC && !this.eventIdx))
      throw this.fault('ERR_DEVICE_EVENT_SUPPRESSION', `device event suppression flags 0x${flags.toString(16)}`);
    if (mode === RING_EVENT_FLAGS_ENABLE) return true;
    if (mode === RING_EVENT_FLAGS_DISABLE) return false;
    const off = desc & RING_EVENT_OFF_MASK;
    if (off >= this.size) throw this.fault('ERR_DEVICE_EVENT_SUPPRESSION', `device event offset ${off} is outside the ring`);
    // The event descriptor as a position on the lap of `next`: one lap back when its wrap differs.
    const event = desc >>> RING_EVENT_WRAP_SHIFT === wrap ? off : off - this.size;
    return vringNeedEvent(event, next, next - added);
  }

  /**
   * Take every used descriptor the device wrote since the last call, or none: each must carry AVAIL
   * and USED equal to the used wrap counter (ERR_DEVICE_USED_FLAGS), name a published chain in flight
   * (ERR_DEVICE_USED_ID), and carry a len at most the chain's writable bytes (ERR_DEVICE_USED_LEN);
   * with IN_ORDER it may not name a chain an earlier batch of the same pass covered
   * (ERR_DEVICE_USED_ORDER). The len is read whether or not WRITE is set: 2.8.4 calls it reserved
   * without WRITE, but QEMU (7.2) never sets WRITE in a used descriptor and Linux reads len
   * regardless. On such a
   * DeviceFaultError nothing is taken. Refreshes the first `len` writable bytes of each chain.
   */
  reap(): Promise<UsedBuffer<T>[]> {
    return this.dma.serial(() => this.reapNow());
  }

  /** reap() for coherent DMA ({@link coherent}): done at once. Throws UsageError on a non-coherent bus. */
  reapSync(): UsedBuffer<T>[] {
    this.dma.requireCoherent('reapSync');
    const n = this.validateUsed();
    return n === 0 ? [] : this.takeUsed(n);
  }

  /** reapSync()'s steps with the DMA waits a remote bus needs before each read. */
  private async reapNow(): Promise<UsedBuffer<T>[]> {
    if (this.dma.coherent) return this.reapSync();
    if (this.publishedSlots === 0) return [];
    // The next used descriptor first: when the device has not written it, one short read is all.
    this.dma.refresh(this.desc.addr + this.nextUsed * PVIRTQ_DESC_SIZE, PVIRTQ_DESC_SIZE);
    await this.dma.settle();
    const flags = this.desc.dv.getUint16(this.nextUsed * PVIRTQ_DESC_SIZE + PVIRTQ_DESC_FLAGS, true);
    if (descState(flags, this.usedWrap) !== USED) {
      this.validateUsed(); // nothing used, or a fault to report
      return [];
    }
    // Only published slots: the device owns them, and the local image holds no unflushed writes there.
    if (this.publishedSlots > 1) {
      const from = this.nextUsed + 1 === this.size ? 0 : this.nextUsed + 1;
      this.ringRanges(from, this.publishedSlots - 1, (slot, count) =>
        this.dma.refresh(this.desc.addr + slot * PVIRTQ_DESC_SIZE, count * PVIRTQ_DESC_SIZE),
      );
      await this.dma.settle();
    }
    const n = this.validateUsed();
    const out = this.takeUsed(n);
    await this.dma.settle();
    return out;
  }

  /**
   * First pass of reap(): walk the used descriptors from the driver's used position, checking each,
   * without taking any; returns how many there are. The walk stays inside the published descriptors,
   * each of which the driver wrote on the lap it expects, so it ends at the first one still available.
   */
  private validateUsed(): number {
    if (++this.usedPass > U32_MAX) {
      this.usedMark.fill(0); // marks wrap: forget those of 2^32 passes ago
      this.usedPass = 1;
    }
    const pass = this.usedPass;
    const dv = this.desc.dv;
    let slot = this.nextUsed;
    let wrap = this.usedWrap;
    let n = 0;
    let oldest = this.usedSeq;
    for (let left = this.publishedSlots; left > 0;) {
      const at = slot * PVIRTQ_DESC_SIZE;
      const flags = dv.getUint16(at + PVIRTQ_DESC_FLAGS, true);
      const state = descState(flags, wrap);
      if (state === AVAILABLE) break; // not used yet
      if (state === INCONSISTENT)
        throw this.fault('ERR_DEVICE_USED_FLAGS', `descriptor ${slot}: flags 0x${flags.toString(16)} with used wrap counter ${wrap}`);
      const id = dv.getUint16(at + PVIRTQ_DESC_ID, true);
      if (id >= this.size || this.chainSlots[id] === 0 || this.unpublished[id] === 1 || this.usedMark[id] === pass)
        throw this.fault('ERR_DEVICE_USED_ID', `descriptor ${slot} names buffer id ${id}, which is not in flight`);
      const len = dv.getUint32(at + PVIRTQ_DESC_LEN, true);
      if (len > this.chains.writable[id]!)
        throw this.fault(
          'ERR_DEVICE_USED_LEN',
          `descriptor ${slot}: len ${len} for buffer ${id} with ${this.chains.writable[id]} writable bytes`,
        );
      this.usedMark[id] = pass;
      n++;
      // The ids are distinct chains in flight, so the skips add up to at most the published slots.
      let skip = this.chainSlots[id]!;
      if (this.inOrder) {
        // 2.8.8: the descriptor stands for every chain from the oldest in flight up to this one.
        const seq = this.addSeq[id]!;
        if (seq < oldest)
          throw this.fault('ERR_DEVICE_USED_ORDER', `descriptor ${slot} names buffer ${id}, which an earlier batch already covered`);
        for (skip = 0; oldest <= seq; oldest++) skip += this.chainSlots[this.seqId[oldest % this.size]!]!;
      }
      left -= skip;
      slot += skip;
      if (slot >= this.size) {
        slot -= this.size;
        wrap ^= 1;
      }
    }
    return n;
  }

  /** Take the `n` used descriptors validateUsed() checked; issues the refresh of each chain's written bytes. */
  private takeUsed(n: number): UsedBuffer<T>[] {
    const dv = this.desc.dv;
    const out: UsedBuffer<T>[] = [];
    for (let k = 0; k < n; k++) {
      const at = this.nextUsed * PVIRTQ_DESC_SIZE;
      const id = dv.getUint16(at + PVIRTQ_DESC_ID, true);
      const len = dv.getUint32(at + PVIRTQ_DESC_LEN, true);
      if (this.inOrder) {
        // 2.8.8: the chains before the named one were used completely.
        for (let skipped = this.seqId[this.usedSeq % this.size]!; skipped !== id; skipped = this.seqId[this.usedSeq % this.size]!)
          this.takeChain(out, skipped, this.chains.writable[skipped]!);
      }
      this.takeChain(out, id, len);
    }
    if (this.eventIdx && n > 0) this.writeDriverEvent();
    return out;
  }

  /** Hand chain `id` out with `len` bytes written (issuing their refresh), move past its descriptors and free it. */
  private takeChain(out: UsedBuffer<T>[], id: number, len: number): void {
    if (!this.coherent) this.chains.refreshIn(this.dma, id, len);
    out.push({ token: this.chains.token(id), len });
    const skip = this.chainSlots[id]!;
    this.publishedSlots -= skip;
    this.nextUsed += skip;
    if (this.nextUsed >= this.size) {
      this.nextUsed -= this.size;
      this.usedWrap ^= 1;
    }
    this.release(id);
    this.usedSeq++;
  }

  /**
   * Ask the device not to interrupt for used buffers (true) or to interrupt again (false):
   * RING_EVENT_FLAGS_DISABLE, or ENABLE, or with EVENT_IDX RING_EVENT_FLAGS_DESC naming the next
   * descriptor the driver will read (updated at every reap). Advisory (2.8.10): the driver still
   * handles interrupts that come anyway.
   */
  setInterruptSuppression(enabled: boolean): Promise<void> {
    return this.dma.serial(async () => {
      this.suppressed = enabled;
      this.writeDriverEvent();
      await this.dma.settle();
    });
  }

  /** Write the driver event suppression area for the current state; issues its flush. */
  private writeDriverEvent(): void {
    const dv = this.driverEvent.dv;
    let flags = RING_EVENT_FLAGS_DISABLE;
    if (!this.suppressed && this.eventIdx) {
      flags = RING_EVENT_FLAGS_DESC;
      dv.setUint16(PVIRTQ_EVENT_DESC, this.nextUsed | (this.usedWrap << RING_EVENT_WRAP_SHIFT), true);
    } else if (!this.suppressed) flags = RING_EVENT_FLAGS_ENABLE;
    dv.setUint16(PVIRTQ_EVENT_FLAGS, flags, true);
    this.dma.flush(this.driverEvent.addr, PVIRTQ_EVENT_SUPPRESS_SIZE);
  }

  /**
   * After a device reset: forget every chain in flight, free its ids and indirect table, and return
   * their tokens (so the caller can fail the requests). The ring starts again at slot 0, wrap
   * counters 1, areas zeroed (flushed at the next publish).
   */
  detachUnused(): T[] {
    const tokens: T[] = [];
    for (let id = 0; id < this.size; id++) {
      if (this.chainSlots[id] === 0) continue;
      tokens.push(this.chains.token(id));
      this.release(id);
    }
    for (let i = 0; i < this.size; i++) this.freeIds[i] = this.size - 1 - i;
    this.freeIdCount = this.size;
    this.nextAvail = this.nextUsed = 0;
    this.availWrap = this.usedWrap = 1;
    this.publishedSlots = this.pendingSlots = this.pendingCount = 0;
    this.addedSeq = this.usedSeq = 0;
    this.suppressed = false; // the zeroed driver area says ENABLE
    this.dma.zeroAreas();
    return tokens;
  }

  idle(): Promise<void> {
    return this.dma.idle();
  }

  /** Return the ring memory to the DMA allocator; the queue is unusable afterwards. */
  destroy(): void {
    this.detachUnused();
    this.dma.destroy();
  }

  /** Free buffer `id`: its ring descriptors, its indirect table, its references. */
  private release(id: number): void {
    this.freeSlots += this.chainSlots[id]!;
    this.chainSlots[id] = 0;
    this.unpublished[id] = 0;
    this.freeIds[this.freeIdCount++] = id;
    this.chains.forget(this.dma, id);
    this.inFlightCount--;
  }

  /** The slot ranges of `count` descriptors from `slot` (one, or two when wrapping). */
  private ringRanges(slot: number, count: number, each: (slot: number, count: number) => void): void {
    if (count === 0) return;
    const head = Math.min(count, this.size - slot);
    each(slot, head);
    if (count > head) each(0, count - head);
  }

  private fault(code: DeviceFaultCode, message: string): DeviceFaultError {
    return new DeviceFaultError(code, `queue ${this.index}: ${message}`);
  }
}

/** The addr, len and id of the struct pvirtq_desc at byte `at` of `dv`; the caller writes its flags. */
function writeDesc(dv: DataView, at: number, addr: number, len: number, id: number): void {
  dv.setUint32(at + PVIRTQ_DESC_ADDR, lo32(addr), true);
  dv.setUint32(at + PVIRTQ_DESC_ADDR + 4, hi32(addr), true);
  dv.setUint32(at + PVIRTQ_DESC_LEN, len, true);
  dv.setUint16(at + PVIRTQ_DESC_ID, id, true);
}

const AVAILABLE = 0;
const USED = 1;
const INCONSISTENT = 2;

/**
 * What the flags of a published descriptor say on the lap whose wrap counter is `wrap` (2.8.1): the
 * driver wrote AVAIL = wrap, USED = !wrap; the device, using it, sets both to wrap. Anything else
 * (AVAIL != wrap) the driver never wrote on this lap and no compliant device writes.
 */
function descState(flags: number, wrap: number): number {
  const avail = (flags & VIRTQ_DESC_F_AVAIL) !== 0 ? 1 : 0;
  const used = (flags & VIRTQ_DESC_F_USED) !== 0 ? 1 : 0;
  if (avail !== wrap) return INCONSISTENT;
  return used === wrap ? USED : AVAILABLE;
}
