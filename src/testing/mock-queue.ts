/**
 * A split virtqueue built in guest memory by name, after rust-vmm's mock queue: tests, benches and
 * fuzz targets play the driver with `addChain()` and read results with `readUsed()`, and forge
 * hostile rings with the raw pokes (`setDesc`, `setAvailIdx`, ...), never with hand-made offsets.
 * The device side comes from the same seam the transport uses (queue/rings.ts), and the areas are
 * placed by the split format's rules (queue/ring-format.ts).
 *
 * Rings and buffers are placed at seeded random gaps and descriptors are taken in shuffled order,
 * so a device that assumes contiguous buffers or sequential descriptor ids fails here. Buffers are
 * allocated round-robin through the data area: keep the data in flight smaller than the area.
 */

import { ArrayGuestMemory, splitU64, type GuestMemory } from '../memory/guest-memory.js';
import { SPLIT_RING } from '../queue/ring-format.js';
import { InOrderQueue } from '../queue/in-order-queue.js';
import { deviceRing } from '../queue/rings.js';
import { SplitQueue } from '../queue/split/device-ring.js';
import { VIRTIO_F_EVENT_IDX, VIRTIO_F_IN_ORDER, VIRTIO_F_INDIRECT_DESC, bit } from '../spec/features.js';
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
  usedRingSize,
} from '../spec/ring.js';

/** A buffer in guest memory. */
export interface Span {
  readonly addr: number;
  readonly len: number;
}

/** Fields of a struct virtq_desc; `addr` as a bigint reaches all 64 bits (for wrap tests). */
export interface DescFields {
  readonly addr: number | bigint;
  readonly len: number;
  readonly flags: number;
  readonly next: number;
}

export interface ChainSpec {
  /** Contents of the device-readable buffers, in order. */
  readonly readable?: readonly Uint8Array[];
  /** Lengths of the device-writable buffers, in order (their bytes start as 0xee). */
  readonly writable?: readonly number[];
  /** Put the buffers in an indirect table referred to by one descriptor. */
  readonly indirect?: boolean;
}

export interface UsedElem {
  readonly id: number;
  readonly len: number;
}

/** A used element read with VIRTIO_F_IN_ORDER: it stands for `batch` chains, itself the last (2.7.9). */
export interface UsedBatch extends UsedElem {
  readonly batch: number;
}

/** The options of {@link MockQueue.deviceQueue}: the ring features the device side was built with. */
export interface MockDeviceQueueOptions {
  readonly index?: number;
  readonly eventIdx?: boolean;
  readonly indirect?: boolean;
}

export interface MockQueueOptions {
  readonly size: number;
  /** Guest memory to build in; default a fresh ArrayGuestMemory of `memSize` bytes at `base`. */
  readonly memory?: GuestMemory;
  /** Bytes of the default memory (default 1 MiB). */
  readonly memSize?: number;
  /** First guest address the mock may use (default 0); e.g. 2^32 to test addresses above 4 GiB. */
  readonly base?: number;
  /** Seed of the placement randomness (default 1). */
  readonly seed?: number;
  /** Largest random gap between placed areas, in bytes (default 64). */
  readonly maxGap?: number;
}

/** Written into device-writable buffers so that a test sees which bytes the device wrote. */
export const WRITABLE_FILL = 0xee;

export class MockQueue {
  readonly memory: GuestMemory;
  readonly size: number;
  readonly descAddr: number;
  readonly availAddr: number;
  readonly usedAddr: number;
  /** avail.idx as the mock last published it. */
  availIdx = 0;
  private lastUsed = 0;
  private readonly limit: number;
  private readonly dataStart: number;
  private cursor: number;
  private readonly maxGap: number;
  private rngState: number;
  private readonly free: number[];
  /**
   * Per head: the descriptor ids the chain took (freed by readUsed) and its buffers (readable
   * until the head is reused), for chains built by addChain.
   */
  private readonly chains = new Map<number, { ids: number[]; inFlight: boolean; readable: Span[]; writable: Span[] }>();

  constructor(options: MockQueueOptions) {
    this.size = options.size;
    const base = options.base ?? 0;
    this.memory = options.memory ?? new ArrayGuestMemory(options.memSize ?? 1 << 20, base);
    this.limit = this.memory.end;
    this.maxGap = options.maxGap ?? 64;
    this.rngState = options.seed ?? 1;
    this.cursor = base;
    const ring = (len: number, align: number): number => {
      const at = this.place(len, align);
      if (at < 0) throw new Error(`mock queue: a ring of ${len} bytes does not fit in guest memory`);
      return at;
    };
    const align = SPLIT_RING.areaAlign;
    this.descAddr = ring(descTableSize(this.size), align.desc);
    this.availAddr = ring(availRingSize(this.size), align.driver);
    this.usedAddr = ring(usedRingSize(this.size), align.device);
    this.dataStart = this.cursor;
    this.free = this.shuffle(Array.from({ length: this.size }, (_, i) => i));
  }

  /**
   * The device side over this ring, built as the transport builds it when the queue is enabled
   * (with EVENT_IDX and INDIRECT_DESC as asked): a SplitQueue, since no other format is negotiated.
   */
  deviceQueue(options: MockDeviceQueueOptions = {}): SplitQueue {
    const queue = this.seam(options, 0n);
    if (!(queue instanceof SplitQueue)) throw new Error('mock queue: the seam built a ring of another format');
    return queue;
  }

  /** The device side as the transport builds it with VIRTIO_F_IN_ORDER negotiated: the in-order layer over the ring. */
  inOrderQueue(options: MockDeviceQueueOptions = {}): InOrderQueue {
    const queue = this.seam(options, bit(VIRTIO_F_IN_ORDER));
    if (!(queue instanceof InOrderQueue)) throw new Error('mock queue: the seam built no in-order queue for VIRTIO_F_IN_ORDER');
    return queue;
  }

  private seam(options: MockDeviceQueueOptions, features: bigint): ReturnType<typeof deviceRing> {
    features |= (options.eventIdx ? bit(VIRTIO_F_EVENT_IDX) : 0n) | (options.indirect ? bit(VIRTIO_F_INDIRECT_DESC) : 0n);
    const areas = { desc: this.descAddr, driver: this.availAddr, device: this.usedAddr };
    return deviceRing({ index: options.index ?? 0, size: this.size, memory: this.memory, areas, features });
  }

  /** Free descriptors left for addChain. */
  get numFree(): number {
    return this.free.length;
  }

  /**
   * Build a chain from free descriptors (or one descriptor and an indirect table), scatter its
   * buffers, make it available and return its head id.
   */
  addChain(spec: ChainSpec): number {
    const readable = (spec.readable ?? []).map((bytes) => {
      const addr = this.alloc(bytes.byteLength);
      this.memory.write(addr, bytes);
      return { addr, len: bytes.byteLength };
    });
    const writable = (spec.writable ?? []).map((len) => {
      const addr = this.alloc(len);
      this.memory.write(addr, new Uint8Array(len).fill(WRITABLE_FILL));
      return { addr, len };
    });
    const buffers = [...readable.map((s) => ({ ...s, flags: 0 })), ...writable.map((s) => ({ ...s, flags: VIRTQ_DESC_F_WRITE }))];
    if (buffers.length === 0) throw new Error('mock queue: a chain needs at least one buffer');
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
    this.chains.set(head, { ids, inFlight: true, readable, writable });
    this.pushAvail(head);
    return head;
  }

  /** The buffers of a chain built by addChain (until its head is used for another chain). */
  buffers(head: number): { readable: readonly Span[]; writable: readonly Span[] } {
    const chain = this.chains.get(head);
    if (!chain) throw new Error(`mock queue: no chain ${head}`);
    return chain;
  }

  /** The first `len` bytes of the chain's writable buffers, concatenated. */
  readWritten(head: number, len: number): Uint8Array {
    const out = new Uint8Array(len);
    let done = 0;
    for (const span of this.buffers(head).writable) {
      const n = Math.min(span.len, len - done);
      out.set(this.memory.view(span.addr, n), done);
      done += n;
    }
    if (done < len) throw new Error(`mock queue: chain ${head} has fewer than ${len} writable bytes`);
    return out;
  }

  /** Used elements the device added since the last call; their chains' descriptors become free. */
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

  /**
   * Used elements as a driver that negotiated VIRTIO_F_IN_ORDER reads them (2.7.9): each names the
   * last chain of a batch that starts at the oldest chain not yet used, found in the avail ring, and
   * used.idx moved past the whole batch. Every chain of a batch becomes free. Throws when an element
   * names a chain its batch cannot reach (the device broke the order).
   */
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

  /** Bytes at a random gap after the previous allocation, wrapping round the data area. */
  alloc(len: number, align = 1): number {
    const at = this.place(len, align);
    if (at >= 0) return at;
    this.cursor = this.dataStart;
    const again = this.place(len, align);
    if (again < 0) throw new Error(`mock queue: ${len} bytes do not fit in guest memory`);
    return again;
  }

  // Raw pokes for hostile rings.

  /** Write descriptor `index` of the descriptor table. */
  setDesc(index: number, desc: DescFields): void {
    this.writeDesc(this.descAddr, index, desc);
  }

  /** Write descriptor `index` of any table (e.g. an indirect one at `table`). */
  writeDesc(table: number, index: number, desc: DescFields): void {
    const at = table + index * VIRTQ_DESC_SIZE;
    const [lo, hi] =
      typeof desc.addr === 'bigint' ? [Number(desc.addr & 0xffff_ffffn), Number((desc.addr >> 32n) & 0xffff_ffffn)] : splitU64(desc.addr);
    this.memory.write32(at + VIRTQ_DESC_ADDR, lo);
    this.memory.write32(at + VIRTQ_DESC_ADDR + 4, hi);
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

  private writeChain(table: number, ids: readonly number[], buffers: readonly { addr: number; len: number; flags: number }[]): void {
    buffers.forEach((b, i) => {
      const last = i === buffers.length - 1;
      this.writeDesc(table, ids[i]!, {
        addr: b.addr,
        len: b.len,
        flags: b.flags | (last ? 0 : VIRTQ_DESC_F_NEXT),
        next: last ? 0 : ids[i + 1]!,
      });
    });
  }

  private take(n: number): number[] {
    if (n > this.free.length) throw new Error(`mock queue: ${n} descriptors wanted, ${this.free.length} free`);
    return this.free.splice(0, n);
  }

  /** Address of `len` bytes aligned to `align` after a random gap, or -1 when memory ends first. */
  private place(len: number, align: number): number {
    const gap = this.random() % (this.maxGap + 1);
    const at = Math.ceil((this.cursor + gap) / align) * align;
    if (at + len > this.limit) return -1;
    this.cursor = at + len;
    return at;
  }

  private shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.random() % (i + 1);
      [items[i], items[j]] = [items[j]!, items[i]!];
    }
    return items;
  }

  /** mulberry32: small, seeded, good enough for placement. */
  private random(): number {
    this.rngState = (this.rngState + 0x6d2b79f5) | 0;
    let t = this.rngState;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }
}
