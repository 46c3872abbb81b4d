/**
 * A split virtqueue built in guest memory by name, after rust-vmm's mock queue: tests, benches and
 * fuzz targets play the driver with `addChain()` and read results with `readUsed()`, and forge
 * hostile rings with the raw pokes (`setDesc`, `setAvailIdx`, ...), never with hand-made offsets.
 * The device side comes from the same seam the transport uses (queue/rings.ts), and the areas are
 * placed by the split format's rules (queue/ring-format.ts). Placement and the chains' buffers are
 * those of every mock ring (mock-ring.ts); MockPackedQueue is the packed ring's sibling.
 */

import { SPLIT_RING } from '../queue/ring-format.js';
import { deviceRing } from '../queue/rings.js';
import { SplitQueue } from '../queue/split/device-ring.js';
import { VIRTIO_F_EVENT_IDX, VIRTIO_F_INDIRECT_DESC, bit } from '../spec/features.js';
import type { DeviceQueue } from '../queue/types.js';
import {
  VIRTQ_AVAIL_ELEM_SIZE,
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
  VIRTQ_USED_FLAGS,
  VIRTQ_USED_IDX,
  VIRTQ_USED_RING,
  availRingSize,
  descTableSize,
  legacyRingSize,
  legacyUsedOffset,
  usedRingSize,
} from '../spec/ring.js';
import {
  MockRing,
  type ChainSpec,
  type DeviceQueueFeatures,
  type MockQueueOptions,
  type PlacedBuffer,
  type UsedBatch,
  type UsedElem,
} from './mock-ring.js';

export { WRITABLE_FILL, type ChainSpec, type MockQueueOptions, type Span, type UsedBatch, type UsedElem } from './mock-ring.js';

/** Fields of a struct virtq_desc; `addr` as a bigint reaches all 64 bits (for wrap tests). */
export interface DescFields {
  readonly addr: number | bigint;
  readonly len: number;
  readonly flags: number;
  readonly next: number;
}

export class MockQueue extends MockRing {
  readonly descAddr: number;
  readonly availAddr: number;
  readonly usedAddr: number;
  /** avail.idx as the mock last published it. */
  availIdx = 0;
  private lastUsed = 0;
  private readonly free: number[];
  /** Per head: the descriptor ids the chain took (freed by readUsed), for chains built by addChain. */
  private readonly chains = new Map<number, { ids: number[]; inFlight: boolean }>();

  constructor(options: MockQueueOptions) {
    super(options);
    if (options.legacyLayout) {
      const align = SPLIT_RING.legacyAlign;
      this.descAddr = this.placeRing(legacyRingSize(this.size, align), align);
      this.availAddr = this.descAddr + descTableSize(this.size);
      this.usedAddr = this.descAddr + legacyUsedOffset(this.size, align);
    } else {
      const align = SPLIT_RING.areaAlign;
      this.descAddr = this.placeRing(descTableSize(this.size), align.desc);
      this.availAddr = this.placeRing(availRingSize(this.size), align.driver);
      this.usedAddr = this.placeRing(usedRingSize(this.size), align.device);
    }
    this.free = this.shuffle(Array.from({ length: this.size }, (_, i) => i));
  }

  /**
   * The device side over this ring, built as the transport builds it when the queue is enabled
   * (with EVENT_IDX and INDIRECT_DESC as asked, without VIRTIO_F_RING_PACKED): a SplitQueue.
   */
  deviceQueue(options: DeviceQueueFeatures = {}): SplitQueue {
    const queue = this.seam(options, 0n);
    if (!(queue instanceof SplitQueue)) throw new Error('mock queue: the seam built a ring of another format');
    return queue;
  }

  protected seam(options: DeviceQueueFeatures, extra: bigint): DeviceQueue {
    const features = extra | (options.eventIdx ? bit(VIRTIO_F_EVENT_IDX) : 0n) | (options.indirect ? bit(VIRTIO_F_INDIRECT_DESC) : 0n);
    const areas = { desc: this.descAddr, driver: this.availAddr, device: this.usedAddr };
    return deviceRing({ index: options.index ?? 0, size: this.size, memory: this.memory, areas, features });
  }

  get numFree(): number {
    return this.free.length;
  }

  addChain(spec: ChainSpec): number {
    const buffers = this.placeBuffers(spec);
    let ids: number[];
    if (spec.indirect) {
      const table = this.alloc(buffers.length * VIRTQ_DESC_SIZE, SPLIT_RING.areaAlign.desc);
      // Entry 0 comes first (2.7.5.3); the rest are chained in shuffled table order.
      const order = [0, ...this.shuffle(Array.from({ length: buffers.length - 1 }, (_, i) => i + 1))];
      this.writeChain(table, order, buffers);
      ids = this.take(1);
      this.setDesc(ids[0]!, { addr: table, len: buffers.length * VIRTQ_DESC_SIZE, flags: VIRTQ_DESC_F_INDIRECT, next: 0 });
    } else {
      ids = this.take(buffers.length);
      this.writeChain(this.descAddr, ids, buffers);
    }
    const head = ids[0]!;
    this.chains.set(head, { ids, inFlight: true });
    this.recordBuffers(head, buffers);
    this.pushAvail(head);
    return head;
  }

  readUsed(): UsedElem[] {
    const out: UsedElem[] = [];
    const idx = this.usedIdx;
    for (; this.lastUsed !== idx; this.lastUsed = (this.lastUsed + 1) & 0xffff) {
      const { id, len } = this.usedElem(this.lastUsed);
      out.push({ id, len });
      this.freeChain(id);
    }
    return out;
  }

  /** With IN_ORDER (2.7.9) a batch's chains are those the avail ring holds from the oldest not yet used. */
  readUsedBatches(): UsedBatch[] {
    const out: UsedBatch[] = [];
    const idx = this.usedIdx;
    while (this.lastUsed !== idx) {
      const { id, len } = this.usedElem(this.lastUsed);
      const left = (idx - this.lastUsed) & 0xffff;
      let batch = 1;
      while (batch <= left && this.availHead(this.lastUsed + batch - 1) !== id) batch++;
      if (batch > left) throw new Error(`mock queue: used element ${this.lastUsed} names ${id}, not within the ${left} chains used`);
      for (let k = 0; k < batch; k++) this.freeChain(this.availHead(this.lastUsed + k));
      out.push({ id, len, batch });
      this.lastUsed = (this.lastUsed + batch) & 0xffff;
    }
    return out;
  }

  /** The used element at free-running used index `i`. */
  private usedElem(i: number): UsedElem {
    const elem = this.usedAddr + VIRTQ_USED_RING + (i % this.size) * VIRTQ_USED_ELEM_SIZE;
    return { id: this.memory.read32(elem), len: this.memory.read32(elem + 4) };
  }

  /** The head the avail ring holds for free-running avail index `i`. */
  private availHead(i: number): number {
    return this.memory.read16(this.availAddr + VIRTQ_AVAIL_RING + ((i & 0xffff) % this.size) * VIRTQ_AVAIL_ELEM_SIZE);
  }

  private freeChain(head: number): void {
    const chain = this.chains.get(head);
    if (chain?.inFlight) {
      this.free.push(...chain.ids);
      chain.inFlight = false;
    }
  }

  // Raw pokes for hostile rings.

  /** Write descriptor `index` of the descriptor table. */
  setDesc(index: number, desc: DescFields): void {
    this.writeDesc(this.descAddr, index, desc);
  }

  /** Write descriptor `index` of any table (e.g. an indirect one at `table`). */
  writeDesc(table: number, index: number, desc: DescFields): void {
    const at = table + index * VIRTQ_DESC_SIZE;
    this.writeAddr64(at + VIRTQ_DESC_ADDR, desc.addr);
    this.memory.write32(at + VIRTQ_DESC_LEN, desc.len);
    this.memory.write16(at + VIRTQ_DESC_FLAGS, desc.flags);
    this.memory.write16(at + VIRTQ_DESC_NEXT, desc.next);
  }

  /** Put `head` in the next avail ring slot and publish avail.idx. */
  pushAvail(head: number): void {
    this.setAvailRing(this.availIdx % this.size, head);
    this.setAvailIdx((this.availIdx + 1) & 0xffff);
  }

  setAvailRing(slot: number, head: number): void {
    this.memory.write16(this.availAddr + VIRTQ_AVAIL_RING + slot * VIRTQ_AVAIL_ELEM_SIZE, head);
  }

  setAvailIdx(idx: number): void {
    this.availIdx = idx & 0xffff;
    this.memory.write16(this.availAddr + VIRTQ_AVAIL_IDX, this.availIdx);
  }

  /** avail.flags (VIRTQ_AVAIL_F_NO_INTERRUPT). */
  setAvailFlags(flags: number): void {
    this.memory.write16(this.availAddr + VIRTQ_AVAIL_FLAGS, flags);
  }

  /** used_event, after the avail ring (VIRTIO_F_EVENT_IDX). */
  setUsedEvent(value: number): void {
    this.memory.write16(this.availAddr + VIRTQ_AVAIL_RING + this.size * VIRTQ_AVAIL_ELEM_SIZE, value);
  }

  get usedIdx(): number {
    return this.memory.read16(this.usedAddr + VIRTQ_USED_IDX);
  }

  /** used.flags (VIRTQ_USED_F_NO_NOTIFY). */
  get usedFlags(): number {
    return this.memory.read16(this.usedAddr + VIRTQ_USED_FLAGS);
  }

  /** avail_event, after the used ring (VIRTIO_F_EVENT_IDX). */
  get availEvent(): number {
    return this.memory.read16(this.usedAddr + VIRTQ_USED_RING + this.size * VIRTQ_USED_ELEM_SIZE);
  }

  private writeChain(table: number, ids: readonly number[], buffers: readonly PlacedBuffer[]): void {
    buffers.forEach((b, i) => {
      const last = i === buffers.length - 1;
      this.writeDesc(table, ids[i]!, {
        addr: b.addr,
        len: b.len,
        flags: (b.writable ? VIRTQ_DESC_F_WRITE : 0) | (last ? 0 : VIRTQ_DESC_F_NEXT),
        next: last ? 0 : ids[i + 1]!,
      });
    });
  }

  private take(n: number): number[] {
    if (n > this.free.length) throw new Error(`mock queue: ${n} descriptors wanted, ${this.free.length} free`);
    return this.free.splice(0, n);
  }
}
