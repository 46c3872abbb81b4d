/**
 * In-order use of descriptors (VIRTIO_F_IN_ORDER, 2.7.9 split, 2.8.8 packed), the device half, for
 * either ring format. Chapter 6.2: "If VIRTIO_F_IN_ORDER has been negotiated, a device MUST use
 * buffers in the same order in which they have been available." Device models complete requests
 * whenever their backends answer, so this layer sits between them and the ring: it remembers the
 * order chains were popped in, holds each completion until every earlier chain is complete, then
 * gives the ring the run of completions that became ready, batched as the spec allows.
 *
 * Batching (2.7.9 / 2.8.8): one used element, for the last buffer of a batch, stands for the whole
 * batch, and the skipped buffers "are assumed to have been used (read or written) by the device
 * completely". So a completion is folded into a later one only when its used len is all of its
 * chain's writable bytes, and only into completions already ready: nothing waits for a batch to
 * grow. The ring writes the element in the format's own way ({@link InOrderRing.skipUsed}).
 *
 * Bounded by the ring: no more chains are in flight than the queue has entries.
 */

import { QueueFaultError } from '../errors.js';
import type { DescriptorChain, DeviceQueue, InOrderRing, RingPosition } from './types.js';
import type { SnapshotReader } from '../snapshot/snapshot-reader.js';
import type { SnapshotStruct } from '../snapshot/snapshot-value.js';
import { checkUsedLen } from './used-len.js';

/** `lens` entry of a chain the device model still holds. */
const PENDING = -1;
/** `slotOf` entry of a head not in flight here. */
const NO_SLOT = -1;

/** The device side of a queue with VIRTIO_F_IN_ORDER negotiated; rings.ts builds it around the format's ring. */
export class InOrderQueue implements DeviceQueue {
  readonly index: number;
  readonly size: number;
  private readonly ring: InOrderRing;
  /** Chains in flight in pop order, a circular buffer of `size`: [first, first + count). */
  private readonly chains: (DescriptorChain | undefined)[];
  /** Per slot: the used len the device model gave, or PENDING. */
  private readonly lens: Float64Array;
  private first = 0;
  private count = 0;
  /**
   * Head -> slot, for chains the device model has not returned yet; NO_SLOT otherwise. An array,
   * not a Map: a Map that fills and empties every notify shrinks and regrows its table each time.
   */
  private readonly slotOf: Int32Array;
  /** Chains restored from a snapshot that the ring pops again (already in their slots here). */
  private redeliveries = 0;

  constructor(ring: InOrderRing) {
    this.ring = ring;
    this.index = ring.index;
    this.size = ring.size;
    this.chains = new Array<DescriptorChain | undefined>(ring.size).fill(undefined);
    this.lens = new Float64Array(ring.size).fill(PENDING);
    this.slotOf = new Int32Array(ring.size).fill(NO_SLOT);
  }

  /** Chains popped and not yet given back to the ring (the device model's and those held for order). */
  get inFlightChains(): number {
    return this.count;
  }

  /**
   * The ring's next chain. Throws the ring's QueueFaultError; ERR_QUEUE_HEAD_INDEX if the ring hands
   * out a head outside the queue, ERR_QUEUE_HEAD_IN_USE one already in flight or more chains than the
   * queue size (a ring bound broken).
   */
  pop(): DescriptorChain | null {
    const chain = this.ring.pop();
    if (chain === null) return null;
    // The ring hands out restored chains first: they hold their slots since restore().
    if (this.redeliveries > 0) {
      this.redeliveries--;
      return chain;
    }
    // A ring that breaks its own bounds (a head outside the queue) is refused as the ring refuses a guest's.
    if (!(chain.head >= 0 && chain.head < this.size)) {
      throw new QueueFaultError('ERR_QUEUE_HEAD_INDEX', this.index, `head ${chain.head} popped from a queue of ${this.size}`);
    }
    if (this.count === this.size || this.slotOf[chain.head] !== NO_SLOT) {
      throw new QueueFaultError('ERR_QUEUE_HEAD_IN_USE', this.index, `head ${chain.head} popped with ${this.count} chains in flight`);
    }
    const slot = this.slot(this.count++);
    this.chains[slot] = chain;
    this.slotOf[chain.head] = slot;
    return chain;
  }

  /**
   * Chain `head` is complete with `len` bytes written; it reaches the used ring once every chain
   * popped before it has. Throws QueueFaultError('ERR_QUEUE_USED_OVERFLOW') for a head not in flight
   * (or already returned), UsageError for a len beyond the chain's writable bytes.
   */
  pushUsed(head: number, len: number): void {
    // A head outside the queue reads undefined here: not in flight either.
    const slot = this.slotOf[head];
    if (slot === undefined || slot === NO_SLOT) {
      throw new QueueFaultError('ERR_QUEUE_USED_OVERFLOW', this.index, `used element for head ${head}, which is not in flight`);
    }
    checkUsedLen(this.index, head, len, this.chains[slot]!.writableBytes);
    this.slotOf[head] = NO_SLOT;
    this.lens[slot] = len;
    if (slot === this.first) this.flush();
  }

  needsInterrupt(): boolean {
    return this.ring.needsInterrupt();
  }

  setNotification(enabled: boolean): void {
    this.ring.setNotification(enabled);
  }

  hasAvailable(): boolean {
    return this.ring.hasAvailable();
  }

  position(): RingPosition {
    return { ...this.ring.position(), inFlight: this.count };
  }

  /** The ring's state, the completions held back for order included (docs/snapshots.md). */
  snapshot(): SnapshotStruct {
    const held = new Map<number, number>();
    for (let k = 0; k < this.count; k++) {
      const slot = this.slot(k);
      if (this.lens[slot]! !== PENDING) held.set(this.chains[slot]!.head, this.lens[slot]!);
    }
    return this.ring.snapshot((head) => held.get(head));
  }

  /**
   * Take the state of a snapshot (a fresh queue only; SnapshotError when it cannot be this queue's).
   * The oldest chain in flight must be one the device model holds: a completion at the front would
   * have gone to the ring already.
   */
  restore(state: SnapshotReader): void {
    const restored = this.ring.restore(state);
    if (restored.length > 0 && restored[0]!.usedLen !== undefined)
      throw state.error('ERR_SNAPSHOT_IN_FLIGHT', `the oldest chain in flight (id ${restored[0]!.chain.head}) is complete but held back`);
    for (const { chain, usedLen } of restored) {
      const slot = this.slot(this.count++);
      this.chains[slot] = chain;
      if (usedLen === undefined) {
        this.slotOf[chain.head] = slot;
        this.redeliveries++;
      } else this.lens[slot] = usedLen;
    }
  }

  /** Hand the ring every completion at the front, in order, batching those used completely. */
  private flush(): void {
    while (this.count > 0 && this.lens[this.first]! !== PENDING) {
      const chain = this.chains[this.first]!;
      const len = this.lens[this.first]!;
      this.chains[this.first] = undefined;
      this.lens[this.first] = PENDING;
      this.first = this.slot(1);
      this.count--;
      // The chain object stays valid until the ring has it back, so its fields are read first.
      if (len === chain.writableBytes && this.count > 0 && this.lens[this.first]! !== PENDING) this.ring.skipUsed(chain.head);
      else this.ring.pushUsed(chain.head, len);
    }
  }

  /** The circular buffer slot `k` places after the first. */
  private slot(k: number): number {
    const s = this.first + k;
    return s >= this.size ? s - this.size : s;
  }
}
