/**
 * The storage of a popped descriptor chain, shared by both ring formats (the split ring's walk,
 * 2.7.5, and the packed ring's, 2.8.6). Buffers' addresses and lengths live in typed arrays: the
 * split ring's queue-wide slots for short chains, else the chain's own arrays, which grow (by
 * doubling, up to the chain limit) only when a chain longer than any before arrives, so that popping
 * allocates nothing in the steady state. Every format's walk applies the same two rules
 * while it fills one (see {@link ChainStorage}), with the same fault codes and words.
 */

import { UsageError } from '../errors.js';
import type { GuestMemory } from '../memory/guest-memory.js';
import type { DescriptorChain } from './types.js';

const INITIAL_CAPACITY = 4;

/**
 * Buffers per head that a queue's {@link ChainSlots} hold (fewer when the chain limit is lower):
 * enough for the usual chains (a net frame in one or two buffers, a block request's header, data and
 * status), so that only longer ones use arrays of their own.
 */
const CHAIN_SLOTS = 4;
const NO_ADDRS = new Float64Array(0);
const NO_LENS = new Uint32Array(0);

/**
 * The first `perHead` buffers of every head's chain, for all heads of one queue, in two arrays: head
 * h's buffer k at `addrs[h * perHead + k]`. A walk writes there rather than into the chain's own
 * arrays, so that popping a chain touches two contiguous arrays that the previous
 * heads' pops have just brought into the cache, not two typed arrays (and their stores) per chain
 * scattered over the heap; those misses were most of a short chain's walk. Memory: 12 bytes per
 * head per slot, bounded by the queue size.
 */
export class ChainSlots {
  readonly perHead: number;
  readonly addrs: Float64Array;
  readonly lens: Uint32Array;

  /** Slots for `heads` heads whose chains hold at most `limit` buffers. */
  constructor(heads: number, limit: number) {
    this.perHead = Math.min(CHAIN_SLOTS, limit);
    this.addrs = new Float64Array(heads * this.perHead);
    this.lens = new Uint32Array(heads * this.perHead);
  }
}

/** Why a walk refuses a buffer: the fault code it throws. */
export type ChainStorageFault = 'ERR_QUEUE_WRITE_BEFORE_READ' | 'ERR_QUEUE_CHAIN_TOO_LONG';

/**
 * A {@link DescriptorChain} owned by a device queue. The queue fills it in `pop()` and takes it back
 * in `pushUsed()`; between the two it belongs to the device model.
 *
 * A format's walk fills it directly, with the chain's running totals in the walk's own locals (a
 * call and four field updates per buffer cost more than the walk's reads). Buffer k lies at
 * `addrs[at + k]` and `lens[at + k]`: in the chain's own arrays (at 0), or, for a short chain of a
 * queue that has {@link ChainSlots}, in the queue's slots for its head. A walk into the chain's own arrays writes buffer k after {@link room} said there is room and
 * ends with {@link fill}; a walk into the slots moves a chain that outgrows them with {@link spill}
 * and ends with {@link fillAt}. The rules every walk applies per buffer: a device-readable buffer
 * only while no device-writable one came before (2.7.4.2, 2.8.17: ERR_QUEUE_WRITE_BEFORE_READ), at
 * most the chain limit of buffers (ERR_QUEUE_CHAIN_TOO_LONG, when {@link room} or {@link spill}
 * refuses).
 */
export class ChainStorage implements DescriptorChain {
  head = 0;
  count = 0;
  readable = 0;
  readableBytes = 0;
  writableBytes = 0;
  /** Buffer addresses (below 2^53, checked against guest memory) from `at` on; for the walks only. */
  addrs: Float64Array;
  /** Buffer lengths from `at` on; for the walks only. */
  lens: Uint32Array;
  at = 0;
  /** The chain's own arrays: made at once without slots, else when a chain first outgrows them. */
  private ownAddrs: Float64Array;
  private ownLens: Uint32Array;

  /** Room for `limit` buffers at most: the format's chain limit for the queue. */
  constructor(
    private readonly memory: GuestMemory,
    private readonly limit: number,
    slots?: ChainSlots,
  ) {
    this.ownAddrs = slots === undefined ? new Float64Array(Math.min(INITIAL_CAPACITY, limit)) : NO_ADDRS;
    this.ownLens = slots === undefined ? new Uint32Array(this.ownAddrs.length) : NO_LENS;
    this.addrs = slots?.addrs ?? this.ownAddrs;
    this.lens = slots?.lens ?? this.ownLens;
  }

  /**
   * Make room for buffer `count` in the chain's own arrays when they hold exactly `count` (the walk
   * then reloads `addrs` and `lens`). Returns false, and grows nothing, when `count` is the chain
   * limit: the walk faults with ERR_QUEUE_CHAIN_TOO_LONG.
   */
  room(count: number): boolean {
    if (count === this.limit) return false;
    this.grow(count + 1, count);
    return true;
  }

  /**
   * A walk into slots has `count` buffers at `addrs[at]`, `lens[at]` and one more to store: move
   * them into the chain's own arrays, with room for it (the walk then goes on in `addrs` and `lens`,
   * at 0). Returns false, and moves nothing, when `count` is the chain limit.
   */
  spill(count: number, addrs: Float64Array, lens: Uint32Array, at: number): boolean {
    if (count === this.limit) return false;
    if (this.ownAddrs.length <= count) this.grow(count + 1, 0);
    // A loop, not set(subarray()): a view per long chain would be an allocation per pop.
    for (let k = 0; k < count; k++) {
      this.ownAddrs[k] = addrs[at + k]!;
      this.ownLens[k] = lens[at + k]!;
    }
    this.addrs = this.ownAddrs;
    this.lens = this.ownLens;
    this.at = 0;
    return true;
  }

  /** Own arrays of at least `need` buffers (doubling, up to the limit), keeping the first `keep`; they become `addrs`, `lens`. */
  private grow(need: number, keep: number): void {
    let capacity = Math.max(this.ownAddrs.length, INITIAL_CAPACITY);
    while (capacity < need) capacity *= 2;
    capacity = Math.min(capacity, this.limit);
    if (capacity > this.ownAddrs.length) {
      const addrs = new Float64Array(capacity);
      const lens = new Uint32Array(capacity);
      addrs.set(this.ownAddrs.subarray(0, keep));
      lens.set(this.ownLens.subarray(0, keep));
      this.ownAddrs = addrs;
      this.ownLens = lens;
    }
    this.addrs = this.ownAddrs;
    this.lens = this.ownLens;
    this.at = 0;
  }

  /** Publish a walk's result: the chain's id and totals, its buffers being where they were (`addrs`, `lens` from `at`). */
  fill(head: number, count: number, readable: number, readableBytes: number, writableBytes: number): void {
    this.head = head;
    this.count = count;
    this.readable = readable;
    this.readableBytes = readableBytes;
    this.writableBytes = writableBytes;
  }

  /** {@link fill}, the buffers being at `addrs[at]`, `lens[at]` (a queue's slots, or after {@link spill} the chain's own arrays at 0). */
  fillAt(
    head: number,
    count: number,
    readable: number,
    readableBytes: number,
    writableBytes: number,
    addrs: Float64Array,
    lens: Uint32Array,
    at: number,
  ): void {
    // Written only when they change: a pointer store costs a write barrier.
    if (this.addrs !== addrs) {
      this.addrs = addrs;
      this.lens = lens;
    }
    this.at = at;
    this.fill(head, count, readable, readableBytes, writableBytes);
  }

  /**
   * Fill the chain from a restored snapshot (queue/in-flight-snapshot.ts checked the buffers: at most
   * the chain limit, inside guest memory, `readable` of them first), in its own arrays.
   */
  load(head: number, addrs: readonly number[], lens: readonly number[], readable: number): void {
    this.grow(addrs.length, 0);
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
    return this.addrs[this.at + this.index(i)]!;
  }
  len(i: number): number {
    return this.lens[this.at + this.index(i)]!;
  }
  view(i: number): Uint8Array {
    const k = this.at + this.index(i);
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
