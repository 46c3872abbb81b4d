/**
 * What a driver ring remembers of each chain in flight, the same for both formats: the ring
 * descriptors it holds, its token, its spans (readable ones flushed at publish, writable ones
 * refreshed at reap), its writable bytes (the bound on the device's used len), its indirect table,
 * and whether it is published yet. Indexed by the split ring's head id or the packed ring's buffer
 * id; kept in the driver, never read back from memory the device could change.
 */

import type { DmaBuffer, DmaSpan } from '../memory/dma.js';
import type { RingDma } from './ring-dma.js';

const U32_MAX = 0xffff_ffff;

export class InFlightChains<T> {
  /** Per id: ring descriptors the chain holds (1 for an indirect chain), 0 when not in flight. */
  readonly descriptors: Uint16Array;
  /** Per id: the chain's device-writable bytes. */
  readonly writable: Float64Array;
  /** Chains recorded and not yet forgotten. */
  count = 0;
  private readonly tokens: (T | undefined)[];
  private readonly outSpans: (readonly DmaSpan[] | undefined)[];
  private readonly inSpans: (readonly DmaSpan[] | undefined)[];
  private readonly tables: (DmaBuffer | undefined)[];
  /** Ids recorded since the last publish. */
  private readonly pending: Uint16Array;
  private pendingCount = 0;
  /** 1 for a chain recorded but not yet published: the device cannot have seen it, so it cannot be used. */
  private readonly unpublished: Uint8Array;
  /** checkUsed(): `usedMark[id] === usedPass` when id was already named in this pass. */
  private readonly usedMark: Uint32Array;
  private usedPass = 0;

  constructor(private readonly size: number) {
    this.descriptors = new Uint16Array(size);
    this.writable = new Float64Array(size);
    this.tokens = new Array<T | undefined>(size).fill(undefined);
    this.outSpans = new Array<readonly DmaSpan[] | undefined>(size).fill(undefined);
    this.inSpans = new Array<readonly DmaSpan[] | undefined>(size).fill(undefined);
    this.tables = new Array<DmaBuffer | undefined>(size).fill(undefined);
    this.pending = new Uint16Array(size);
    this.unpublished = new Uint8Array(size);
    this.usedMark = new Uint32Array(size);
  }

  /** Remember chain `id`, unpublished, holding `descriptors` ring descriptors; `table` is its indirect table, if it has one. */
  record(
    id: number,
    descriptors: number,
    out: readonly DmaSpan[],
    inn: readonly DmaSpan[],
    writable: number,
    token: T,
    table: DmaBuffer | undefined,
  ): void {
    this.descriptors[id] = descriptors;
    this.writable[id] = writable;
    this.tokens[id] = token;
    this.outSpans[id] = out;
    this.inSpans[id] = inn;
    this.tables[id] = table;
    this.count++;
    this.pending[this.pendingCount++] = id;
    this.unpublished[id] = 1;
  }

  token(id: number): T {
    return this.tokens[id]!;
  }

  /** Issue the flush of the readable buffers and indirect tables of the chains recorded since the last publish. */
  flushPending(dma: RingDma): void {
    for (let p = 0; p < this.pendingCount; p++) {
      const id = this.pending[p]!;
      dma.flushSpans(this.outSpans[id]!);
      const table = this.tables[id];
      if (table !== undefined) dma.flush(table.addr, table.bytes.byteLength);
    }
  }

  /** Mark the chains recorded since the last publish as published: from now on the device may use them. */
  publishPending(): void {
    for (let p = 0; p < this.pendingCount; p++) this.unpublished[this.pending[p]!] = 0;
    this.pendingCount = 0;
  }

  /** Start a reap's check of the used ids: an id may be named once in it. */
  beginUsedPass(): void {
    if (++this.usedPass > U32_MAX) {
      this.usedMark.fill(0); // marks wrap: forget those of 2^32 passes ago
      this.usedPass = 1;
    }
  }

  /**
   * Check a used id and len the device returned in this pass: ERR_DEVICE_USED_ID unless `id` names a
   * published chain in flight not named before in the pass, ERR_DEVICE_USED_LEN when `len` is beyond
   * its writable bytes; undefined (and the id marked named) when both hold.
   */
  checkUsed(id: number, len: number): 'ERR_DEVICE_USED_ID' | 'ERR_DEVICE_USED_LEN' | undefined {
    if (id >= this.size || this.descriptors[id] === 0 || this.unpublished[id] === 1 || this.usedMark[id] === this.usedPass)
      return 'ERR_DEVICE_USED_ID';
    if (len > this.writable[id]!) return 'ERR_DEVICE_USED_LEN';
    this.usedMark[id] = this.usedPass;
    return undefined;
  }

  /** Issue the refresh of the first `len` writable bytes of chain `id` (the device wrote them). */
  refreshIn(dma: RingDma, id: number, len: number): void {
    dma.refreshPrefix(this.inSpans[id]!, len);
  }

  /** Forget chain `id`: free its indirect table and drop its references. */
  forget(dma: RingDma, id: number): void {
    const table = this.tables[id];
    if (table !== undefined) dma.memory.free(table);
    this.descriptors[id] = 0;
    this.unpublished[id] = 0;
    this.tables[id] = undefined;
    this.tokens[id] = undefined;
    this.outSpans[id] = undefined;
    this.inSpans[id] = undefined;
    this.count--;
  }

  /** After a device reset: forget every chain in flight, calling `release` for each first, and return their tokens. */
  detach(release: (id: number) => void): T[] {
    const tokens: T[] = [];
    for (let id = 0; id < this.size; id++) {
      if (this.descriptors[id] === 0) continue;
      tokens.push(this.tokens[id]!);
      release(id);
    }
    this.pendingCount = 0;
    return tokens;
  }
}
