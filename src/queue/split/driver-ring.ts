/**
 * The driver half of a split virtqueue (spec 2.7): puts descriptor chains in the ring, publishes
 * them, and takes back used elements, checking each against what it submitted (the device may be
 * hostile). Rings live in DmaMemory through a {@link RingDma}, which flushes the local image before
 * the device may look and refreshes it before the driver reads, so the same code runs in-process
 * and over a remote bus (with coherent DmaMemory, in-process, both are skipped).
 *
 * The three areas each have their file: the descriptor table (driver-descriptor-table.ts), the
 * available ring (driver-avail-ring.ts) and the used ring (driver-used-ring.ts); this one orders
 * their writes, flushes and reads. All bookkeeping (free descriptors, chains in flight, their
 * lengths) is kept in the driver, never read back from ring memory the device could have changed.
 *
 * With VIRTIO_F_IN_ORDER (2.7.9) a used element may stand for a batch; the skipped chains were
 * "used (read or written) by the device completely", so they come back with all their writable
 * bytes as len.
 */

import { UsageError } from '../../errors.js';
import type { DmaBuffer, DmaMemory, DmaSpan } from '../../memory/dma.js';
import {
  VIRTQ_DESC_SIZE,
  VIRTQ_USED_IDX,
  availRingSize,
  descTableSize,
  legacyRingSize,
  legacyUsedOffset,
  usedRingSize,
} from '../../spec/ring.js';
import { admitChain, descriptorsNeeded } from '../chain-admission.js';
import { InFlightChains } from '../in-flight-chains.js';
import { RingDma, ringPart, type RingPart } from '../ring-dma.js';
import { SPLIT_RING } from '../ring-format.js';
import type { DriverRing, RingAreas, UsedBuffer } from '../types.js';
import { DriverAvailRing } from './driver-avail-ring.js';
import { DriverDescriptorTable } from './driver-descriptor-table.js';
import { DriverUsedRing } from './driver-used-ring.js';

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

/** The format's rule, read once: add() compares with a constant rather than a property. */
const MAX_CHAIN_BYTES = SPLIT_RING.maxChainBytes;

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
  private readonly maxBuffers: number;
  private readonly table: DriverDescriptorTable;
  private readonly avail: DriverAvailRing;
  private readonly used: DriverUsedRing;
  private readonly chains: InFlightChains<T>;
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
    const inOrder = options.inOrder ?? false;
    this.maxBuffers = SPLIT_RING.maxChainBuffers(size);
    let desc: RingPart, avail: RingPart, used: RingPart;
    // The areas come zeroed: 2.7.10, the driver initialises the rings (used flags 0 included).
    if (options.legacy) {
      const align = SPLIT_RING.legacyAlign;
      const area = dma.area(legacyRingSize(size, align), align);
      desc = ringPart(area, 0, descTableSize(size));
      avail = ringPart(area, descTableSize(size), availRingSize(size));
      used = ringPart(area, legacyUsedOffset(size, align), usedRingSize(size));
      this.legacyAreaAddr = area.addr;
    } else {
      const align = SPLIT_RING.areaAlign;
      try {
        desc = ringPart(dma.area(descTableSize(size), align.desc), 0, descTableSize(size));
        avail = ringPart(dma.area(availRingSize(size), align.driver), 0, availRingSize(size));
        used = ringPart(dma.area(usedRingSize(size), align.device), 0, usedRingSize(size));
      } catch (err) {
        // All or nothing: the areas already taken go back before the failure is reported.
        dma.destroy();
        throw err;
      }
      this.legacyAreaAddr = undefined;
    }
    this.descAddr = desc.addr;
    this.availAddr = avail.addr;
    this.usedAddr = used.addr;
    this.areas = { desc: this.descAddr, driver: this.availAddr, device: this.usedAddr };
    this.table = new DriverDescriptorTable(desc, size, inOrder);
    this.avail = new DriverAvailRing(avail, size);
    this.used = new DriverUsedRing(used, size, index, options.eventIdx, inOrder);
    this.chains = new InFlightChains<T>(size);
  }

  /** Descriptors free for new chains. */
  get numFree(): number {
    return this.table.free;
  }

  /** Chains added and not yet reaped. */
  get inFlight(): number {
    return this.chains.count;
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
    const n = out.length + inn.length;
    const needed = descriptorsNeeded(this.index, n, this.table.free, this.indirect);
    let head: number;
    let table: DmaBuffer | undefined;
    if (needed < n) {
      table = this.dma.memory.alloc(n * VIRTQ_DESC_SIZE, SPLIT_RING.areaAlign.desc);
      head = this.table.writeIndirect(table, out, inn);
    } else {
      head = this.table.writeChain(out, inn);
    }
    this.chains.record(head, needed, out, inn, writable, token, table);
    this.avail.add(head);
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
    const old = this.avail.published;
    const target = this.takePending();
    if (old === target) return false;
    this.avail.writeIdx(target);
    return this.used.wantsNotification(old, target);
  }

  /** publishSync()'s steps with the DMA waits a remote bus needs between them (2.7.13). */
  private async publishNow(): Promise<boolean> {
    if (this.dma.coherent) return this.publishSync();
    // What publish() flushes before avail.idx moves: readable buffers, tables, descriptors, avail entries.
    this.dma.flushAreas();
    this.chains.flushPending(this.dma);
    this.table.flushWritten(this.dma);
    this.avail.flushAdded(this.dma);
    // Taken before the first wait: chains added meanwhile belong to the next publish.
    const old = this.avail.published;
    const target = this.takePending();
    await this.dma.settle();
    if (old === target) return false;
    this.avail.writeIdx(target, this.dma);
    await this.dma.settle();
    this.dma.refresh(this.usedAddr + this.used.notificationField(), 2);
    await this.dma.settle();
    return this.used.wantsNotification(old, target);
  }

  /** Mark every chain added so far as published; returns the avail.idx that publishes them. */
  private takePending(): number {
    this.chains.publishPending();
    this.table.published();
    return this.avail.takeAdded();
  }

  /** 2.9: the published avail idx (its 15 low bits are next_off, bit 15 next_wrap). */
  notificationData(): number {
    return this.avail.published;
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
    const n = this.used.count(this.chains.count);
    return n === 0 ? [] : this.takeUsed(n);
  }

  /** reapSync()'s steps with the DMA waits a remote bus needs before each read. */
  private async reapNow(): Promise<UsedBuffer<T>[]> {
    if (this.dma.coherent) return this.reapSync();
    this.dma.refresh(this.usedAddr + VIRTQ_USED_IDX, 2);
    await this.dma.settle();
    const n = this.used.count(this.chains.count);
    if (n === 0) return [];
    this.used.elementRanges(n, (addr, len) => this.dma.refresh(addr, len));
    await this.dma.settle();
    const out = this.takeUsed(n);
    await this.dma.settle();
    return out;
  }

  /**
   * Check all `n` new used elements, then take them; issues the refresh of each chain's first `len`
   * writable bytes, and the flush of used_event.
   */
  private takeUsed(n: number): UsedBuffer<T>[] {
    const used = this.used;
    const avail = this.avail;
    used.check(n, this.chains, avail);
    const out: UsedBuffer<T>[] = [];
    let at = used.lastUsed;
    for (let k = 0; k < n;) {
      const id = used.id(at);
      const len = used.len(at);
      const batch = used.batchSize(at, id, avail);
      // 2.7.9: the chains before the named one were used completely.
      for (let b = 1; b < batch; b++, at = (at + 1) & 0xffff) {
        const skipped = avail.headAt(at);
        this.takeChain(out, skipped, this.chains.writable[skipped]!);
      }
      this.takeChain(out, id, len);
      at = (at + 1) & 0xffff;
      k += batch;
    }
    used.lastUsed = at;
    if (this.eventIdx) this.writeUsedEvent();
    return out;
  }

  /** Hand chain `id` out with `len` bytes written (issuing their refresh) and free it. */
  private takeChain(out: UsedBuffer<T>[], id: number, len: number): void {
    if (!this.coherent) this.chains.refreshIn(this.dma, id, len);
    out.push({ token: this.chains.token(id), len });
    this.release(id);
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
      else this.avail.writeFlags(enabled, this.dma);
      await this.dma.settle();
    });
  }

  /** used_event: the next used index to interrupt for, or, suppressed, one already passed. */
  private writeUsedEvent(): void {
    this.avail.writeUsedEvent(this.suppressed ? this.used.lastUsed - 1 : this.used.lastUsed, this.dma);
  }

  /**
   * After a device reset: forget every chain in flight, free its descriptors and indirect table,
   * and return their tokens (so the caller can fail the requests). Published indices start again at 0.
   */
  detachUnused(): T[] {
    const tokens = this.chains.detach((head) => this.release(head));
    this.avail.restart();
    this.used.lastUsed = 0;
    this.table.restart();
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

  /** Free chain `head`: its descriptors, its indirect table, its references. */
  private release(head: number): void {
    this.table.release(head, this.chains.descriptors[head]!);
    this.chains.forget(this.dma, head);
  }
}
