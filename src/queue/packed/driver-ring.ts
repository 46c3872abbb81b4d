/**
 * The driver half of a packed virtqueue (spec 2.8): one descriptor ring that both sides write, the
 * driver making descriptors available and the device overwriting them with used descriptors, plus
 * two event suppression areas. Ring memory is DmaMemory through a {@link RingDma}, which flushes the
 * local image before the device may look and refreshes it before the driver reads, so the same code
 * runs in-process and over a remote bus.
 *
 * Each side of the ring has its file: making descriptors available (driver-descriptor-ring.ts),
 * reading used ones (driver-used-descriptors.ts), the event suppression areas
 * (driver-event-suppression.ts); this one orders their writes, flushes and reads. All bookkeeping is
 * kept in the driver, never read back from ring memory the device could change.
 *
 * With VIRTIO_F_IN_ORDER (2.8.8) one used descriptor may stand for a batch; the skipped buffers were
 * "used (read or written) by the device completely", so they come back with all their writable bytes
 * as len.
 */

import { UsageError } from '../../errors.js';
import type { DmaMemory, DmaSpan } from '../../memory/dma.js';
import { PVIRTQ_DESC_SIZE, PVIRTQ_EVENT_SUPPRESS_SIZE, packedDescRingSize } from '../../spec/packed-ring.js';
import { admitChain, descriptorsNeeded } from '../chain-admission.js';
import { InFlightChains } from '../in-flight-chains.js';
import { RingDma, ringPart, type RingPart } from '../ring-dma.js';
import { PACKED_RING } from '../ring-format.js';
import type { DriverRing, RingAreas, UsedBuffer } from '../types.js';
import { DriverDescriptorRing } from './driver-descriptor-ring.js';
import { DriverEventSuppression } from './driver-event-suppression.js';
import { DriverUsedDescriptors } from './driver-used-descriptors.js';

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

const MAX_CHAIN_BYTES = PACKED_RING.maxChainBytes;

/**
 * Driver side of one packed virtqueue.
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
  private readonly avail: DriverDescriptorRing;
  private readonly used: DriverUsedDescriptors;
  private readonly events: DriverEventSuppression;
  private readonly chains: InFlightChains<T>;

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
    let desc: RingPart, driverEvent: RingPart, deviceEvent: RingPart;
    // Zeroed (2.8.13: the descriptor ring is zero-initialized; both event areas start ENABLE).
    try {
      desc = ringPart(dma.area(packedDescRingSize(size), align.desc));
      driverEvent = ringPart(dma.area(PVIRTQ_EVENT_SUPPRESS_SIZE, align.driver));
      deviceEvent = ringPart(dma.area(PVIRTQ_EVENT_SUPPRESS_SIZE, align.device));
    } catch (err) {
      // All or nothing: the areas already taken go back before the failure is reported.
      dma.destroy();
      throw err;
    }
    this.descAddr = desc.addr;
    this.driverEventAddr = driverEvent.addr;
    this.deviceEventAddr = deviceEvent.addr;
    this.areas = { desc: this.descAddr, driver: this.driverEventAddr, device: this.deviceEventAddr };
    this.avail = new DriverDescriptorRing(desc, size);
    this.used = new DriverUsedDescriptors(desc, size, index, this.inOrder);
    this.events = new DriverEventSuppression(driverEvent, deviceEvent, size, index, options.eventIdx);
    this.chains = new InFlightChains<T>(size);
  }

  /** Ring descriptors free for new chains. */
  get numFree(): number {
    return this.avail.free;
  }

  /** Chains added and not yet reaped. */
  get inFlight(): number {
    return this.chains.count;
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
    const n = out.length + inn.length;
    const needed = descriptorsNeeded(this.index, n, this.avail.free, this.indirect);
    // The table first: when DMA memory runs out, nothing has changed yet.
    const table = needed < n ? this.dma.memory.alloc(n * PVIRTQ_DESC_SIZE, PACKED_RING.areaAlign.desc) : undefined;
    const id = this.avail.takeId();
    if (table !== undefined) this.avail.writeIndirect(id, table, out, inn);
    else this.avail.writeChain(id, out, inn);
    this.chains.record(id, needed, out, inn, writable, token, table);
    this.used.added(id);
    return id;
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
    const first = this.avail.pendingStart();
    const flags = this.avail.held;
    const added = this.takePending();
    if (added === 0) return false;
    this.avail.writeHeldFlags(first, flags);
    return this.events.wantsNotification(this.avail.next, this.avail.wrap, added);
  }

  /** publishSync()'s steps with the DMA waits a remote bus needs between them. */
  private async publishNow(): Promise<boolean> {
    if (this.dma.coherent) return this.publishSync();
    // What publish() flushes before the first flags: readable buffers, tables, descriptors.
    this.dma.flushAreas();
    this.chains.flushPending(this.dma);
    this.avail.flushPending(this.dma);
    // Taken before the first wait: chains added meanwhile belong to the next publish.
    const first = this.avail.pendingStart();
    const flags = this.avail.held;
    const added = this.takePending();
    const next = this.avail.next;
    const wrap = this.avail.wrap;
    await this.dma.settle();
    if (added === 0) return false;
    this.avail.writeHeldFlags(first, flags, this.dma);
    await this.dma.settle();
    this.events.refreshDevice(this.dma);
    await this.dma.settle();
    return this.events.wantsNotification(next, wrap, added);
  }

  /** 2.9: the slot after the last published descriptor (next_off) with its wrap counter in bit 15 (next_wrap). */
  notificationData(): number {
    return this.avail.notificationData();
  }

  /** Mark every chain added so far as published; returns how many descriptors that publishes. */
  private takePending(): number {
    const added = this.avail.takePending();
    this.used.published += added;
    this.chains.publishPending();
    return added;
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
    const n = this.used.check(this.chains);
    return n === 0 ? [] : this.takeUsed(n);
  }

  /** reapSync()'s steps with the DMA waits a remote bus needs before each read. */
  private async reapNow(): Promise<UsedBuffer<T>[]> {
    if (this.dma.coherent) return this.reapSync();
    const used = this.used;
    if (used.published === 0) return [];
    // The next used descriptor first: when the device has not written it, one short read is all.
    this.dma.refresh(this.descAddr + used.next * PVIRTQ_DESC_SIZE, PVIRTQ_DESC_SIZE);
    await this.dma.settle();
    if (!used.nextIsUsed()) {
      used.check(this.chains); // nothing used, or a fault to report
      return [];
    }
    // Only published slots: the device owns them, and the local image holds no unflushed writes there.
    if (used.published > 1) {
      used.laterRuns((slot, count) => this.dma.refresh(this.descAddr + slot * PVIRTQ_DESC_SIZE, count * PVIRTQ_DESC_SIZE));
      await this.dma.settle();
    }
    const n = used.check(this.chains);
    const out = this.takeUsed(n);
    await this.dma.settle();
    return out;
  }

  /** Take the `n` used descriptors check() passed; issues the refresh of each chain's written bytes. */
  private takeUsed(n: number): UsedBuffer<T>[] {
    const used = this.used;
    const out: UsedBuffer<T>[] = [];
    for (let k = 0; k < n; k++) {
      const id = used.id();
      const len = used.len();
      if (this.inOrder) {
        // 2.8.8: the chains before the named one were used completely.
        for (let skipped = used.oldest(); skipped !== id; skipped = used.oldest())
          this.takeChain(out, skipped, this.chains.writable[skipped]!);
      }
      this.takeChain(out, id, len);
    }
    if (this.eventIdx && n > 0) this.events.writeDriverArea(used.next, used.wrap, this.dma);
    return out;
  }

  /** Hand chain `id` out with `len` bytes written (issuing their refresh), move past its descriptors and free it. */
  private takeChain(out: UsedBuffer<T>[], id: number, len: number): void {
    if (!this.coherent) this.chains.refreshIn(this.dma, id, len);
    out.push({ token: this.chains.token(id), len });
    this.used.skip(this.chains.descriptors[id]!);
    this.release(id);
  }

  /**
   * Ask the device not to interrupt for used buffers (true) or to interrupt again (false):
   * RING_EVENT_FLAGS_DISABLE, or ENABLE, or with EVENT_IDX RING_EVENT_FLAGS_DESC naming the next
   * descriptor the driver will read (updated at every reap). Advisory (2.8.10): the driver still
   * handles interrupts that come anyway.
   */
  setInterruptSuppression(enabled: boolean): Promise<void> {
    return this.dma.serial(async () => {
      this.events.suppressed = enabled;
      this.events.writeDriverArea(this.used.next, this.used.wrap, this.dma);
      await this.dma.settle();
    });
  }

  /**
   * After a device reset: forget every chain in flight, free its ids and indirect table, and return
   * their tokens (so the caller can fail the requests). The ring starts again at slot 0, wrap
   * counters 1, areas zeroed (flushed at the next publish).
   */
  detachUnused(): T[] {
    const tokens = this.chains.detach((id) => this.release(id));
    this.avail.restart();
    this.used.restart();
    this.events.suppressed = false; // the zeroed driver area says ENABLE
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
    this.avail.release(id, this.chains.descriptors[id]!);
    this.chains.forget(this.dma, id);
  }
}
