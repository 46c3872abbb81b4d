/**
 * The device half of a split virtqueue (spec 2.7): walks descriptor chains the driver made available
 * and returns used elements. Everything in the rings is guest-controlled, so every index, length and
 * address is checked, every walk is bounded, and each violation is a QueueFaultError with its own
 * code (the device then sets DEVICE_NEEDS_RESET).
 *
 * Memory ordering: the rings are read and written with plain DataView accesses. Every peer in this
 * project (the in-process driver, an emulator such as v86) runs on the same JS thread as the device,
 * so program order is the order the other side sees. A driver on another thread sharing a
 * SharedArrayBuffer must hand over through a synchronising operation (postMessage, Atomics.notify)
 * at each notification and interrupt, which orders everything written before it.
 */

import { QueueFaultError, type QueueFaultCode } from '../../errors.js';
import type { GuestMemory } from '../../memory/guest-memory.js';
import * as ringSpec from '../../spec/ring.js';
import { availRingSize, descTableSize, usedRingSize, vringNeedEvent } from '../../spec/ring.js';
import { ringArea } from '../ring-area.js';
import { SPLIT_RING } from '../ring-format.js';
import type { DescriptorChain, InOrderRing, RestoredChain } from '../types.js';
import { chainSnapshot, readChains } from '../in-flight-snapshot.js';
import type { SnapshotReader } from '../../snapshot/snapshot-reader.js';
import { flag, list, string, struct, u16, type SnapshotStruct } from '../../snapshot/snapshot-value.js';
import { Redelivery } from '../redelivery.js';
import type { ChainStorage } from '../chain-storage.js';
import { usedLenError, usedLenFits } from '../used-len.js';
import { DescriptorWalk } from './descriptor-chain.js';

// The layout constants as this module's own consts: optimised code (V8 11, Node 20) folds a module's
// own const but loads an imported binding from its cell, with a TDZ check, at every use.
const {
  VIRTQ_AVAIL_ELEM_SIZE,
  VIRTQ_AVAIL_F_NO_INTERRUPT,
  VIRTQ_AVAIL_FLAGS,
  VIRTQ_AVAIL_IDX,
  VIRTQ_AVAIL_RING,
  VIRTQ_USED_ELEM_SIZE,
  VIRTQ_USED_F_NO_NOTIFY,
  VIRTQ_USED_FLAGS,
  VIRTQ_USED_IDX,
  VIRTQ_USED_RING,
} = ringSpec;

export interface SplitQueueOptions {
  readonly index: number;
  /** Queue size (SPLIT_RING.isQueueSize). */
  readonly size: number;
  readonly memory: GuestMemory;
  /** Guest-physical address of the descriptor table (queue_desc). */
  readonly desc: number;
  /** Guest-physical address of the available ring, the driver area (queue_driver). */
  readonly driver: number;
  /** Guest-physical address of the used ring, the device area (queue_device). */
  readonly device: number;
  /** VIRTIO_F_EVENT_IDX negotiated: used_event / avail_event instead of the flags. */
  readonly eventIdx: boolean;
  /** VIRTIO_F_INDIRECT_DESC negotiated; without it an INDIRECT descriptor is a fault. */
  readonly indirect: boolean;
}

/**
 * Device side of one split virtqueue, created by the transport when the driver enables the queue.
 *
 * Chain lifetime: the chain `pop()` returns belongs to the device model until it calls
 * `pushUsed(chain.head, len)`; from then on the queue reuses the object for a later chain, so the
 * model must not keep it. An asynchronous device may hold any number of chains at once. There is
 * one chain object per head, reused, so in the steady state neither `pop()` nor `pushUsed()`
 * allocates (except one zero-copy view per indirect table). The chain limits are those of
 * {@link DescriptorWalk}.
 */
export class SplitQueue implements InOrderRing {
  readonly index: number;
  readonly size: number;
  private readonly mask: number;
  private readonly eventIdx: boolean;
  private readonly walker: DescriptorWalk;
  private readonly memory: GuestMemory;
  private readonly availDv: DataView;
  private readonly availBase: number;
  private readonly usedDv: DataView;
  private readonly usedBase: number;
  private lastAvail = 0;
  /** avail.idx as last read; chains up to it were validated as available. */
  private availShadow = 0;
  private used = 0;
  /** Chains returned by skipUsed() whose used elements the next pushUsed() implies (2.7.9). */
  private skipped = 0;
  /** used.idx at the last needsInterrupt() call. */
  private signalledUsed = 0;
  private notifyEnabled = true;
  /**
   * One chain object per head, made the first time the head is popped and reused whenever it comes
   * back (a head names at most one chain in flight), and whether that chain is in flight.
   */
  private readonly chains: (ChainStorage | undefined)[];
  private readonly inFlight: Uint8Array;
  /** Per head: when its chain was popped (pops so far), so that a snapshot lists chains in pop order. */
  private readonly popSeq: Float64Array;
  private pops = 0;
  /** Chains restored from a snapshot that pop() hands out again before reading the ring. */
  private readonly redelivery = new Redelivery();

  /** Throws QueueFaultError('ERR_QUEUE_RING_ADDRESS') for a bad size, misaligned or unmapped ring. */
  constructor(options: SplitQueueOptions) {
    const { index, size, memory, desc, driver, device } = options;
    this.index = index;
    this.size = size;
    this.mask = size - 1;
    this.eventIdx = options.eventIdx;
    this.memory = memory;
    if (!SPLIT_RING.isQueueSize(size)) {
      throw this.fault('ERR_QUEUE_RING_ADDRESS', `queue size ${size} is not a power of two in 1..${SPLIT_RING.maxQueueSize}`);
    }
    const align = SPLIT_RING.areaAlign;
    const descArea = ringArea(memory, index, 'descriptor table', desc, align.desc, descTableSize(size));
    const availArea = ringArea(memory, index, 'available ring', driver, align.driver, availRingSize(size));
    const usedArea = ringArea(memory, index, 'used ring', device, align.device, usedRingSize(size));
    this.walker = new DescriptorWalk({ index, size, memory, descDv: descArea.dv, descBase: descArea.base, indirect: options.indirect });
    this.availDv = availArea.dv;
    this.availBase = availArea.base;
    this.usedDv = usedArea.dv;
    this.usedBase = usedArea.base;
    this.chains = new Array<ChainStorage | undefined>(size).fill(undefined);
    this.inFlight = new Uint8Array(size);
    this.popSeq = new Float64Array(size);
  }

  /** The next avail ring index the device will read (last_avail_idx), for debugging and queue reset. */
  get lastAvailIdx(): number {
    return this.lastAvail;
  }
  /** used.idx as the device last wrote it. */
  get usedIdx(): number {
    return this.used;
  }
  /** Chains popped and not yet returned with pushUsed(). */
  get inFlightChains(): number {
    // Chains popped (last_avail_idx) less those returned: by used elements (used.idx) and by
    // skipUsed() awaiting the next one. Fewer than 2^16 are ever in flight (at most the queue size).
    return (this.lastAvail - this.used - this.skipped) & 0xffff;
  }

  /**
   * The next available chain, or null when the ring is empty. Throws QueueFaultError on a guest
   * fault, leaving the queue as it was (the faulty chain stays unpopped).
   */
  pop(): DescriptorChain | null {
    if (this.redelivery.pending) return this.chains[this.redelivery.next()]!;
    const last = this.lastAvail;
    if (last === this.availShadow && this.readAvailIdx() === last) return null;
    const head = this.availDv.getUint16(this.availBase + VIRTQ_AVAIL_RING + (last & this.mask) * VIRTQ_AVAIL_ELEM_SIZE, true);
    if (head >= this.size || this.inFlight[head] === 1) throw this.headFault(last, head);
    const chain = this.chains[head] ?? this.newChain(head);
    this.walker.walk(chain, head);
    this.inFlight[head] = 1;
    this.popSeq[head] = this.pops++;
    this.lastAvail = (last + 1) & 0xffff;
    return chain;
  }

  /**
   * Return chain `head` to the driver with `len` bytes written. Throws
   * QueueFaultError('ERR_QUEUE_USED_OVERFLOW') when no chain with that head is in flight, and
   * UsageError when `len` exceeds the chain's writable bytes.
   */
  pushUsed(head: number, len: number): void {
    if (this.inFlight[head] !== 1 || !usedLenFits(len, this.chains[head]!.writableBytes)) throw this.usedRefusal(head, len);
    const dv = this.usedDv;
    // 2.7.9: after skipped chains, this element goes in the batch's first slot and idx moves past all.
    const elem = this.usedBase + VIRTQ_USED_RING + (this.used & this.mask) * VIRTQ_USED_ELEM_SIZE;
    dv.setUint32(elem, head, true);
    dv.setUint32(elem + 4, len, true);
    // 2.7.8: the element is written before used.idx moves past it.
    this.used = (this.used + 1 + this.skipped) & 0xffff;
    this.skipped = 0;
    dv.setUint16(this.usedBase + VIRTQ_USED_IDX, this.used, true);
    this.inFlight[head] = 0;
  }

  /** VIRTIO_F_IN_ORDER (2.7.9): see {@link InOrderRing.skipUsed}. Throws as pushUsed() does for a head not in flight. */
  skipUsed(head: number): void {
    this.inFlightChain(head);
    this.inFlight[head] = 0;
    this.skipped++;
  }

  /** The chain `head` names; ERR_QUEUE_USED_OVERFLOW when none is in flight. */
  private inFlightChain(head: number): ChainStorage {
    if (this.inFlight[head] !== 1) throw this.fault('ERR_QUEUE_USED_OVERFLOW', `used element for head ${head}, which is not in flight`);
    return this.chains[head]!;
  }

  /** pushUsed()'s refusal, out of line: throws ERR_QUEUE_USED_OVERFLOW for a head not in flight, else returns the UsageError for `len`. */
  private usedRefusal(head: number, len: number): Error {
    return usedLenError(this.index, head, len, this.inFlightChain(head).writableBytes);
  }

  /** Storage for chains at `head` from now on (the first time the head is popped). */
  private newChain(head: number): ChainStorage {
    return (this.chains[head] = this.walker.newChain());
  }

  private headFault(last: number, head: number): QueueFaultError {
    const slot = last & this.mask;
    return head >= this.size
      ? this.fault('ERR_QUEUE_HEAD_INDEX', `avail ring slot ${slot} names descriptor ${head} of ${this.size}`)
      : this.fault('ERR_QUEUE_HEAD_IN_USE', `avail ring slot ${slot} names head ${head}, already in flight`);
  }

  needsInterrupt(): boolean {
    const old = this.signalledUsed;
    const now = this.used;
    this.signalledUsed = now;
    if (old === now) return false;
    if (this.eventIdx)
      return vringNeedEvent(this.availDv.getUint16(this.availBase + VIRTQ_AVAIL_RING + this.size * VIRTQ_AVAIL_ELEM_SIZE, true), now, old);
    return (this.availDv.getUint16(this.availBase + VIRTQ_AVAIL_FLAGS, true) & VIRTQ_AVAIL_F_NO_INTERRUPT) === 0;
  }

  /**
   * Without EVENT_IDX, sets or clears VIRTQ_USED_F_NO_NOTIFY. With it (flags stay 0, 2.7.10),
   * enabling writes avail_event = avail.idx (notify when the next chain is added, and pop keeps it
   * current); disabling stops updating it, so notifications stop once the driver passes it.
   * After enabling, check hasAvailable() again: chains added meanwhile come with no notification.
   */
  setNotification(enabled: boolean): void {
    this.notifyEnabled = enabled;
    if (this.eventIdx) {
      if (enabled) this.writeAvailEvent(this.availDv.getUint16(this.availBase + VIRTQ_AVAIL_IDX, true));
    } else {
      this.usedDv.setUint16(this.usedBase + VIRTQ_USED_FLAGS, enabled ? 0 : VIRTQ_USED_F_NO_NOTIFY, true);
    }
  }

  hasAvailable(): boolean {
    if (this.redelivery.pending) return true;
    return this.lastAvail !== this.availShadow || this.readAvailIdx() !== this.lastAvail;
  }

  /**
   * Read avail.idx once for a batch of pops. It may run at most `size` ahead of used.idx (no more
   * chains can be outstanding than the table has descriptors, 2.7) and never falls back behind
   * last_avail_idx (2.7.6: the driver never decrements it).
   */
  private readAvailIdx(): number {
    const idx = this.availDv.getUint16(this.availBase + VIRTQ_AVAIL_IDX, true);
    const outstanding = (idx - this.used) & 0xffff;
    if (outstanding > this.size || outstanding < ((this.lastAvail - this.used) & 0xffff)) {
      throw this.fault(
        'ERR_QUEUE_AVAIL_INDEX',
        `avail idx ${idx} with last avail idx ${this.lastAvail}, used idx ${this.used}, size ${this.size}`,
      );
    }
    this.availShadow = idx;
    if (this.eventIdx && this.notifyEnabled) this.writeAvailEvent(idx);
    return idx;
  }

  private writeAvailEvent(value: number): void {
    this.usedDv.setUint16(this.usedBase + VIRTQ_USED_RING + this.size * VIRTQ_USED_ELEM_SIZE, value, true);
  }

  /**
   * The ring's state (docs/snapshots.md): its indices, notification state and in-flight chains in
   * pop order; `usedLen` gives the used len of a chain the in-order layer holds back.
   */
  snapshot(usedLen?: (head: number) => number | undefined): SnapshotStruct {
    const heads = [];
    for (let h = 0; h < this.size; h++) if (this.inFlight[h] === 1) heads.push(h);
    heads.sort((a, b) => this.popSeq[a]! - this.popSeq[b]!);
    return struct({
      format: string('split'),
      lastAvail: u16(this.lastAvail),
      used: u16(this.used),
      signalledUsed: u16(this.signalledUsed),
      notifyEnabled: flag(this.notifyEnabled),
      // A chain not yet popped again after a restore is in flight all the same.
      chains: list(heads.map((h) => chainSnapshot(this.chains[h]!, 0, usedLen?.(h)))),
    });
  }

  /**
   * Take the state of `r` (a fresh ring only): throws SnapshotError when the state cannot be this
   * ring's, leaving the ring unusable. The chains the device model held are handed out again, in
   * their pop order, by the next pops; those with a used len (held for order) are returned.
   */
  restore(r: SnapshotReader): RestoredChain[] {
    if (r.choice('format', ['split', 'packed']) !== 'split')
      throw r.error('ERR_SNAPSHOT_KIND', 'a packed ring where the driver negotiated the split ring');
    const lastAvail = r.u16('lastAvail');
    const used = r.u16('used');
    const signalledUsed = r.u16('signalledUsed');
    const notifyEnabled = r.flag('notifyEnabled');
    const chains = readChains(r, SPLIT_RING, this.size, this.memory);
    const inFlight = (lastAvail - used) & 0xffff;
    if (inFlight !== chains.length)
      throw r.error(
        'ERR_SNAPSHOT_IN_FLIGHT',
        `last avail idx ${lastAvail} and used idx ${used} mean ${inFlight} chains in flight, the snapshot lists ${chains.length}`,
      );
    this.lastAvail = lastAvail;
    this.availShadow = lastAvail;
    this.used = used;
    this.signalledUsed = signalledUsed;
    this.notifyEnabled = notifyEnabled;
    return chains.map((c) => {
      const chain = this.chains[c.head] ?? this.newChain(c.head);
      chain.load(c.head, c.addrs, c.lens, c.readable);
      this.inFlight[c.head] = 1;
      this.popSeq[c.head] = this.pops++;
      if (c.usedLen === undefined) this.redelivery.add(c.head);
      return { chain, usedLen: c.usedLen };
    });
  }

  private fault(code: QueueFaultCode, message: string): QueueFaultError {
    return new QueueFaultError(code, this.index, message);
  }
}
