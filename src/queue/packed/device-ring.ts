/**
 * The device half of a packed virtqueue (spec 2.8, VIRTIO_F_RING_PACKED): walks the descriptors the
 * driver made available in the one descriptor ring and writes used descriptors back into it.
 * Everything in the ring is guest-controlled, so every id, length, flag and address is checked,
 * every walk is bounded, and each violation is a QueueFaultError with its own code (the device then
 * sets DEVICE_NEEDS_RESET). Memory ordering is as for the split ring (see split/device-ring.ts).
 *
 * State (2.8.1): the next available position and the Device Ring Wrap Counter as it applies to
 * reading (`availWrap`), the next used position and the counter as it applies to writing used
 * descriptors (`usedWrap`); both counters start at 1. The slots from the used position up to the
 * available position belong to the device (chains popped and not yet used); the driver owns the rest.
 */

import { QueueFaultError, type QueueFaultCode } from '../../errors.js';
import type { GuestMemory } from '../../memory/guest-memory.js';
import * as packedRingSpec from '../../spec/packed-ring.js';
import { packedDescRingSize } from '../../spec/packed-ring.js';
import * as ringSpec from '../../spec/ring.js';
import type { ChainStorage } from '../chain-storage.js';
import { ringArea } from '../ring-area.js';
import { PACKED_RING } from '../ring-format.js';
import type { DescriptorChain, InOrderRing, RestoredChain } from '../types.js';
import { chainSnapshot, readChains } from '../in-flight-snapshot.js';
import { Redelivery } from '../redelivery.js';
import type { SnapshotReader } from '../../snapshot/snapshot-reader.js';
import { flag, list, string, struct, u16, u32, type SnapshotStruct } from '../../snapshot/snapshot-value.js';
import { usedLenError, usedLenFits } from '../used-len.js';
import { PackedDescriptorWalk } from './descriptor-chain.js';

// The layout constants as this module's own consts: optimised code (V8 11, Node 20) folds a module's
// own const but loads an imported binding from its cell, with a TDZ check, at every use.
const {
  PVIRTQ_DESC_FLAGS,
  PVIRTQ_DESC_ID,
  PVIRTQ_DESC_LEN,
  PVIRTQ_DESC_SIZE,
  PVIRTQ_EVENT_DESC,
  PVIRTQ_EVENT_FLAGS,
  PVIRTQ_EVENT_SUPPRESS_SIZE,
  RING_EVENT_FLAGS_DESC,
  RING_EVENT_FLAGS_DISABLE,
  RING_EVENT_FLAGS_ENABLE,
  RING_EVENT_FLAGS_RESERVED,
  RING_EVENT_OFF_MASK,
  RING_EVENT_WRAP_SHIFT,
  VIRTQ_DESC_F_AVAIL,
  VIRTQ_DESC_F_USED,
} = packedRingSpec;
const { VIRTQ_DESC_F_WRITE } = ringSpec;

/** struct pvirtq_event_suppress: desc_event_flags : 2. */
const EVENT_FLAGS_MASK = 0x3;

export interface PackedQueueOptions {
  readonly index: number;
  /** Queue size (PACKED_RING.isQueueSize: any size 1..32768). */
  readonly size: number;
  readonly memory: GuestMemory;
  /** Guest-physical address of the descriptor ring (queue_desc). */
  readonly desc: number;
  /** Guest-physical address of the driver event suppression structure, the driver area (queue_driver). */
  readonly driver: number;
  /** Guest-physical address of the device event suppression structure, the device area (queue_device). */
  readonly device: number;
  /** VIRTIO_F_EVENT_IDX negotiated: RING_EVENT_FLAGS_DESC is valid in both structures. */
  readonly eventIdx: boolean;
  /** VIRTIO_F_INDIRECT_DESC negotiated; without it an INDIRECT descriptor is a fault. */
  readonly indirect: boolean;
}

/**
 * Device side of one packed virtqueue, created by the transport when the driver enables the queue.
 *
 * `DescriptorChain.head` is the chain's buffer id, and `pushUsed(id, len)` writes the used
 * descriptor at the device's used position, which then skips the number of ring descriptors that
 * chain took (2.8.6): used descriptors go into the ring in the order the device completes them.
 * Chain lifetime and allocation are as for the split ring: one chain object per buffer id, reused.
 */
export class PackedQueue implements InOrderRing {
  readonly index: number;
  readonly size: number;
  private readonly eventIdx: boolean;
  private readonly walker: PackedDescriptorWalk;
  private readonly memory: GuestMemory;
  private readonly descDv: DataView;
  private readonly descBase: number;
  private readonly driverDv: DataView;
  private readonly driverBase: number;
  private readonly deviceDv: DataView;
  private readonly deviceBase: number;
  private nextAvail = 0;
  private availWrap = 1;
  private nextUsed = 0;
  private usedWrap = 1;
  /** Ring slots popped and not yet covered by a used descriptor. */
  private heldSlots = 0;
  /** Ring slots of chains returned by skipUsed(), which the next pushUsed() moves past as well (2.8.8). */
  private skippedSlots = 0;
  /** Ring slots the used position advanced since the last needsInterrupt(), at most 2 * size. */
  private usedSinceCheck = 0;
  /** The used position at the last needsInterrupt(), as offset + size * (1 - wrap). */
  private checkedUsed = 0;
  /** Device event suppression in RING_EVENT_FLAGS_DESC mode: pop() keeps the event at the next position. */
  private trackAvail = false;
  /** Per buffer id: its chain object, whether it is in flight, and how many ring slots its chain took. */
  private readonly chains: (ChainStorage | undefined)[];
  private readonly inFlight: Uint8Array;
  private readonly chainSlots: Uint16Array;
  private inFlightCount = 0;
  /** Per buffer id: when its chain was popped (pops so far), so that a snapshot lists chains in pop order. */
  private readonly popSeq: Float64Array;
  private pops = 0;
  /** Chains restored from a snapshot that pop() hands out again before reading the ring. */
  private readonly redelivery = new Redelivery();
  /** The storage the next walk fills; swapped with the id's own once the id is known. */
  private spare: ChainStorage;

  /** Throws QueueFaultError('ERR_QUEUE_RING_ADDRESS') for a bad size, misaligned or unmapped ring. */
  constructor(options: PackedQueueOptions) {
    const { index, size, memory, desc, driver, device } = options;
    this.index = index;
    this.size = size;
    this.eventIdx = options.eventIdx;
    this.memory = memory;
    if (!PACKED_RING.isQueueSize(size)) {
      throw this.fault('ERR_QUEUE_RING_ADDRESS', `queue size ${size} is not in 1..${PACKED_RING.maxQueueSize}`);
    }
    const align = PACKED_RING.areaAlign;
    const descArea = ringArea(memory, index, 'descriptor ring', desc, align.desc, packedDescRingSize(size));
    const driverArea = ringArea(memory, index, 'driver event suppression', driver, align.driver, PVIRTQ_EVENT_SUPPRESS_SIZE);
    const deviceArea = ringArea(memory, index, 'device event suppression', device, align.device, PVIRTQ_EVENT_SUPPRESS_SIZE);
    this.descDv = descArea.dv;
    this.descBase = descArea.base;
    this.driverDv = driverArea.dv;
    this.driverBase = driverArea.base;
    this.deviceDv = deviceArea.dv;
    this.deviceBase = deviceArea.base;
    this.walker = new PackedDescriptorWalk({
      index,
      size,
      memory,
      descDv: this.descDv,
      descBase: this.descBase,
      indirect: options.indirect,
    });
    this.chains = new Array<ChainStorage | undefined>(size).fill(undefined);
    this.inFlight = new Uint8Array(size);
    this.chainSlots = new Uint16Array(size);
    this.popSeq = new Float64Array(size);
    this.spare = this.walker.newChain();
  }

  /** Ring offset of the next descriptor the device will read. */
  get nextAvailIdx(): number {
    return this.nextAvail;
  }
  /** The Device Ring Wrap Counter the next available descriptor is read with. */
  get availWrapCounter(): number {
    return this.availWrap;
  }
  /** Ring offset where the next used descriptor goes. */
  get nextUsedIdx(): number {
    return this.nextUsed;
  }
  /** The Device Ring Wrap Counter the next used descriptor is written with. */
  get usedWrapCounter(): number {
    return this.usedWrap;
  }
  /** Chains popped and not yet returned with pushUsed(). */
  get inFlightChains(): number {
    return this.inFlightCount;
  }

  /**
   * The next available chain, or null when the descriptor at the next position is not available.
   * Throws QueueFaultError on a guest fault, leaving the queue as it was (the chain stays unpopped).
   */
  pop(): DescriptorChain | null {
    if (this.redelivery.pending) return this.chains[this.redelivery.next()]!;
    const chain = this.spare;
    const slots = this.walker.walk(chain, this.nextAvail, this.availWrap, this.size - this.heldSlots);
    if (slots === 0) return null;
    const id = chain.head;
    if (this.inFlight[id] === 1)
      throw this.fault('ERR_QUEUE_BUFFER_ID_IN_USE', `chain at ${this.nextAvail}: buffer id ${id} is already in flight`);
    this.spare = this.chains[id] ?? this.walker.newChain();
    this.chains[id] = chain;
    this.inFlight[id] = 1;
    this.chainSlots[id] = slots;
    this.popSeq[id] = this.pops++;
    this.inFlightCount++;
    this.heldSlots += slots;
    this.nextAvail += slots;
    if (this.nextAvail >= this.size) {
      this.nextAvail -= this.size;
      this.availWrap ^= 1;
    }
    if (this.trackAvail) this.writeDeviceEvent(RING_EVENT_FLAGS_DESC);
    return chain;
  }

  /**
   * Write the used descriptor for buffer `id` with `len` bytes written. Throws
   * QueueFaultError('ERR_QUEUE_USED_OVERFLOW') when no chain with that id is in flight, and
   * UsageError when `len` exceeds the chain's writable bytes.
   */
  pushUsed(id: number, len: number): void {
    if (this.inFlight[id] !== 1 || !usedLenFits(len, this.chains[id]!.writableBytes)) throw this.usedRefusal(id, len);
    const dv = this.descDv;
    // 2.8.8: after skipped chains, this descriptor overwrites the batch's first and the ring skips all.
    const off = this.descBase + this.nextUsed * PVIRTQ_DESC_SIZE;
    dv.setUint16(off + PVIRTQ_DESC_ID, id, true);
    dv.setUint32(off + PVIRTQ_DESC_LEN, len, true);
    // 2.8.3: WRITE says whether the device wrote any data; 2.8.1: AVAIL and USED both equal the
    // counter. The flags go last: they hand the descriptor to the driver.
    const wrapFlags = this.usedWrap === 1 ? VIRTQ_DESC_F_AVAIL | VIRTQ_DESC_F_USED : 0;
    dv.setUint16(off + PVIRTQ_DESC_FLAGS, wrapFlags | (len > 0 ? VIRTQ_DESC_F_WRITE : 0), true);
    const slots = this.chainSlots[id]! + this.skippedSlots;
    this.skippedSlots = 0;
    this.nextUsed += slots;
    if (this.nextUsed >= this.size) {
      this.nextUsed -= this.size;
      this.usedWrap ^= 1;
    }
    this.heldSlots -= slots;
    this.usedSinceCheck = Math.min(this.usedSinceCheck + slots, 2 * this.size);
    this.release(id);
  }

  /** VIRTIO_F_IN_ORDER (2.8.8): see {@link InOrderRing.skipUsed}. Throws as pushUsed() does for an id not in flight. */
  skipUsed(id: number): void {
    this.inFlightChain(id);
    this.skippedSlots += this.chainSlots[id]!;
    this.release(id);
  }

  /** The chain buffer id `id` names; ERR_QUEUE_USED_OVERFLOW when none is in flight. */
  private inFlightChain(id: number): ChainStorage {
    if (this.inFlight[id] !== 1) throw this.fault('ERR_QUEUE_USED_OVERFLOW', `used descriptor for buffer id ${id}, which is not in flight`);
    return this.chains[id]!;
  }

  /** pushUsed()'s refusal, out of line: throws ERR_QUEUE_USED_OVERFLOW for an id not in flight, else returns the UsageError for `len`. */
  private usedRefusal(id: number, len: number): Error {
    return usedLenError(this.index, id, len, this.inFlightChain(id).writableBytes);
  }

  private release(id: number): void {
    this.inFlight[id] = 0;
    this.inFlightCount--;
  }

  /**
   * Whether the driver wants a used buffer notification for the used descriptors written since the
   * last call (2.8.10, driver event suppression): ENABLE yes, DISABLE no, DESC (with EVENT_IDX) when
   * the used position passed the descriptor offset and wrap counter the driver named. DESC without
   * EVENT_IDX is not valid; it is taken as ENABLE so that the driver misses nothing. Throws
   * QueueFaultError('ERR_QUEUE_EVENT_FLAGS') for the reserved value 3.
   */
  needsInterrupt(): boolean {
    const passed = this.usedSinceCheck;
    const from = this.checkedUsed;
    this.usedSinceCheck = 0;
    this.checkedUsed = this.linear(this.nextUsed, this.usedWrap);
    if (passed === 0) return false;
    // desc_event_flags is the low two bits; the 14 above are reserved (2.8.14) and ignored.
    const flags = this.driverDv.getUint16(this.driverBase + PVIRTQ_EVENT_FLAGS, true) & EVENT_FLAGS_MASK;
    if (flags === RING_EVENT_FLAGS_RESERVED)
      throw this.fault('ERR_QUEUE_EVENT_FLAGS', `driver event suppression flags ${flags} (reserved)`);
    if (flags === RING_EVENT_FLAGS_DISABLE) return false;
    if (flags === RING_EVENT_FLAGS_ENABLE || !this.eventIdx) return true;
    // RING_EVENT_FLAGS_DESC with EVENT_IDX.
    const event = this.driverDv.getUint16(this.driverBase + PVIRTQ_EVENT_DESC, true);
    const offset = event & RING_EVENT_OFF_MASK;
    // An offset outside the ring names no descriptor, so no used descriptor ever reaches it.
    if (offset >= this.size) return false;
    // The event position counted from the position at the last call, over the two laps that
    // offsets and wrap counters tell apart: notify when the used position moved past it.
    const ahead = (this.linear(offset, event >>> RING_EVENT_WRAP_SHIFT) - from + 2 * this.size) % (2 * this.size);
    return ahead < passed;
  }

  /**
   * Ask the driver for available buffer notifications (device event suppression, 2.8.10): DISABLE
   * to stop them; to enable them ENABLE, or with EVENT_IDX DESC naming the next position the device
   * will read, kept current by pop(). After enabling, check hasAvailable() again: chains added
   * meanwhile come with no notification.
   */
  setNotification(enabled: boolean): void {
    this.trackAvail = enabled && this.eventIdx;
    this.writeDeviceEvent(!enabled ? RING_EVENT_FLAGS_DISABLE : this.eventIdx ? RING_EVENT_FLAGS_DESC : RING_EVENT_FLAGS_ENABLE);
  }

  hasAvailable(): boolean {
    if (this.redelivery.pending) return true;
    return this.walker.available(this.nextAvail, this.availWrap);
  }

  /**
   * The ring's state (docs/snapshots.md): positions and wrap counters, notification state and the
   * in-flight chains in pop order; `usedLen` gives the used len of a chain the in-order layer holds back.
   */
  snapshot(usedLen?: (id: number) => number | undefined): SnapshotStruct {
    const ids = [];
    for (let id = 0; id < this.size; id++) if (this.inFlight[id] === 1) ids.push(id);
    ids.sort((a, b) => this.popSeq[a]! - this.popSeq[b]!);
    return struct({
      format: string('packed'),
      nextAvail: u16(this.nextAvail),
      availWrap: flag(this.availWrap === 1),
      nextUsed: u16(this.nextUsed),
      usedWrap: flag(this.usedWrap === 1),
      usedSinceCheck: u32(this.usedSinceCheck),
      checkedUsed: u32(this.checkedUsed),
      trackAvail: flag(this.trackAvail),
      chains: list(ids.map((id) => chainSnapshot(this.chains[id]!, this.chainSlots[id]!, usedLen?.(id)))),
    });
  }

  /**
   * Take the state of `r` (a fresh ring only): throws SnapshotError when the state cannot be this
   * ring's, leaving the ring unusable. As for the split ring, the chains the device model held are
   * handed out again by the next pops; those with a used len (held for order) are returned.
   */
  restore(r: SnapshotReader): RestoredChain[] {
    const size = this.size;
    if (r.choice('format', ['split', 'packed']) !== 'packed')
      throw r.error('ERR_SNAPSHOT_KIND', 'a split ring where the driver negotiated the packed ring');
    const nextAvail = r.int('nextAvail', 'u16', 0, size - 1);
    const availWrap = r.flag('availWrap') ? 1 : 0;
    const nextUsed = r.int('nextUsed', 'u16', 0, size - 1);
    const usedWrap = r.flag('usedWrap') ? 1 : 0;
    const usedSinceCheck = r.int('usedSinceCheck', 'u32', 0, 2 * size);
    const checkedUsed = r.int('checkedUsed', 'u32', 0, 2 * size - 1);
    const trackAvail = r.flag('trackAvail') && this.eventIdx;
    const chains = readChains(r, PACKED_RING, size, this.memory);
    // The device holds the slots from the used position up to the available one (at most one lap).
    const held = nextAvail - nextUsed + (availWrap === usedWrap ? 0 : size);
    const slots = chains.reduce((sum, c) => sum + c.slots, 0);
    if (held < 0 || held > size || held !== slots)
      throw r.error(
        'ERR_SNAPSHOT_IN_FLIGHT',
        `the device holds ${held} ring slots between used ${nextUsed} and available ${nextAvail}, its chains take ${slots}`,
      );
    this.nextAvail = nextAvail;
    this.availWrap = availWrap;
    this.nextUsed = nextUsed;
    this.usedWrap = usedWrap;
    this.usedSinceCheck = usedSinceCheck;
    this.checkedUsed = checkedUsed;
    this.trackAvail = trackAvail;
    this.heldSlots = held;
    return chains.map((c) => {
      const chain = this.chains[c.head] ?? this.walker.newChain();
      this.chains[c.head] = chain;
      chain.load(c.head, c.addrs, c.lens, c.readable);
      this.inFlight[c.head] = 1;
      this.chainSlots[c.head] = c.slots;
      this.popSeq[c.head] = this.pops++;
      this.inFlightCount++;
      if (c.usedLen === undefined) this.redelivery.add(c.head);
      return { chain, usedLen: c.usedLen };
    });
  }

  /** Write the device event suppression structure: the next available position, then `flags`. */
  private writeDeviceEvent(flags: number): void {
    const dv = this.deviceDv;
    if (flags === RING_EVENT_FLAGS_DESC)
      dv.setUint16(this.deviceBase + PVIRTQ_EVENT_DESC, this.nextAvail | (this.availWrap << RING_EVENT_WRAP_SHIFT), true);
    dv.setUint16(this.deviceBase + PVIRTQ_EVENT_FLAGS, flags, true);
  }

  /** A ring position as one number over two laps: offsets of wrap counter 1 first, then those of 0. */
  private linear(offset: number, wrap: number): number {
    return offset + (wrap === 1 ? 0 : this.size);
  }

  private fault(code: QueueFaultCode, message: string): QueueFaultError {
    return new QueueFaultError(code, this.index, message);
  }
}
