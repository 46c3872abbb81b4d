/**
 * What the mock queues of both ring formats share (MockQueue for the split ring, MockPackedQueue for
 * the packed ring): guest memory, seeded placement of rings and buffers, the buffers of each chain
 * built by name, and the driver's operations a device-model test needs (`addChain`, `readUsed`,
 * `readWritten`, `deviceQueue`), so that such a test runs on either format unchanged.
 *
 * Rings and buffers are placed at seeded random gaps and descriptors are taken in shuffled order,
 * so a device that assumes contiguous buffers or sequential ids fails here. Buffers are allocated
 * round-robin through the data area: keep the data in flight smaller than the area.
 */

import { ArrayGuestMemory, splitU64, type GuestMemory } from '../memory/guest-memory.js';
import { InOrderQueue } from '../queue/in-order-queue.js';
import type { DeviceQueue } from '../queue/types.js';
import { VIRTIO_F_IN_ORDER, bit } from '../spec/features.js';

/** A buffer in guest memory. */
export interface Span {
  readonly addr: number;
  readonly len: number;
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

/** A used element read with VIRTIO_F_IN_ORDER: it stands for `batch` chains, itself the last (2.7.9, 2.8.8). */
export interface UsedBatch extends UsedElem {
  readonly batch: number;
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
  /**
   * Split ring only: lay the areas out as the legacy interface does (2.7.2), one area at a 4096
   * boundary: descriptor table, available ring, the used ring at the next 4096 boundary.
   */
  readonly legacyLayout?: boolean;
}

/** The features a device queue is built with, as the transport would negotiate them. */
export interface DeviceQueueFeatures {
  readonly index?: number;
  readonly eventIdx?: boolean;
  readonly indirect?: boolean;
}

/** Written into device-writable buffers so that a test sees which bytes the device wrote. */
export const WRITABLE_FILL = 0xee;

/** A buffer of a chain with the WRITE flag its descriptor gets. */
export interface PlacedBuffer extends Span {
  readonly writable: boolean;
}

export abstract class MockRing {
  readonly memory: GuestMemory;
  readonly size: number;
  private readonly limit: number;
  private dataStart: number;
  private cursor: number;
  private readonly maxGap: number;
  private rngState: number;
  /** Per chain id: its buffers (readable until the id is reused), for chains built by addChain. */
  private readonly placed = new Map<number, { readable: Span[]; writable: Span[] }>();

  protected constructor(options: MockQueueOptions) {
    this.size = options.size;
    const base = options.base ?? 0;
    this.memory = options.memory ?? new ArrayGuestMemory(options.memSize ?? 1 << 20, base);
    this.limit = this.memory.end;
    this.maxGap = options.maxGap ?? 64;
    this.rngState = options.seed ?? 1;
    this.cursor = base;
    this.dataStart = base;
  }

  /** The device side over this ring, built through the seam the transport uses (queue/rings.ts). */
  abstract deviceQueue(options?: DeviceQueueFeatures): DeviceQueue;

  /** The device side as the transport builds it with VIRTIO_F_IN_ORDER negotiated: the in-order layer over the ring. */
  inOrderQueue(options: DeviceQueueFeatures = {}): InOrderQueue {
    const queue = this.seam(options, bit(VIRTIO_F_IN_ORDER));
    if (!(queue instanceof InOrderQueue)) throw new Error('mock queue: the seam built no in-order queue for VIRTIO_F_IN_ORDER');
    return queue;
  }

  /** The device side built through the seam with the ring's own features, those `options` ask for, and `extra`. */
  protected abstract seam(options: DeviceQueueFeatures, extra: bigint): DeviceQueue;

  /**
   * Used elements as a driver that negotiated VIRTIO_F_IN_ORDER reads them (2.7.9, 2.8.8): each names
   * the last chain of a batch that starts at the oldest chain in flight, and the ring moved past the
   * whole batch. Every chain of a batch becomes free. Throws when an element names a chain its batch
   * cannot reach (the device broke the order).
   */
  abstract readUsedBatches(): UsedBatch[];
  /** Free descriptors left for addChain. */
  abstract get numFree(): number;
  /**
   * Build a chain from free descriptors (or one descriptor and an indirect table), scatter its
   * buffers, make it available and return its id (the split ring's head, the packed ring's buffer id).
   */
  abstract addChain(spec: ChainSpec): number;
  /** Used elements the device returned since the last call; their chains' descriptors become free. */
  abstract readUsed(): UsedElem[];

  /** The buffers of a chain built by addChain (until its id is used for another chain). */
  buffers(id: number): { readable: readonly Span[]; writable: readonly Span[] } {
    const chain = this.placed.get(id);
    if (!chain) throw new Error(`mock queue: no chain ${id}`);
    return chain;
  }

  /** The first `len` bytes of the chain's writable buffers, concatenated. */
  readWritten(id: number, len: number): Uint8Array {
    const out = new Uint8Array(len);
    let done = 0;
    for (const span of this.buffers(id).writable) {
      const n = Math.min(span.len, len - done);
      out.set(this.memory.view(span.addr, n), done);
      done += n;
    }
    if (done < len) throw new Error(`mock queue: chain ${id} has fewer than ${len} writable bytes`);
    return out;
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

  /** Place a ring area; the constructor of a subclass places its areas before any buffer. */
  protected placeRing(len: number, align: number): number {
    const at = this.place(len, align);
    if (at < 0) throw new Error(`mock queue: a ring of ${len} bytes does not fit in guest memory`);
    this.dataStart = this.cursor;
    return at;
  }

  /** Scatter the buffers of `spec` (readable ones filled with their bytes, writable ones with WRITABLE_FILL). */
  protected placeBuffers(spec: ChainSpec): PlacedBuffer[] {
    const readable = (spec.readable ?? []).map((bytes) => {
      const addr = this.alloc(bytes.byteLength);
      this.memory.write(addr, bytes);
      return { addr, len: bytes.byteLength, writable: false };
    });
    const writable = (spec.writable ?? []).map((len) => {
      const addr = this.alloc(len);
      this.memory.write(addr, new Uint8Array(len).fill(WRITABLE_FILL));
      return { addr, len, writable: true };
    });
    if (readable.length + writable.length === 0) throw new Error('mock queue: a chain needs at least one buffer');
    return [...readable, ...writable];
  }

  /** Remember the buffers of chain `id` for buffers() and readWritten(). */
  protected recordBuffers(id: number, buffers: readonly PlacedBuffer[]): void {
    const span = (b: PlacedBuffer): Span => ({ addr: b.addr, len: b.len });
    this.placed.set(id, { readable: buffers.filter((b) => !b.writable).map(span), writable: buffers.filter((b) => b.writable).map(span) });
  }

  /** Write a descriptor's 64-bit address at `at`: a number below 2^53, or a bigint for any value (hostile rings). */
  protected writeAddr64(at: number, addr: number | bigint): void {
    const [lo, hi] = typeof addr === 'bigint' ? [Number(addr & 0xffff_ffffn), Number((addr >> 32n) & 0xffff_ffffn)] : splitU64(addr);
    this.memory.write32(at, lo);
    this.memory.write32(at + 4, hi);
  }

  protected shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.random() % (i + 1);
      [items[i], items[j]] = [items[j]!, items[i]!];
    }
    return items;
  }

  /** mulberry32: small, seeded, good enough for placement. */
  protected random(): number {
    this.rngState = (this.rngState + 0x6d2b79f5) | 0;
    let t = this.rngState;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** Address of `len` bytes aligned to `align` after a random gap, or -1 when memory ends first. */
  private place(len: number, align: number): number {
    const gap = this.random() % (this.maxGap + 1);
    const at = Math.ceil((this.cursor + gap) / align) * align;
    if (at + len > this.limit) return -1;
    this.cursor = at + len;
    return at;
  }
}
