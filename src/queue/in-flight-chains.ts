/**
 * What a driver ring remembers of each chain in flight, the same for both formats: its token, its
 * spans (readable ones flushed at publish, writable ones refreshed at reap), its writable bytes (the
 * bound on the device's used len) and its indirect table. Indexed by the split ring's head id or the
 * packed ring's buffer id; kept in the driver, never read back from memory the device could change.
 */

import type { DmaBuffer, DmaSpan } from '../memory/dma.js';
import type { RingDma } from './ring-dma.js';

export class InFlightChains<T> {
  /** Per id: the chain's device-writable bytes. */
  readonly writable: Float64Array;
  private readonly tokens: (T | undefined)[];
  private readonly outSpans: (readonly DmaSpan[] | undefined)[];
  private readonly inSpans: (readonly DmaSpan[] | undefined)[];
  private readonly tables: (DmaBuffer | undefined)[];

  constructor(size: number) {
    this.writable = new Float64Array(size);
    this.tokens = new Array<T | undefined>(size).fill(undefined);
    this.outSpans = new Array<readonly DmaSpan[] | undefined>(size).fill(undefined);
    this.inSpans = new Array<readonly DmaSpan[] | undefined>(size).fill(undefined);
    this.tables = new Array<DmaBuffer | undefined>(size).fill(undefined);
  }

  /** Remember chain `id`; `table` is its indirect table, if it has one. */
  record(id: number, out: readonly DmaSpan[], inn: readonly DmaSpan[], writable: number, token: T, table: DmaBuffer | undefined): void {
    this.writable[id] = writable;
    this.tokens[id] = token;
    this.outSpans[id] = out;
    this.inSpans[id] = inn;
    this.tables[id] = table;
  }

  token(id: number): T {
    return this.tokens[id]!;
  }

  /** Issue the flush of chain `id`'s readable buffers and indirect table (before the device may see it). */
  flushOut(dma: RingDma, id: number): void {
    dma.flushSpans(this.outSpans[id]!);
    const table = this.tables[id];
    if (table !== undefined) dma.flush(table.addr, table.bytes.byteLength);
  }

  /** Issue the refresh of the first `len` writable bytes of chain `id` (the device wrote them). */
  refreshIn(dma: RingDma, id: number, len: number): void {
    dma.refreshPrefix(this.inSpans[id]!, len);
  }

  /** Forget chain `id`: free its indirect table and drop its references. */
  forget(dma: RingDma, id: number): void {
    const table = this.tables[id];
    if (table !== undefined) dma.memory.free(table);
    this.tables[id] = undefined;
    this.tokens[id] = undefined;
    this.outSpans[id] = undefined;
    this.inSpans[id] = undefined;
  }
}
