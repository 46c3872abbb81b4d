/**
 * Guest output of one transmitq gathered for one stream write, in a single pass over the chains:
 * each chain's readable bytes go into an {@link OutputSlab} batch as it is popped, and its head is
 * held until the batch is finished, when every chain goes back to the driver in avail order (refused
 * chains too, with no bytes). Buffers that follow each other in guest memory (as a driver allocating
 * them in sequence leaves them) are copied as one run: one view and one copy instead of one per
 * buffer. The pass keeps its state in locals: it runs once per chain, and field traffic and calls
 * there cost more than the copy itself with small chains.
 */

import { UsageError } from '../../errors.js';
import type { GuestMemory } from '../../memory/guest-memory.js';
import type { DescriptorChain, DeviceQueue } from '../../queue/types.js';
import { OutputSlab } from './output-slab.js';

export class TxBatch {
  private readonly slab: OutputSlab;
  /** Heads of the chains held, in avail order. */
  private readonly heads: Uint16Array;
  private held = 0;
  /** Guest bytes [runAddr, runAddr + runLen) gathered but not yet copied: the batch's last run. */
  private runAddr = 0;
  private runLen = 0;
  /** Chains of the batch refused for their shape. */
  refused = 0;

  /**
   * @param maxChains most chains held at once (the largest queue size: a pass pops at most that many)
   * @param maxChainBytes most readable bytes a chain may carry; a longer chain is refused
   * @param slabSize bytes per slab
   */
  constructor(
    maxChains: number,
    private readonly maxChainBytes: number,
    slabSize: number,
  ) {
    this.heads = new Uint16Array(maxChains);
    this.slab = new OutputSlab(slabSize);
  }

  /** Bytes gathered so far. */
  get bytes(): number {
    return this.slab.length + this.runLen;
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
    const slab = this.slab;
    let held = this.held;
    let runAddr = this.runAddr;
    let runLen = this.runLen;
    let bytes = slab.length + runLen;
    let popped = 0;
    while (popped < maxChains) {
      const chain = q.pop();
      if (chain === null) break;
      popped++;
      if (held === heads.length) throw new UsageError(`a transmit batch holds at most ${heads.length} chains`);
      heads[held++] = chain.head;
      if (!this.chainOk(chain)) {
        this.refused++;
        continue;
      }
      const n = chain.readableBytes;
      slab.makeRoom(runLen + n);
      for (let i = 0; i < chain.readable; i++) {
        const addr = chain.addr(i);
        const len = chain.len(i);
        // Adjacent in address is not enough: the run must also stay inside one memory region.
        if (runLen > 0 && addr === runAddr + runLen && memory.contains(runAddr, runLen + len)) {
          runLen += len;
          continue;
        }
        if (runLen > 0) slab.append(memory.view(runAddr, runLen));
        runAddr = addr;
        runLen = len;
      }
      bytes += n;
      if (bytes >= room) break;
    }
    this.held = held;
    this.runAddr = runAddr;
    this.runLen = runLen;
    return popped;
  }

  /**
   * Copy the last run, give every chain held back to `q` (used, nothing written) and return the
   * batch's bytes as a Buffer the caller may give away.
   */
  finish(q: DeviceQueue, memory: GuestMemory): Buffer {
    if (this.runLen > 0) this.slab.append(memory.view(this.runAddr, this.runLen));
    this.runLen = 0;
    // Only now that every byte is copied may the guest have its buffers back.
    const heads = this.heads;
    for (let i = 0; i < this.held; i++) q.pushUsed(heads[i]!, 0);
    this.held = 0;
    this.refused = 0;
    return this.slab.take();
  }

  /** Forget the chains held and the bytes gathered (device reset). */
  clear(): void {
    this.held = 0;
    this.runLen = 0;
    this.refused = 0;
    this.slab.take();
  }

  /** A transmit chain has only device-readable buffers, and no more bytes than one chain may carry. */
  private chainOk(chain: DescriptorChain): boolean {
    return chain.writableBytes === 0 && chain.readableBytes <= this.maxChainBytes;
  }
}
