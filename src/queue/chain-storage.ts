/**
 * The storage of a popped descriptor chain, shared by both ring formats (the split ring's walk,
 * 2.7.5, and the packed ring's, 2.8.6). Buffers' addresses and lengths live in typed arrays that grow
 * (by doubling, up to the chain limit) only when a chain longer than any before arrives, so that
 * popping allocates nothing in the steady state. The rules every format applies while a chain is
 * filled (device-readable buffers first, at most the chain limit of buffers) are checked here.
 */

import { UsageError } from '../errors.js';
import type { GuestMemory } from '../memory/guest-memory.js';
import type { DescriptorChain } from './types.js';

const INITIAL_CAPACITY = 4;

/** Why a buffer could not be added: the fault code the walk throws. */
export type ChainStorageFault = 'ERR_QUEUE_WRITE_BEFORE_READ' | 'ERR_QUEUE_CHAIN_TOO_LONG';

/**
 * A {@link DescriptorChain} owned by a device queue. The queue fills it in `pop()` and takes it back
 * in `pushUsed()`; between the two it belongs to the device model.
 */
export class ChainStorage implements DescriptorChain {
  head = 0;
  count = 0;
  readable = 0;
  readableBytes = 0;
  writableBytes = 0;
  /** Buffer addresses (below 2^53, checked against guest memory). */
  private addrs: Float64Array;
  private lens: Uint32Array;

  /** Room for `limit` buffers at most: the format's chain limit for the queue. */
  constructor(
    private readonly memory: GuestMemory,
    private readonly limit: number,
  ) {
    this.addrs = new Float64Array(Math.min(INITIAL_CAPACITY, limit));
    this.lens = new Uint32Array(this.addrs.length);
  }

  /** Empty the chain before a walk fills it. */
  clear(): void {
    this.count = 0;
    this.readable = 0;
    this.readableBytes = 0;
    this.writableBytes = 0;
  }

  /**
   * Append a buffer (already checked to lie in guest memory). Returns null, or the fault when a
   * device-readable buffer follows a device-writable one (2.7.4.2, 2.8.17) or the chain would hold
   * more than `limit` buffers; the chain is then unusable until the next clear().
   */
  push(addr: number, len: number, writable: boolean): ChainStorageFault | null {
    const count = this.count;
    if (writable) {
      this.writableBytes += len;
    } else {
      if (count !== this.readable) return 'ERR_QUEUE_WRITE_BEFORE_READ';
      this.readable++;
      this.readableBytes += len;
    }
    if (count === this.lens.length) {
      if (count === this.limit) return 'ERR_QUEUE_CHAIN_TOO_LONG';
      this.grow();
    }
    this.addrs[count] = addr;
    this.lens[count] = len;
    this.count = count + 1;
    return null;
  }

  addr(i: number): number {
    return this.addrs[this.index(i)]!;
  }
  len(i: number): number {
    return this.lens[this.index(i)]!;
  }
  view(i: number): Uint8Array {
    const k = this.index(i);
    return this.memory.view(this.addrs[k]!, this.lens[k]!);
  }

  private grow(): void {
    const capacity = Math.min(this.addrs.length * 2, this.limit);
    const addrs = new Float64Array(capacity);
    const lens = new Uint32Array(capacity);
    addrs.set(this.addrs);
    lens.set(this.lens);
    this.addrs = addrs;
    this.lens = lens;
  }

  private index(i: number): number {
    if (!(i >>> 0 === i && i < this.count)) throw new UsageError(`chain ${this.head}: buffer ${i} of ${this.count}`);
    return i;
  }
}

/** Words for a {@link ChainStorage.push} refusal, for the fault message. */
export function refusalMessage(fault: ChainStorageFault): string {
  return fault === 'ERR_QUEUE_WRITE_BEFORE_READ' ? 'device-readable after a device-writable one' : 'more buffers than the chain limit';
}
