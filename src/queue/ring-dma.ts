/**
 * A driver-side ring's memory over DmaMemory, apart from any ring format: it allocates the ring
 * areas (zeroed: the driver initialises the rings, 2.7.10), and over a non-coherent (remote) bus it
 * carries the flushes that make the driver's writes visible to the device and the refreshes that
 * bring the device's writes into the local image. A ring operation is written once, as a generator
 * that issues flushes and refreshes and yields where its format's ordering rules say they must have
 * completed; {@link RingDma.run} waits at each yield, {@link RingDma.runNow} (coherent DMA: every
 * flush and refresh is skipped) runs it straight through.
 */

import { UsageError } from '../errors.js';
import type { DmaBuffer, DmaMemory, DmaSpan } from '../memory/dma.js';

/** A ring operation: yields at each point where the DMA issued so far must be complete; returns R. */
export type RingOp<R> = Generator<void, R, void>;

export class RingDma {
  /** DmaMemory.coherent: the device sees the local bytes, so no flush or refresh is issued. */
  readonly coherent: boolean;
  private readonly areas: DmaBuffer[] = [];
  /** Flushes and refreshes issued since the last settle point. */
  private issued: Promise<void>[] = [];
  /** The zeroed areas still have to reach the device. */
  private areasDirty = true;
  /** The last operation run(); the next one starts after it. */
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

  /**
   * Run `op` after every earlier operation has finished (they share ring state across waits),
   * waiting at each of its yields for the flushes and refreshes issued before it.
   */
  run<R>(op: () => RingOp<R>): Promise<R> {
    // Coherent DMA: an operation never waits, so running each at once keeps them in call order.
    if (this.coherent) return this.runAsync(op);
    // With none running, start at once: waiting for the settled tail would cost a few microtask turns.
    const result = this.running === 0 ? this.runAsync(op) : this.tail.then(() => this.runAsync(op));
    this.running++;
    const settled = (): void => {
      this.running--;
    };
    this.tail = result.then(settled, settled);
    return result;
  }

  /** Run `op` straight through, at once: coherent DMA only (`name` is the caller, for the UsageError otherwise). */
  runNow<R>(name: string, op: RingOp<R>): R {
    if (!this.coherent) throw new UsageError(`queue ${this.index}: ${name}() needs coherent DMA; use the asynchronous form`);
    let step = op.next();
    while (step.done !== true) step = op.next();
    return step.value;
  }

  /** Return the ring areas to the allocator. */
  destroy(): void {
    for (const buffer of this.areas) this.memory.free(buffer);
  }

  private async runAsync<R>(make: () => RingOp<R>): Promise<R> {
    const op = make();
    let step = op.next();
    while (step.done !== true) {
      const issued = this.issued;
      if (issued.length > 0) {
        this.issued = [];
        await Promise.all(issued);
      }
      step = op.next();
    }
    return step.value;
  }
}
