/**
 * The storage of a popped descriptor chain, shared by both ring formats (the split ring's walk,
 * 2.7.5, and the packed ring's, 2.8.6). Buffers' addresses and lengths live in typed arrays that grow
 * (by doubling, up to the chain limit) only when a chain longer than any before arrives, so that
 * popping allocates nothing in the steady state. Every format's walk applies the same two rules
 * while it fills one (see {@link ChainStorage}), with the same fault codes and words.
 */

import { UsageError } from '../errors.js';
import type { GuestMemory } from '../memory/guest-memory.js';
import type { DescriptorChain } from './types.js';

const INITIAL_CAPACITY = 4;

/** Why a walk refuses a buffer: the fault code it throws. */
export type ChainStorageFault = 'ERR_QUEUE_WRITE_BEFORE_READ' | 'ERR_QUEUE_CHAIN_TOO_LONG';

/**
 * A {@link DescriptorChain} owned by a device queue. The queue fills it in `pop()` and takes it back
 * in `pushUsed()`; between the two it belongs to the device model.
 *
 * A format's walk fills it directly, with the chain's running totals in the walk's own locals (a
 * call and four field updates per buffer cost more than the walk's reads): it writes buffer k to
 * `addrs[k]` and `lens[k]` after {@link room} said there is room, and ends with {@link fill}. The
 * rules it applies per buffer: a device-readable buffer only while no device-writable one came before
 * (2.7.4.2, 2.8.17: ERR_QUEUE_WRITE_BEFORE_READ), at most the chain limit of buffers
 * (ERR_QUEUE_CHAIN_TOO_LONG, when {@link room} refuses).
 */
export class ChainStorage implements DescriptorChain {
  head = 0;
  count = 0;
  readable = 0;
  readableBytes = 0;
  writableBytes = 0;
  /** Buffer addresses (below 2^53, checked against guest memory); for the walks only. */
  addrs: Float64Array;
  /** Buffer lengths; for the walks only. */
  lens: Uint32Array;

  /** Room for `limit` buffers at most: the format's chain limit for the queue. */
  constructor(
    private readonly memory: GuestMemory,
    private readonly limit: number,
  ) {
    this.addrs = new Float64Array(Math.min(INITIAL_CAPACITY, limit));
    this.lens = new Uint32Array(this.addrs.length);
  }

  /**
   * Make room for buffer `count` when the arrays hold exactly `count` (the walk then reloads
   * `addrs` and `lens`). Returns false, and grows nothing, when `count` is the chain limit: the walk
   * faults with ERR_QUEUE_CHAIN_TOO_LONG.
   */
  room(count: number): boolean {
    if (count === this.limit) return false;
    const capacity = Math.min(this.addrs.length * 2, this.limit);
    const addrs = new Float64Array(capacity);
    const lens = new Uint32Array(capacity);
    addrs.set(this.addrs);
    lens.set(this.lens);
    this.addrs = addrs;
    this.lens = lens;
    return true;
  }

  /** Publish a walk's result: the chain's id and totals, its buffers being in `addrs` and `lens`. */
  fill(head: number, count: number, readable: number, readableBytes: number, writableBytes: number): void {
    this.head = head;
    this.count = count;
    this.readable = readable;
    this.readableBytes = readableBytes;
    this.writableBytes = writableBytes;
  }

  /**
   * Fill the chain from a restored snapshot (queue/in-flight-snapshot.ts checked the buffers: at most
   * the chain limit, inside guest memory, `readable` of them first).
   */
  load(head: number, addrs: readonly number[], lens: readonly number[], readable: number): void {
    while (this.addrs.length < addrs.length) this.room(this.addrs.length);
    let readableBytes = 0;
    let writableBytes = 0;
    for (let k = 0; k < addrs.length; k++) {
      this.addrs[k] = addrs[k]!;
      this.lens[k] = lens[k]!;
      if (k < readable) readableBytes += lens[k]!;
      else writableBytes += lens[k]!;
    }
    this.fill(head, addrs.length, readable, readableBytes, writableBytes);
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

  private index(i: number): number {
    if (!(i >>> 0 === i && i < this.count)) throw new UsageError(`chain ${this.head}: buffer ${i} of ${this.count}`);
    return i;
  }
}

/** Words for a buffer a walk refuses under the rules of {@link ChainStorage}, for the fault message. */
export function refusalMessage(fault: ChainStorageFault): string {
  return fault === 'ERR_QUEUE_WRITE_BEFORE_READ' ? 'device-readable after a device-writable one' : 'more buffers than the chain limit';
}
