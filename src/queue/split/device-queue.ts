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

import { QueueFaultError, UsageError, type QueueFaultCode } from '../../errors.js';
import { joinU64, type GuestMemory } from '../../memory/guest-memory.js';
import {
  VIRTQ_AVAIL_ALIGN,
  VIRTQ_AVAIL_ELEM_SIZE,
  VIRTQ_AVAIL_F_NO_INTERRUPT,
  VIRTQ_AVAIL_FLAGS,
  VIRTQ_AVAIL_IDX,
  VIRTQ_AVAIL_RING,
  VIRTQ_DESC_ADDR,
  VIRTQ_DESC_ALIGN,
  VIRTQ_DESC_F_INDIRECT,
  VIRTQ_DESC_F_NEXT,
  VIRTQ_DESC_F_WRITE,
  VIRTQ_DESC_FLAGS,
  VIRTQ_DESC_LEN,
  VIRTQ_DESC_NEXT,
  VIRTQ_DESC_SIZE,
  VIRTQ_MAX_SIZE,
  VIRTQ_USED_ALIGN,
  VIRTQ_USED_ELEM_SIZE,
  VIRTQ_USED_F_NO_NOTIFY,
  VIRTQ_USED_FLAGS,
  VIRTQ_USED_IDX,
  VIRTQ_USED_RING,
  availRingSize,
  descTableSize,
  usedRingSize,
  vringNeedEvent,
} from '../../spec/ring.js';
import type { DescriptorChain, DeviceQueue } from '../types.js';
import { SplitDescriptorChain } from './descriptor-chain.js';

/** 2.7.4 driver requirement: a descriptor chain holds at most 2^32 bytes in total. */
const MAX_CHAIN_BYTES = 2 ** 32;

export interface SplitQueueOptions {
  readonly index: number;
  /** Queue size: a power of two, at most 32768. */
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

/** A ring area resolved once to a DataView over its backing buffer and the area's offset in it. */
interface RingArea {
  readonly dv: DataView;
  readonly base: number;
}

/**
 * Device side of one split virtqueue, created by the transport when the driver enables the queue.
 *
 * Chain lifetime: the chain `pop()` returns belongs to the device model until it calls
 * `pushUsed(chain.head, len)`; from then on the queue reuses the object for a later chain, so the
 * model must not keep it. An asynchronous device may hold any number of chains at once. There is
 * one chain object per head, reused, so in the steady state neither `pop()` nor `pushUsed()`
 * allocates (except one zero-copy view per indirect table).
 *
 * Limits (spec 2.7.5.3.1, "a driver MUST NOT create a descriptor chain longer than the Queue
 * Size"): a chain holds at most `size` buffers, an indirect table at most `size` descriptors,
 * and the walk reads at most `size` descriptors of the table it is in, so a loop ends as
 * ERR_QUEUE_CHAIN_TOO_LONG. Zero-length buffers are accepted (the spec does not forbid them) but
 * their address must still lie in guest memory.
 */
export class SplitQueue implements DeviceQueue {
  readonly index: number;
  readonly size: number;
  private readonly memory: GuestMemory;
  private readonly mask: number;
  private readonly eventIdx: boolean;
  private readonly indirect: boolean;
  private readonly descDv: DataView;
  private readonly descBase: number;
  private readonly availDv: DataView;
  private readonly availBase: number;
  private readonly usedDv: DataView;
  private readonly usedBase: number;
  private lastAvail = 0;
  /** avail.idx as last read; chains up to it were validated as available. */
  private availShadow = 0;
  private used = 0;
  /** used.idx at the last needsInterrupt() call. */
  private signalledUsed = 0;
  private notifyEnabled = true;
  /**
   * One chain object per head, made the first time the head is popped and reused whenever it comes
   * back (a head names at most one chain in flight), and whether that chain is in flight.
   */
  private readonly chains: (SplitDescriptorChain | undefined)[];
  private readonly inFlight: Uint8Array;
  private inFlightCount = 0;
  /**
   * Two address windows the memory confirmed as one region each at construction (the region at 0
   * and the topmost one): a buffer inside either needs no call into the memory, others ask it.
   * `lowEnd` is -1 when address 0 is not mapped.
   */
  private readonly lowEnd: number;
  private readonly topStart: number;
  private readonly topEnd: number;
  /** The buffer and DataView of the last indirect table, reused while tables share a region. */
  private tableBuffer: ArrayBufferLike | undefined;
  private tableDv: DataView | undefined;

  /** Throws QueueFaultError('ERR_QUEUE_RING_ADDRESS') for a bad size, misaligned or unmapped ring. */
  constructor(options: SplitQueueOptions) {
    const { index, size, memory, desc, driver, device } = options;
    this.index = index;
    this.size = size;
    this.memory = memory;
    this.mask = size - 1;
    this.eventIdx = options.eventIdx;
    this.indirect = options.indirect;
    if (!(Number.isInteger(size) && size >= 1 && size <= VIRTQ_MAX_SIZE && (size & (size - 1)) === 0)) {
      throw this.fault('ERR_QUEUE_RING_ADDRESS', `queue size ${size} is not a power of two in 1..${VIRTQ_MAX_SIZE}`);
    }
    const descArea = this.area('descriptor table', desc, VIRTQ_DESC_ALIGN, descTableSize(size));
    const availArea = this.area('available ring', driver, VIRTQ_AVAIL_ALIGN, availRingSize(size));
    const usedArea = this.area('used ring', device, VIRTQ_USED_ALIGN, usedRingSize(size));
    this.descDv = descArea.dv;
    this.descBase = descArea.base;
    this.availDv = availArea.dv;
    this.availBase = availArea.base;
    this.usedDv = usedArea.dv;
    this.usedBase = usedArea.base;
    this.chains = new Array<SplitDescriptorChain | undefined>(size).fill(undefined);
    this.inFlight = new Uint8Array(size);
    this.topEnd = memory.end;
    this.topStart = lowestStart(memory);
    this.lowEnd = memory.contains(0, 0) ? highestEnd(memory) : -1;
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
    return this.inFlightCount;
  }

  /**
   * The next available chain, or null when the ring is empty. Throws QueueFaultError on a guest
   * fault, leaving the queue as it was (the faulty chain stays unpopped).
   */
  pop(): DescriptorChain | null {
    if (this.lastAvail === this.availShadow && this.readAvailIdx() === this.lastAvail) return null;
    const slot = this.lastAvail & this.mask;
    const head = this.availDv.getUint16(this.availBase + VIRTQ_AVAIL_RING + slot * VIRTQ_AVAIL_ELEM_SIZE, true);
    if (head >= this.size) throw this.fault('ERR_QUEUE_HEAD_INDEX', `avail ring slot ${slot} names descriptor ${head} of ${this.size}`);
    if (this.inFlight[head] === 1) throw this.fault('ERR_QUEUE_HEAD_IN_USE', `avail ring slot ${slot} names head ${head}, already in flight`);
    const chain = (this.chains[head] ??= new SplitDescriptorChain(this.memory));
    this.walk(chain, head);
    this.inFlight[head] = 1;
    this.inFlightCount++;
    this.lastAvail = (this.lastAvail + 1) & 0xffff;
    return chain;
  }

  /**
   * Return chain `head` to the driver with `len` bytes written. Throws
   * QueueFaultError('ERR_QUEUE_USED_OVERFLOW') when no chain with that head is in flight, and
   * UsageError when `len` exceeds the chain's writable bytes.
   */
  pushUsed(head: number, len: number): void {
    if (this.inFlight[head] !== 1) throw this.fault('ERR_QUEUE_USED_OVERFLOW', `used element for head ${head}, which is not in flight`);
    const chain = this.chains[head]!;
    if (!(len >>> 0 === len && len <= chain.writableBytes)) {
      throw new UsageError(`queue ${this.index}: used len ${len} for head ${head} with ${chain.writableBytes} writable bytes`);
    }
    const dv = this.usedDv;
    const elem = this.usedBase + VIRTQ_USED_RING + (this.used & this.mask) * VIRTQ_USED_ELEM_SIZE;
    dv.setUint32(elem, head, true);
    dv.setUint32(elem + 4, len, true);
    // 2.7.8: the element is written before used.idx moves past it.
    this.used = (this.used + 1) & 0xffff;
    dv.setUint16(this.usedBase + VIRTQ_USED_IDX, this.used, true);
    this.inFlight[head] = 0;
    this.inFlightCount--;
  }

  needsInterrupt(): boolean {
    const old = this.signalledUsed;
    const now = this.used;
    this.signalledUsed = now;
    if (old === now) return false;
    if (this.eventIdx) return vringNeedEvent(this.availDv.getUint16(this.availBase + VIRTQ_AVAIL_RING + this.size * VIRTQ_AVAIL_ELEM_SIZE, true), now, old);
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
      throw this.fault('ERR_QUEUE_AVAIL_INDEX', `avail idx ${idx} with last avail idx ${this.lastAvail}, used idx ${this.used}, size ${this.size}`);
    }
    this.availShadow = idx;
    if (this.eventIdx && this.notifyEnabled) this.writeAvailEvent(idx);
    return idx;
  }

  private writeAvailEvent(value: number): void {
    this.usedDv.setUint16(this.usedBase + VIRTQ_USED_RING + this.size * VIRTQ_USED_ELEM_SIZE, value, true);
  }

  /** Walk the chain at `head` into `chain`; throws QueueFaultError on the first violation. */
  private walk(chain: SplitDescriptorChain, head: number): void {
    const size = this.size;
    let dv = this.descDv;
    let base = this.descBase;
    let entries = size; // descriptors in the table being walked
    let budget = size; // descriptors still to be read in it: a loop runs this out
    let inIndirect = false;
    let i = head;
    let count = 0;
    let readable = 0;
    let readableBytes = 0;
    let writableBytes = 0;
    let addrs = chain.addrs;
    let lens = chain.lens;
    for (;;) {
      if (budget === 0) throw this.fault('ERR_QUEUE_CHAIN_TOO_LONG', `chain ${head} visits more than ${entries} descriptors (a loop)`);
      budget--;
      const off = base + i * VIRTQ_DESC_SIZE;
      const flags = dv.getUint16(off + VIRTQ_DESC_FLAGS, true);
      const len = dv.getUint32(off + VIRTQ_DESC_LEN, true);
      const addr = joinU64(dv.getUint32(off + VIRTQ_DESC_ADDR, true), dv.getUint32(off + VIRTQ_DESC_ADDR + 4, true));
      if ((flags & VIRTQ_DESC_F_INDIRECT) !== 0) {
        const table = this.indirectTable(head, i, flags, addr, len, inIndirect);
        if (table.buffer !== this.tableBuffer) {
          this.tableBuffer = table.buffer;
          this.tableDv = new DataView(table.buffer);
        }
        dv = this.tableDv!;
        base = table.byteOffset;
        entries = budget = len / VIRTQ_DESC_SIZE;
        inIndirect = true;
        i = 0;
        continue;
      }
      if (!this.inside(addr, len)) {
        throw this.fault('ERR_QUEUE_BUFFER_ADDRESS', `chain ${head}: buffer [0x${addr.toString(16)}, +0x${len.toString(16)}) outside guest memory`);
      }
      if ((flags & VIRTQ_DESC_F_WRITE) !== 0) {
        writableBytes += len;
      } else {
        if (count !== readable) throw this.fault('ERR_QUEUE_WRITE_BEFORE_READ', `chain ${head}: device-readable buffer ${count} after a device-writable one`);
        readable++;
        readableBytes += len;
      }
      if (count === size) throw this.fault('ERR_QUEUE_CHAIN_TOO_LONG', `chain ${head} has more than ${size} buffers`);
      if (count === lens.length) {
        chain.grow();
        addrs = chain.addrs;
        lens = chain.lens;
      }
      addrs[count] = addr;
      lens[count] = len;
      count++;
      if ((flags & VIRTQ_DESC_F_NEXT) === 0) break;
      i = dv.getUint16(off + VIRTQ_DESC_NEXT, true);
      if (i >= entries) throw this.fault('ERR_QUEUE_DESC_INDEX', `chain ${head}: next ${i} outside a table of ${entries}`);
    }
    if (readableBytes + writableBytes > MAX_CHAIN_BYTES) {
      throw this.fault('ERR_QUEUE_CHAIN_TOO_LONG', `chain ${head} holds ${readableBytes + writableBytes} bytes, more than 2^32`);
    }
    chain.head = head;
    chain.count = count;
    chain.readable = readable;
    chain.readableBytes = readableBytes;
    chain.writableBytes = writableBytes;
  }

  /**
   * The table an INDIRECT descriptor refers to, checked (2.7.5.3: zero or more direct descriptors,
   * then one that refers to a table; its WRITE flag is ignored). Apart from walk() so that walk
   * stays small enough for V8 to inline into pop().
   */
  private indirectTable(head: number, i: number, flags: number, addr: number, len: number, inIndirect: boolean): Uint8Array {
    if (!this.indirect) throw this.fault('ERR_QUEUE_INDIRECT_UNNEGOTIATED', `chain ${head}: INDIRECT descriptor without VIRTIO_F_INDIRECT_DESC`);
    if (inIndirect) throw this.fault('ERR_QUEUE_NESTED_INDIRECT', `chain ${head}: INDIRECT descriptor inside an indirect table`);
    if ((flags & VIRTQ_DESC_F_NEXT) !== 0) throw this.fault('ERR_QUEUE_INDIRECT_WITH_NEXT', `chain ${head}: descriptor ${i} has INDIRECT and NEXT`);
    if (len === 0 || len % VIRTQ_DESC_SIZE !== 0 || len / VIRTQ_DESC_SIZE > this.size) {
      throw this.fault('ERR_QUEUE_INDIRECT_LENGTH', `chain ${head}: indirect table of ${len} bytes (a non-zero multiple of 16, at most ${this.size} descriptors)`);
    }
    if (!this.inside(addr, len)) throw this.fault('ERR_QUEUE_BUFFER_ADDRESS', `chain ${head}: indirect table [0x${addr.toString(16)}, +0x${len.toString(16)}) outside guest memory`);
    return this.memory.view(addr, len);
  }

  /**
   * Whether [addr, addr + len) lies in guest memory. `addr` comes from joinU64 and `len` from a
   * le32, so both are non-negative and an address at or above 2^53 is above every window.
   */
  private inside(addr: number, len: number): boolean {
    return (addr >= this.topStart && addr <= this.topEnd - len) || addr <= this.lowEnd - len || this.memory.contains(addr, len);
  }

  /** Check a ring area once and resolve it to a zero-copy DataView. */
  private area(name: string, addr: number, align: number, len: number): RingArea {
    if (!(addr % align === 0 && this.memory.contains(addr, len))) {
      throw this.fault('ERR_QUEUE_RING_ADDRESS', `${name} [0x${addr.toString(16)}, +0x${len.toString(16)}) is not ${align}-byte aligned inside guest memory`);
    }
    const bytes = this.memory.view(addr, len);
    return { dv: new DataView(bytes.buffer), base: bytes.byteOffset };
  }

  private fault(code: QueueFaultCode, message: string): QueueFaultError {
    return new QueueFaultError(code, this.index, message);
  }
}

/** The lowest `start` with [start, memory.end) inside one region (binary search: contains is monotone). */
function lowestStart(memory: GuestMemory): number {
  let lo = 0; // candidates in [lo, hi]; hi always qualifies (an empty range at the end)
  let hi = memory.end;
  if (!memory.contains(hi, 0)) return Infinity;
  while (lo < hi) {
    const mid = Math.floor((lo + hi) / 2);
    if (memory.contains(mid, memory.end - mid)) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

/** The highest `end` with [0, end) inside one region, given that address 0 is mapped. */
function highestEnd(memory: GuestMemory): number {
  let lo = 0; // [0, lo) always qualifies
  let hi = memory.end;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (memory.contains(0, mid)) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}
