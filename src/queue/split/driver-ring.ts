/**
 * The driver half of a split virtqueue (spec 2.7): puts descriptor chains in the ring, publishes
 * them, and takes back used elements, checking each against what it submitted (the device may be
 * hostile). Rings live in DmaMemory through a {@link RingDma}, which flushes the local image before
 * the device may look and refreshes it before the driver reads, so the same code runs in-process
 * and over a remote bus (with coherent DmaMemory, in-process, both are skipped).
 *
 * All bookkeeping (free descriptors, chains in flight, their lengths) is kept here, never read back
 * from ring memory the device could have changed.
 *
 * With VIRTIO_F_IN_ORDER (2.7.9) the driver takes descriptors in ring order, from 0 and wrapping
 * (2.7.5: "driver uses descriptors in ring order"), and a used element may stand for a batch: it
 * names the last chain of the batch, sits where the batch's first would have, and used.idx moves by
 * the batch's size. The skipped chains were "used (read or written) by the device completely", so
 * they come back with all their writable bytes as len.
 */

import { DeviceFaultError, UsageError, type DeviceFaultCode } from '../../errors.js';
import type { DmaBuffer, DmaMemory, DmaSpan } from '../../memory/dma.js';
import { hi32, lo32 } from '../../memory/guest-memory.js';
import {
  VIRTQ_AVAIL_ELEM_SIZE,
  VIRTQ_AVAIL_F_NO_INTERRUPT,
  VIRTQ_AVAIL_FLAGS,
  VIRTQ_AVAIL_IDX,
  VIRTQ_AVAIL_RING,
  VIRTQ_DESC_ADDR,
  VIRTQ_DESC_F_INDIRECT,
  VIRTQ_DESC_F_NEXT,
  VIRTQ_DESC_F_WRITE,
  VIRTQ_DESC_FLAGS,
  VIRTQ_DESC_LEN,
  VIRTQ_DESC_NEXT,
  VIRTQ_DESC_SIZE,
  VIRTQ_USED_ELEM_SIZE,
  VIRTQ_USED_F_NO_NOTIFY,
  VIRTQ_USED_FLAGS,
  VIRTQ_USED_IDX,
  VIRTQ_USED_RING,
  availRingSize,
  descTableSize,
  legacyRingSize,
  legacyUsedOffset,
  usedRingSize,
  vringNeedEvent,
} from '../../spec/ring.js';
import { admitChain, descriptorsNeeded } from '../chain-admission.js';
import { InFlightChains } from '../in-flight-chains.js';
import { RingDma } from '../ring-dma.js';
import { SPLIT_RING } from '../ring-format.js';
import type { DriverRing, RingAreas, UsedBuffer } from '../types.js';

export interface SplitQueueDriverOptions {
  readonly index: number;
  /** Queue size (SPLIT_RING.isQueueSize). */
  readonly size: number;
  readonly dma: DmaMemory;
  /** VIRTIO_F_EVENT_IDX negotiated. */
  readonly eventIdx: boolean;
  /** VIRTIO_F_INDIRECT_DESC negotiated. */
  readonly indirect: boolean;
  /** VIRTIO_F_IN_ORDER negotiated. */
  readonly inOrder?: boolean;
  /**
   * Legacy layout (2.7.2): one area aligned to 4096 holding the descriptor table, the available
   * ring and, at the next 4096 boundary, the used ring. Otherwise three allocations.
   */
  readonly legacy?: boolean;
}

const U32_MAX = 0xffff_ffff;
/** The format's rule, read once: add() compares with a constant rather than a property. */
const MAX_CHAIN_BYTES = SPLIT_RING.maxChainBytes;

/** A ring part: where it is on the bus, and a DataView over its bytes in the local image. */
interface Part {
  readonly addr: number;
  readonly dv: DataView;
}

function part(buffer: DmaBuffer, offset: number, len: number): Part {
  return { addr: buffer.addr + offset, dv: new DataView(buffer.bytes.buffer, buffer.bytes.byteOffset + offset, len) };
}

/**
 * Driver side of one split virtqueue.
 *
 * Indirect tables: with VIRTIO_F_INDIRECT_DESC, a chain of several buffers goes into an indirect
 * table (one DMA allocation per chain, freed when it is used) only when the ring has too few free
 * descriptors for it; otherwise it uses ring descriptors directly, which costs no allocation.
 *
 * The span arrays given to add() are kept by reference until the chain is reaped (their writable
 * spans are refreshed then), so don't change them while the chain is in flight.
 */
export class SplitQueueDriver<T> implements DriverRing<T> {
  readonly index: number;
  readonly size: number;
  /** Bus address of the descriptor table (queue_desc). */
  readonly descAddr: number;
  /** Bus address of the available ring (queue_driver). */
  readonly availAddr: number;
  /** Bus address of the used ring (queue_device). */
  readonly usedAddr: number;
  /** Legacy layout only: the start of the one ring area, 4096-aligned (the queue PFN is this / 4096). */
  readonly legacyAreaAddr: number | undefined;
  readonly areas: RingAreas;
  /** DmaMemory.coherent: the device sees the local bytes, so no flush or refresh is issued (and publishSync/reapSync work). */
  readonly coherent: boolean;
  private readonly dma: RingDma;
  private readonly eventIdx: boolean;
  private readonly indirect: boolean;
  private readonly inOrder: boolean;
  private readonly mask: number;
  private readonly maxBuffers: number;
  private readonly desc: Part;
  private readonly avail: Part;
  private readonly used: Part;
  /** Free descriptor ids, a stack (without IN_ORDER). */
  private readonly freeIds: Uint16Array;
  private freeCount: number;
  /** With IN_ORDER: the next descriptor id to take; the free ones follow it, wrapping. */
  private nextFree = 0;
  /**
   * With IN_ORDER: the head at each avail ring position (free-running index & mask) and each
   * head's position, to find a batch's chains from the used element naming its last.
   */
  private readonly availHead: Uint16Array;
  private readonly availPos: Uint16Array;
  /** JS-side copy of each descriptor's next, to free a chain without trusting ring memory. */
  private readonly nextId: Uint16Array;
  /** Per head: descriptors of the table the chain holds (1 for an indirect chain), 0 when not in flight. */
  private readonly chainDescs: Uint16Array;
  /** validateUsed(): `usedMark[id] === usedPass` when id was already named in this pass. */
  private readonly usedMark: Uint32Array;
  private usedPass = 0;
  private readonly chains: InFlightChains<T>;
  private inFlightCount = 0;
  /** Next avail.idx to publish, and the one published last. */
  private availIdx = 0;
  private publishedIdx = 0;
  private lastUsed = 0;
  /** Heads added since the last publish. */
  private readonly pending: Uint16Array;
  private pendingCount = 0;
  /** 1 for a chain added but not yet published: the device cannot have seen it, so it cannot be used. */
  private readonly unpublished: Uint8Array;
  /** Descriptor table entries written since the last publish, [lo, hi] (lo > hi: none). */
  private dirtyLo: number;
  private dirtyHi = -1;
  private suppressed = false;

  /** Throws UsageError for a bad size; DmaMemory errors when it cannot allocate the rings. */
  constructor(options: SplitQueueDriverOptions) {
    const { index, size } = options;
    if (!SPLIT_RING.isQueueSize(size)) {
      throw new UsageError(`queue ${index}: size ${size} is not a power of two in 1..${SPLIT_RING.maxQueueSize}`);
    }
    this.index = index;
    this.size = size;
    const dma = (this.dma = new RingDma(options.dma, index));
    this.coherent = dma.coherent;
    this.eventIdx = options.eventIdx;
    this.indirect = options.indirect;
    this.inOrder = options.inOrder ?? false;
    this.mask = size - 1;
    this.maxBuffers = SPLIT_RING.maxChainBuffers(size);
    // The areas come zeroed: 2.7.10, the driver initialises the rings (used flags 0 included).
    if (options.legacy) {
      const align = SPLIT_RING.legacyAlign;
      const area = dma.area(legacyRingSize(size, align), align);
      this.desc = part(area, 0, descTableSize(size));
      this.avail = part(area, descTableSize(size), availRingSize(size));
      this.used = part(area, legacyUsedOffset(size, align), usedRingSize(size));
      this.legacyAreaAddr = area.addr;
    } else {
      const align = SPLIT_RING.areaAlign;
      try {
        this.desc = part(dma.area(descTableSize(size), align.desc), 0, descTableSize(size));
        this.avail = part(dma.area(availRingSize(size), align.driver), 0, availRingSize(size));
        this.used = part(dma.area(usedRingSize(size), align.device), 0, usedRingSize(size));
      } catch (err) {
        // All or nothing: the areas already taken go back before the failure is reported.
        dma.destroy();
        throw err;
      }
      this.legacyAreaAddr = undefined;
    }
    this.descAddr = this.desc.addr;
    this.availAddr = this.avail.addr;
    this.usedAddr = this.used.addr;
    this.areas = { desc: this.descAddr, driver: this.availAddr, device: this.usedAddr };
    this.freeIds = new Uint16Array(size);
    for (let i = 0; i < size; i++) this.freeIds[i] = size - 1 - i;
    this.freeCount = size;
    this.nextId = new Uint16Array(size);
    this.chainDescs = new Uint16Array(size);
    this.chains = new InFlightChains<T>(size);
    this.usedMark = new Uint32Array(size);
    this.availHead = new Uint16Array(size);
    this.availPos = new Uint16Array(size);
    this.pending = new Uint16Array(size);
    this.unpublished = new Uint8Array(size);
    this.dirtyLo = size;
  }

  /** Descriptors free for new chains. */
  get numFree(): number {
    return this.freeCount;
  }

  /** Chains added and not yet reaped. */
  get inFlight(): number {
    return this.inFlightCount;
  }

  /**
   * Make the zeroed rings visible to the device (2.7.10). Call it before telling the device where
   * the rings are: over a remote bus the device's memory may still hold an earlier owner's entries.
   */
  flushRings(): Promise<void> {
    return this.dma.serial(async () => {
      this.dma.flushAreas();
      await this.dma.settle();
    });
  }

  /**
   * Put a chain of device-readable `out` then device-writable `inn` buffers in the ring (visible
   * to the device after publish()). Returns its head id. Throws QueueFullError when too few
   * descriptors are free, UsageError for a chain the spec forbids (empty, more buffers than the
   * queue size, a length beyond 32 bits or more than 2^32 bytes in total).
   */
  add(out: readonly DmaSpan[], inn: readonly DmaSpan[], token: T): number {
    const writable = admitChain(this.index, out, inn, this.maxBuffers, MAX_CHAIN_BYTES);
    const nOut = out.length;
    const n = nOut + inn.length;
    const needed = descriptorsNeeded(this.index, n, this.freeCount, this.indirect);
    const useTable = needed < n;

    let head: number;
    let table: DmaBuffer | undefined;
    if (useTable) {
      table = this.dma.memory.alloc(n * VIRTQ_DESC_SIZE, SPLIT_RING.areaAlign.desc);
      head = this.addIndirect(table, out, inn);
    } else {
      head = this.takeId();
      let id = head;
      for (let k = 0; k < n; k++) {
        const last = k === n - 1;
        const next = last ? 0 : this.takeId();
        const span = k < nOut ? out[k]! : inn[k - nOut]!;
        const flags = (k < nOut ? 0 : VIRTQ_DESC_F_WRITE) | (last ? 0 : VIRTQ_DESC_F_NEXT);
        this.writeRingDesc(id, span.addr, span.len, flags, next);
        this.nextId[id] = next;
        id = next;
      }
      this.chainDescs[head] = n;
    }
    this.chains.record(head, out, inn, writable, token, table);
    this.inFlightCount++;
    this.avail.dv.setUint16(VIRTQ_AVAIL_RING + (this.availIdx & this.mask) * VIRTQ_AVAIL_ELEM_SIZE, head, true);
    this.availHead[this.availIdx & this.mask] = head;
    this.availPos[head] = this.availIdx;
    this.availIdx = (this.availIdx + 1) & 0xffff;
    this.pending[this.pendingCount++] = head;
    this.unpublished[head] = 1;
    return head;
  }

  /** The chain as indirect table `table` (its own DMA allocation), behind one ring descriptor; returns its head. */
  private addIndirect(table: DmaBuffer, out: readonly DmaSpan[], inn: readonly DmaSpan[]): number {
    const nOut = out.length;
    const n = nOut + inn.length;
    const dv = new DataView(table.bytes.buffer, table.bytes.byteOffset, n * VIRTQ_DESC_SIZE);
    for (let k = 0; k < n; k++) {
      const last = k === n - 1;
      const span = k < nOut ? out[k]! : inn[k - nOut]!;
      const flags = (k < nOut ? 0 : VIRTQ_DESC_F_WRITE) | (last ? 0 : VIRTQ_DESC_F_NEXT);
      writeDesc(dv, k * VIRTQ_DESC_SIZE, span.addr, span.len, flags, last ? 0 : k + 1);
    }
    const head = this.takeId();
    this.writeRingDesc(head, table.addr, n * VIRTQ_DESC_SIZE, VIRTQ_DESC_F_INDIRECT, 0);
    this.chainDescs[head] = 1;
    return head;
  }

  /**
   * Make the chains added since the last call visible to the device: flush their readable buffers,
   * indirect tables and descriptors, the avail ring entries, then avail.idx (2.7.13: the ring is
   * complete before idx moves). Resolves whether the device wants a notification
   * (VIRTQ_USED_F_NO_NOTIFY, or avail_event with EVENT_IDX).
   */
  publish(): Promise<boolean> {
    return this.dma.serial(() => this.publishNow());
  }

  /**
   * publish() for coherent DMA ({@link coherent}), where nothing needs flushing: done at once, with
   * no promise to wait for. Throws UsageError on a non-coherent bus.
   */
  publishSync(): boolean {
    this.dma.requireCoherent('publishSync');
    const old = this.publishedIdx;
    const target = this.takePending();
    if (old === target) return false;
    this.avail.dv.setUint16(VIRTQ_AVAIL_IDX, target, true);
    return this.wantsNotification(old, target);
  }

  /** publishSync()'s steps with the DMA waits a remote bus needs between them (2.7.13). */
  private async publishNow(): Promise<boolean> {
    if (this.dma.coherent) return this.publishSync();
    this.flushAdded();
    // Taken before the first wait: chains added meanwhile belong to the next publish.
    const old = this.publishedIdx;
    const target = this.takePending();
    await this.dma.settle();
    if (old === target) return false;
    this.avail.dv.setUint16(VIRTQ_AVAIL_IDX, target, true);
    this.dma.flush(this.avail.addr + VIRTQ_AVAIL_IDX, 2);
    await this.dma.settle();
    this.dma.refresh(this.used.addr + this.notificationField(), 2);
    await this.dma.settle();
    return this.wantsNotification(old, target);
  }

  /** Mark every chain added so far as published; returns the avail.idx that publishes them. */
  private takePending(): number {
    const target = this.availIdx;
    this.publishedIdx = target;
    for (let p = 0; p < this.pendingCount; p++) this.unpublished[this.pending[p]!] = 0;
    this.pendingCount = 0;
    this.dirtyLo = this.size;
    this.dirtyHi = -1;
    return target;
  }

  /** 2.9: the published avail idx (its 15 low bits are next_off, bit 15 next_wrap). */
  notificationData(): number {
    return this.publishedIdx;
  }

  /** Where the device says whether it wants notifications: avail_event with EVENT_IDX, else the used flags. */
  private notificationField(): number {
    return this.eventIdx ? VIRTQ_USED_RING + this.size * VIRTQ_USED_ELEM_SIZE : VIRTQ_USED_FLAGS;
  }

  /** Whether the device wants to hear that avail.idx moved from `old` to `target`. */
  private wantsNotification(old: number, target: number): boolean {
    const value = this.used.dv.getUint16(this.notificationField(), true);
    return this.eventIdx ? vringNeedEvent(value, target, old) : (value & VIRTQ_USED_F_NO_NOTIFY) === 0;
  }

  /** Issue what publish() flushes before avail.idx moves: readable buffers, tables, descriptors, avail entries. */
  private flushAdded(): void {
    this.dma.flushAreas();
    for (let p = 0; p < this.pendingCount; p++) {
      const head = this.pending[p]!;
      this.chains.flushOut(this.dma, head);
    }
    if (this.dirtyLo <= this.dirtyHi) {
      this.dma.flush(this.desc.addr + this.dirtyLo * VIRTQ_DESC_SIZE, (this.dirtyHi - this.dirtyLo + 1) * VIRTQ_DESC_SIZE);
    }
    const added = (this.availIdx - this.publishedIdx) & 0xffff;
    this.ringRanges(this.avail.addr + VIRTQ_AVAIL_RING, VIRTQ_AVAIL_ELEM_SIZE, this.publishedIdx, added, (addr, len) =>
      this.dma.flush(addr, len),
    );
  }

  /**
   * Take every used element the device returned since the last call, or none: each must name a
   * chain in flight (ERR_DEVICE_USED_ID) with len at most its writable bytes (ERR_DEVICE_USED_LEN),
   * and used.idx may not move past the chains in flight (ERR_DEVICE_USED_INDEX); with IN_ORDER a
   * used element's batch may not reach past used.idx (ERR_DEVICE_USED_ORDER). On such a
   * DeviceFaultError nothing is taken. Refreshes the first `len` writable bytes of each chain.
   */
  reap(): Promise<UsedBuffer<T>[]> {
    return this.dma.serial(() => this.reapNow());
  }

  /** reap() for coherent DMA ({@link coherent}): nothing to refresh, so done at once. Throws UsageError on a non-coherent bus. */
  reapSync(): UsedBuffer<T>[] {
    this.dma.requireCoherent('reapSync');
    const n = this.usedCount();
    return n === 0 ? [] : this.takeUsed(n);
  }

  /** reapSync()'s steps with the DMA waits a remote bus needs before each read. */
  private async reapNow(): Promise<UsedBuffer<T>[]> {
    if (this.dma.coherent) return this.reapSync();
    this.dma.refresh(this.used.addr + VIRTQ_USED_IDX, 2);
    await this.dma.settle();
    const n = this.usedCount();
    if (n === 0) return [];
    this.ringRanges(this.used.addr + VIRTQ_USED_RING, VIRTQ_USED_ELEM_SIZE, this.lastUsed, n, (addr, len) => this.dma.refresh(addr, len));
    await this.dma.settle();
    const out = this.takeUsed(n);
    await this.dma.settle();
    return out;
  }

  /** Used elements the device returned since the last reap; ERR_DEVICE_USED_INDEX when more than are in flight. */
  private usedCount(): number {
    const usedIdx = this.used.dv.getUint16(VIRTQ_USED_IDX, true);
    const n = (usedIdx - this.lastUsed) & 0xffff;
    if (n > this.inFlightCount)
      throw this.fault(
        'ERR_DEVICE_USED_INDEX',
        `used idx moved from ${this.lastUsed} to ${usedIdx} with ${this.inFlightCount} chains in flight`,
      );
    return n;
  }

  /**
   * Check all `n` new used elements, then take them; issues the refresh of each chain's first `len`
   * writable bytes, and the flush of used_event.
   */
  private takeUsed(n: number): UsedBuffer<T>[] {
    this.validateUsed(n);
    const out: UsedBuffer<T>[] = [];
    for (let k = 0; k < n;) {
      const elem = this.usedElem(this.lastUsed);
      const id = this.used.dv.getUint32(elem, true);
      const len = this.used.dv.getUint32(elem + 4, true);
      const batch = this.batchSize(this.lastUsed, id);
      // 2.7.9: the chains before the named one were used completely.
      for (let b = 1; b < batch; b++) {
        const skipped = this.availHead[this.lastUsed & this.mask]!;
        this.takeChain(out, skipped, this.chains.writable[skipped]!);
      }
      this.takeChain(out, id, len);
      k += batch;
    }
    if (this.eventIdx) this.writeUsedEvent();
    return out;
  }

  /** Hand chain `id` out with `len` bytes written (issuing their refresh) and free it. */
  private takeChain(out: UsedBuffer<T>[], id: number, len: number): void {
    if (!this.coherent) this.chains.refreshIn(this.dma, id, len);
    out.push({ token: this.chains.token(id), len });
    this.release(id);
    this.lastUsed = (this.lastUsed + 1) & 0xffff;
  }

  /**
   * How many chains the used element at free-running index `at`, naming chain `id` (in flight),
   * returns: 1, or with IN_ORDER the chains from the oldest in flight up to `id` (2.7.9).
   */
  private batchSize(at: number, id: number): number {
    return this.inOrder ? ((this.availPos[id]! - at) & 0xffff) + 1 : 1;
  }

  /**
   * Ask the device not to interrupt for used buffers (true) or to interrupt again (false):
   * VIRTQ_AVAIL_F_NO_INTERRUPT, or with EVENT_IDX a used_event the device has already passed.
   * Advisory (2.7.7): the driver still handles interrupts that come anyway.
   */
  setInterruptSuppression(enabled: boolean): Promise<void> {
    return this.dma.serial(async () => {
      this.suppressed = enabled;
      if (this.eventIdx) this.writeUsedEvent();
      else {
        this.avail.dv.setUint16(VIRTQ_AVAIL_FLAGS, enabled ? VIRTQ_AVAIL_F_NO_INTERRUPT : 0, true);
        this.dma.flush(this.avail.addr + VIRTQ_AVAIL_FLAGS, 2);
      }
      await this.dma.settle();
    });
  }

  /**
   * After a device reset: forget every chain in flight, free its descriptors and indirect table,
   * and return their tokens (so the caller can fail the requests). Published indices start again at 0.
   */
  detachUnused(): T[] {
    const tokens: T[] = [];
    for (let head = 0; head < this.size; head++) {
      if (this.chainDescs[head] === 0) continue;
      tokens.push(this.chains.token(head));
      this.release(head);
    }
    this.availIdx = this.publishedIdx = this.lastUsed = 0;
    this.nextFree = 0; // 2.7.5: in ring order "starting from offset 0"
    this.pendingCount = 0;
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

  /** First pass of reap(): check all n new used elements before taking any. */
  private validateUsed(n: number): void {
    if (++this.usedPass > U32_MAX) {
      this.usedMark.fill(0); // marks wrap: forget those of 2^32 passes ago
      this.usedPass = 1;
    }
    const pass = this.usedPass;
    for (let k = 0, i = this.lastUsed; k < n;) {
      const elem = this.usedElem(i);
      const id = this.used.dv.getUint32(elem, true);
      const len = this.used.dv.getUint32(elem + 4, true);
      if (id >= this.size || this.chainDescs[id] === 0 || this.unpublished[id] === 1 || this.usedMark[id] === pass) {
        throw this.fault('ERR_DEVICE_USED_ID', `used ring entry ${i} names id ${id}, which is not in flight`);
      }
      if (len > this.chains.writable[id]!)
        throw this.fault(
          'ERR_DEVICE_USED_LEN',
          `used ring entry ${i}: len ${len} for chain ${id} with ${this.chains.writable[id]} writable bytes`,
        );
      // In order, a chain used earlier in this pass sits before `i`: its batch would wrap past used.idx.
      const batch = this.batchSize(i, id);
      if (batch > n - k)
        throw this.fault(
          'ERR_DEVICE_USED_ORDER',
          `used ring entry ${i} names chain ${id}, ${batch} chains on in order, but used idx moved ${n - k} past it`,
        );
      this.usedMark[id] = pass;
      k += batch;
      i = (i + batch) & 0xffff;
    }
  }

  private usedElem(i: number): number {
    return VIRTQ_USED_RING + (i & this.mask) * VIRTQ_USED_ELEM_SIZE;
  }

  /** used_event (after the avail ring): the next used index to interrupt for, or one already passed; issues its flush. */
  private writeUsedEvent(): void {
    const at = VIRTQ_AVAIL_RING + this.size * VIRTQ_AVAIL_ELEM_SIZE;
    this.avail.dv.setUint16(at, (this.suppressed ? this.lastUsed - 1 : this.lastUsed) & 0xffff, true);
    this.dma.flush(this.avail.addr + at, 2);
  }

  /** Free chain `head`: its descriptors, its indirect table, its references. */
  private release(head: number): void {
    if (this.inOrder) {
      // Chains come back in the order they were added, so theirs are the oldest descriptors taken.
      this.freeCount += this.chainDescs[head]!;
    } else {
      let id = head;
      for (let k = this.chainDescs[head]!; k > 0; k--) {
        this.freeIds[this.freeCount++] = id;
        id = this.nextId[id]!;
      }
    }
    this.chainDescs[head] = 0;
    this.chains.forget(this.dma, head);
    this.inFlightCount--;
  }

  private takeId(): number {
    if (!this.inOrder) return this.freeIds[--this.freeCount]!;
    const id = this.nextFree;
    this.nextFree = (id + 1) & this.mask;
    this.freeCount--;
    return id;
  }

  private writeRingDesc(id: number, addr: number, len: number, flags: number, next: number): void {
    writeDesc(this.desc.dv, id * VIRTQ_DESC_SIZE, addr, len, flags, next);
    if (id < this.dirtyLo) this.dirtyLo = id;
    if (id > this.dirtyHi) this.dirtyHi = id;
  }

  /** The byte ranges of `count` ring entries from free-running index `from` (one, or two when wrapping). */
  private ringRanges(ring: number, elemSize: number, from: number, count: number, each: (addr: number, len: number) => void): void {
    if (count === 0) return;
    const first = from & this.mask;
    const head = Math.min(count, this.size - first);
    each(ring + first * elemSize, head * elemSize);
    if (count > head) each(ring, (count - head) * elemSize);
  }

  private fault(code: DeviceFaultCode, message: string): DeviceFaultError {
    return new DeviceFaultError(code, `queue ${this.index}: ${message}`);
  }
}

function writeDesc(dv: DataView, at: number, addr: number, len: number, flags: number, next: number): void {
  dv.setUint32(at + VIRTQ_DESC_ADDR, lo32(addr), true);
  dv.setUint32(at + VIRTQ_DESC_ADDR + 4, hi32(addr), true);
  dv.setUint32(at + VIRTQ_DESC_LEN, len, true);
  dv.setUint16(at + VIRTQ_DESC_FLAGS, flags, true);
  dv.setUint16(at + VIRTQ_DESC_NEXT, next, true);
}
