/**
 * The storage behind a popped split-ring descriptor chain: the buffers' addresses and lengths in
 * typed arrays that grow (by doubling, up to the queue size) only when a chain longer than any
 * before arrives, so that popping allocates nothing in the steady state.
 */

import { UsageError } from '../../errors.js';
import type { GuestMemory } from '../../memory/guest-memory.js';
import type { DescriptorChain } from '../types.js';

const INITIAL_CAPACITY = 4;

/**
 * A {@link DescriptorChain} owned by a {@link SplitQueue}. The queue fills it in `pop()` and takes it
 * back in `pushUsed()`; between the two it belongs to the device model.
 */
export class SplitDescriptorChain implements DescriptorChain {
  head = 0;
  count = 0;
  readable = 0;
  readableBytes = 0;
  writableBytes = 0;
  /** Buffer addresses (below 2^53, checked against guest memory). */
  addrs = new Float64Array(INITIAL_CAPACITY);
  lens = new Uint32Array(INITIAL_CAPACITY);

  constructor(private readonly memory: GuestMemory) {}

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

  /** Make room for buffer number `count` (the queue calls this only when count reaches capacity). */
  grow(): void {
    const addrs = new Float64Array(this.addrs.length * 2);
    const lens = new Uint32Array(this.lens.length * 2);
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
