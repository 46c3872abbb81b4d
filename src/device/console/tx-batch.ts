/**
 * Guest output of one transmitq gathered for one host write, in a single pass over the chains:
 * each chain's readable bytes are copied into the batch as it is popped, and its head is held until
 * the batch is finished, when every chain goes back to the driver in avail order (refused chains
 * too, with no bytes). Buffers that follow each other in guest memory (as a driver allocating them
 * in sequence leaves them) are copied as one run: one view and one copy instead of one per buffer.
 *
 * The batch is built in place in a large slab, behind the previous batch, and taken as one view:
 * one allocation per slab instead of one per write (a fresh buffer per write cost a quarter of the
 * transmit path with 4 KiB chains). A slice is never handed out twice, so the host may keep it; a
 * slab is freed once every slice of it is dropped.
 *
 * The pass keeps its state in locals: it runs once per chain, where field traffic and calls cost
 * more than the copy itself with small chains.
 */

import { UsageError } from '../../errors.js';
import type { GuestMemory } from '../../memory/guest-memory.js';
import type { DescriptorChain, DeviceQueue } from '../../queue/types.js';

export class TxBatch {
  /** Heads of the chains held, in avail order. */
  private readonly heads: Uint16Array;
  private held = 0;
  /**
   * The batch's bytes so far are slab[start, end); a view of them is made only when the batch is
   * taken. The slab's ArrayBuffer is kept beside it (the slab spans it from offset 0) and its size
   * read through `length`: V8 11 does not inline the byteLength, byteOffset and buffer accessors of
   * typed arrays (several ns each), and reading byteLength once per chain cost more than the copy.
   */
  private slab = new Uint8Array(0);
  private slabBuffer = this.slab.buffer;
  private start = 0;
  private end = 0;
  /** Guest bytes [runAddr, runAddr + runLen) gathered but not yet copied: the batch's last run. */
  private runAddr = 0;
  private runLen = 0;
  /** Chains of the batch refused for their shape. */
  refused = 0;

  /**
   * @param maxChains most chains held at once (the largest queue size: a pass pops at most that many)
   * @param maxChainBytes most readable bytes a chain may carry; a longer chain is refused
   * @param slabSize bytes per slab (a batch larger than that gets a slab of its own size)
   */
  constructor(
    maxChains: number,
    private readonly maxChainBytes: number,
    private readonly slabSize: number,
  ) {
    this.heads = new Uint16Array(maxChains);
  }

  /** Bytes gathered so far. */
  get bytes(): number {
    return this.end - this.start + this.runLen;
  }

  /** Whether no chain is held. */
  get empty(): boolean {
    return this.held === 0;
  }

  /**
   * Pop up to `maxChains` chains from `q` into the batch, stopping once it holds `room` bytes or
   * more (so at least one chain) or the ring is empty. Returns the number of chains popped.
   */
  gather(q: DeviceQueue, memory: GuestMemory, maxChains: number, room: number): number {
    const heads = this.heads;
    let held = this.held;
    let slab = this.slab;
    let slabEnd = slab.length;
    let end = this.end;
    let runAddr = this.runAddr;
    let runLen = this.runLen;
    // Runs below runTop stay inside one memory region: [runAddr, memory.end) is one (0: ask memory).
    let runTop = 0;
    let bytes = end - this.start + runLen;
    // Checked once for the pass: a typed array would drop a head written past its end.
    if (held + maxChains > heads.length)
      throw new UsageError(`a transmit batch holds at most ${heads.length} chains, not ${held} + ${maxChains}`);
    let popped = 0;
    while (popped < maxChains) {
      const chain = q.pop();
      if (chain === null) break;
      popped++;
      heads[held++] = chain.head;
      if (!this.chainOk(chain)) {
        this.refused++;
        continue;
      }
      const n = chain.readableBytes;
      if (n + runLen > slabEnd - end) {
        this.end = end;
        this.moveToNewSlab(n + runLen);
        slab = this.slab;
        slabEnd = slab.length;
        end = this.end;
      }
      const readable = chain.readable;
      for (let i = 0; i < readable; i++) {
        const addr = chain.addr(i);
        const len = readable === 1 ? n : chain.len(i);
        // Adjacent in address is not enough: the run must also stay inside one memory region.
        if (runLen > 0 && addr === runAddr + runLen && (addr + len <= runTop || memory.contains(runAddr, runLen + len))) {
          runLen += len;
          continue;
        }
        if (runLen > 0) {
          slab.set(memory.view(runAddr, runLen), end);
          end += runLen;
        }
        runAddr = addr;
        runLen = len;
        runTop = memory.contains(addr, memory.end - addr) ? memory.end : 0;
      }
      bytes += n;
      if (bytes >= room) break;
    }
    this.held = held;
    this.end = end;
    this.runAddr = runAddr;
    this.runLen = runLen;
    return popped;
  }

  /**
   * Copy the last run, give every chain held back to `q` (used, nothing written) and return the
   * batch's bytes as an array the caller may give away.
   */
  finish(q: DeviceQueue, memory: GuestMemory): Uint8Array {
    if (this.runLen > 0) {
      this.slab.set(memory.view(this.runAddr, this.runLen), this.end);
      this.end += this.runLen;
      this.runLen = 0;
    }
    // Only now that every byte is copied may the guest have its buffers back.
    const heads = this.heads;
    const held = this.held;
    for (let i = 0; i < held; i++) q.pushUsed(heads[i]!, 0);
    this.held = 0;
    this.refused = 0;
    return this.take();
  }

  /** Forget the chains held and the bytes gathered (device reset). */
  clear(): void {
    this.held = 0;
    this.runLen = 0;
    this.refused = 0;
    this.take();
  }

  /** The batch's bytes as a view of the slab; the next batch opens behind them. */
  private take(): Uint8Array {
    const out = new Uint8Array(this.slabBuffer, this.start, this.end - this.start);
    // The next batch starts 8-aligned, so that copies into it stay fast.
    this.start = this.end = Math.min((this.end + 7) & ~7, this.slab.length);
    return out;
  }

  /**
   * The slab is full behind the batch: move the batch's bytes to a new slab with room for `n` more
   * (at most one batch against a slab of several, so this copy is rare).
   */
  private moveToNewSlab(n: number): void {
    const open = this.slab.subarray(this.start, this.end);
    this.slab = new Uint8Array(Math.max(this.slabSize, open.length + n));
    this.slabBuffer = this.slab.buffer;
    this.slab.set(open);
    this.start = 0;
    this.end = open.length;
  }

  /** A transmit chain has only device-readable buffers, and no more bytes than one chain may carry. */
  private chainOk(chain: DescriptorChain): boolean {
    return chain.writableBytes === 0 && chain.readableBytes <= this.maxChainBytes;
  }
}
