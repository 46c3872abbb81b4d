/**
 * A driver-side ring's memory over DmaMemory, apart from any ring format: it allocates the ring
 * areas (zeroed: the driver initialises the rings, 2.7.10), and over a non-coherent (remote) bus it
 * carries the flushes that make the driver's writes visible to the device and the refreshes that
 * bring the device's writes into the local image. A ring issues them as it writes and reads, and
 * calls {@link RingDma.settle} where its format's ordering rules say they must have completed. With
 * coherent DMA every flush and refresh is skipped, so a ring may then run its operations at once.
 */

import { UsageError } from '../errors.js';
import type { DmaBuffer, DmaMemory, DmaSpan } from '../memory/dma.js';

/** A part of a ring area: where it is on the bus, and a DataView over its bytes in the local image. */
export interface RingPart {
  readonly addr: number;
  readonly dv: DataView;
}

/** The `len` bytes of `buffer` from `offset` (all of it by default) as a {@link RingPart}. */
export function ringPart(buffer: DmaBuffer, offset = 0, len = buffer.bytes.byteLength - offset): RingPart {
  return { addr: buffer.addr + offset, dv: new DataView(buffer.bytes.buffer, buffer.bytes.byteOffset + offset, len) };
}

/**
 * The runs of `count` ring entries from entry `first` (below `size`) as `each(first, count)`: one
 * run, or two when they wrap past the ring's end. For a flush or refresh of entries just written or
 * about to be read.
 */
export function ringRuns(size: number, first: number, count: number, each: (first: number, count: number) => void): void {
  if (count === 0) return;
  const head = Math.min(count, size - first);
  each(first, head);
  if (count > head) each(0, count - head);
}

export class RingDma {
  /** DmaMemory.coherent: the device sees the local bytes, so no flush or refresh is issued. */
  readonly coherent: boolean;
  private readonly areas: DmaBuffer[] = [];
  /** Flushes and refreshes issued since the last settle point. */
  private issued: Promise<void>[] = [];
  /** The zeroed areas still have to reach the device. */
  private areasDirty = true;
  /** The last operation serial() started; the next one starts after it. */
  private tail: Promise<unknown> = Promise.resolve();
  /** Operations started and not yet settled. */
  private running = 0;

  constructor(
    readonly memory: DmaMemory,
    /** Queue index, for messages. */
    private readonly index: number,
  ) {
    this.coherent = memory.coherent === true;
  }

  /** Allocate a ring area, zeroed; freed by {@link destroy}. */
  area(size: number, align: number): DmaBuffer {
    const buffer = this.memory.alloc(size, align);
    buffer.bytes.fill(0);
    this.areas.push(buffer);
    return buffer;
  }

  /** Zero every ring area again (after a device reset); the next {@link flushAreas} sends them. */
  zeroAreas(): void {
    for (const buffer of this.areas) buffer.bytes.fill(0);
    this.areasDirty = true;
  }

  /** Issue the flush of the zeroed areas, once after each zeroing. */
  flushAreas(): void {
    if (!this.areasDirty) return;
    this.areasDirty = false;
    for (const buffer of this.areas) this.flush(buffer.addr, buffer.bytes.byteLength);
  }

  /** Issue a flush of [addr, addr + len) (nothing with coherent DMA). */
  flush(addr: number, len: number): void {
    if (!this.coherent) this.issued.push(this.memory.flush(addr, len));
  }

  /** Issue a refresh of [addr, addr + len) (nothing with coherent DMA). */
  refresh(addr: number, len: number): void {
    if (!this.coherent) this.issued.push(this.memory.refresh(addr, len));
  }

  /** Issue the flush of every non-empty span. */
  flushSpans(spans: readonly DmaSpan[]): void {
    if (this.coherent) return;
    for (const span of spans) if (span.len > 0) this.flush(span.addr, span.len);
  }

  /** Issue the refresh of the first `len` bytes of `spans` (what the device wrote into a chain). */
  refreshPrefix(spans: readonly DmaSpan[], len: number): void {
    if (this.coherent) return;
    let left = len;
    for (const span of spans) {
      if (left === 0) break;
      const m = Math.min(left, span.len);
      if (m > 0) this.refresh(span.addr, m);
      left -= m;
    }
  }

  /** Wait for every flush and refresh issued since the last call. */
  async settle(): Promise<void> {
    const issued = this.issued;
    this.issued = [];
    await Promise.all(issued);
  }

  /** Run `op` after every earlier serial() operation has finished: they share ring state across waits. */
  serial<R>(op: () => Promise<R>): Promise<R> {
    // Coherent DMA: no op waits before it has changed all the state it changes (there is nothing to
    // flush or refresh), so running each at once keeps them in call order.
    if (this.coherent) return op();
    // With none running, start at once: waiting for the settled tail would cost a few microtask turns.
    const result = this.running === 0 ? op() : this.tail.then(op);
    this.running++;
    const settled = (): void => {
      this.running--;
    };
    this.tail = result.then(settled, settled);
    return result;
  }

  /**
   * Resolves once no serial() operation is running. A publish or reap waiting on the bus still
   * writes ring memory when its wait ends, so the ring is destroyed only after this.
   */
  async idle(): Promise<void> {
    await this.tail;
  }

  /** Throw UsageError unless the DMA is coherent: `name` (a synchronous ring operation) needs it. */
  requireCoherent(name: string): void {
    if (!this.coherent) throw new UsageError(`queue ${this.index}: ${name}() needs coherent DMA; use the asynchronous form`);
  }

  /** Return the ring areas to the allocator. */
  destroy(): void {
    for (const buffer of this.areas) this.memory.free(buffer);
  }
}
