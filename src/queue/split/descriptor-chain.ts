/**
 * Split-ring descriptor chains (spec 2.7.5): the walk that turns the descriptors a head names into a
 * checked chain, and the storage of a popped chain. The storage keeps the buffers' addresses and
 * lengths in typed arrays that grow (by doubling, up to the chain limit) only when a chain longer
 * than any before arrives, so that popping allocates nothing in the steady state.
 */

import { QueueFaultError, UsageError, type QueueFaultCode } from '../../errors.js';
import { joinU64, type GuestMemory } from '../../memory/guest-memory.js';
import * as ring from '../../spec/ring.js';
import { SPLIT_RING } from '../ring-format.js';
import type { DescriptorChain } from '../types.js';

// The layout constants as this module's own consts: optimised code (V8 11, Node 20) folds a module's
// own const but loads an imported binding from its cell, with a TDZ check, at every use.
const {
  VIRTQ_DESC_ADDR,
  VIRTQ_DESC_F_INDIRECT,
  VIRTQ_DESC_F_NEXT,
  VIRTQ_DESC_F_WRITE,
  VIRTQ_DESC_FLAGS,
  VIRTQ_DESC_LEN,
  VIRTQ_DESC_NEXT,
  VIRTQ_DESC_SIZE,
} = ring;
const INITIAL_CAPACITY = 4;
/** The format's rule, read once: the walk compares with a constant rather than a property. */
const MAX_CHAIN_BYTES = SPLIT_RING.maxChainBytes;

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
  addrs: Float64Array;
  lens: Uint32Array;

  /** Made by {@link DescriptorWalk.newChain}, with room for `capacity` buffers at first. */
  constructor(
    private readonly memory: GuestMemory,
    capacity: number,
  ) {
    this.addrs = new Float64Array(capacity);
    this.lens = new Uint32Array(capacity);
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

  /** Make room for buffer number `count`, up to `limit` (the walk calls this only when count reaches capacity). */
  grow(limit: number): void {
    const capacity = Math.min(this.addrs.length * 2, limit);
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

export interface DescriptorWalkOptions {
  /** Queue index, for fault messages. */
  readonly index: number;
  readonly size: number;
  readonly memory: GuestMemory;
  /** The descriptor table, already checked to lie in guest memory, as a DataView and offset. */
  readonly descDv: DataView;
  readonly descBase: number;
  /** VIRTIO_F_INDIRECT_DESC negotiated; without it an INDIRECT descriptor is a fault. */
  readonly indirect: boolean;
}

/**
 * Walks the chain at a head of one queue's descriptor table. Limits (spec 2.7.5.3.1, "a driver MUST
 * NOT create a descriptor chain longer than the Queue Size"): a chain holds at most `size` buffers,
 * an indirect table at most `size` descriptors, and the walk reads at most `size` descriptors of the
 * table it is in, so a loop ends as ERR_QUEUE_CHAIN_TOO_LONG. Zero-length buffers are accepted (the
 * spec does not forbid them) but their address must still lie in guest memory.
 */
export class DescriptorWalk {
  private readonly index: number;
  private readonly size: number;
  private readonly maxBuffers: number;
  private readonly memory: GuestMemory;
  private readonly indirect: boolean;
  private readonly descDv: DataView;
  private readonly descBase: number;
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

  constructor(options: DescriptorWalkOptions) {
    const { memory, size } = options;
    this.index = options.index;
    this.size = size;
    this.maxBuffers = SPLIT_RING.maxChainBuffers(size);
    this.memory = memory;
    this.indirect = options.indirect;
    this.descDv = options.descDv;
    this.descBase = options.descBase;
    this.topEnd = memory.end;
    this.topStart = lowestStart(memory);
    this.lowEnd = memory.contains(0, 0) ? highestEnd(memory) : -1;
  }

  /**
   * Storage for a chain of this queue. Its capacity starts at most at the chain limit and grows up
   * to it exactly, so the walk checks the limit only when the storage is full.
   */
  newChain(): SplitDescriptorChain {
    return new SplitDescriptorChain(this.memory, Math.min(INITIAL_CAPACITY, this.maxBuffers));
  }

  /** Walk the chain at `head` into `chain` (made by {@link newChain}); throws QueueFaultError on the first violation. */
  walk(chain: SplitDescriptorChain, head: number): void {
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
      if (budget === 0) throw this.loopFault(head, entries);
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
      if (!this.inside(addr, len)) throw this.addressFault(head, 'buffer', addr, len);
      if ((flags & VIRTQ_DESC_F_WRITE) !== 0) {
        writableBytes += len;
      } else {
        if (count !== readable) throw this.writeBeforeReadFault(head, count);
        readable++;
        readableBytes += len;
      }
      if (count === lens.length) {
        if (count === this.maxBuffers) throw this.tooManyBuffersFault(head, count);
        chain.grow(this.maxBuffers);
        addrs = chain.addrs;
        lens = chain.lens;
      }
      addrs[count] = addr;
      lens[count] = len;
      count++;
      if ((flags & VIRTQ_DESC_F_NEXT) === 0) break;
      i = dv.getUint16(off + VIRTQ_DESC_NEXT, true);
      if (i >= entries) throw this.descIndexFault(head, i, entries);
    }
    if (readableBytes + writableBytes > MAX_CHAIN_BYTES) throw this.tooManyBytesFault(head, readableBytes + writableBytes);
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
    if (!this.indirect)
      throw this.fault('ERR_QUEUE_INDIRECT_UNNEGOTIATED', `chain ${head}: INDIRECT descriptor without VIRTIO_F_INDIRECT_DESC`);
    if (inIndirect) throw this.fault('ERR_QUEUE_NESTED_INDIRECT', `chain ${head}: INDIRECT descriptor inside an indirect table`);
    if ((flags & VIRTQ_DESC_F_NEXT) !== 0)
      throw this.fault('ERR_QUEUE_INDIRECT_WITH_NEXT', `chain ${head}: descriptor ${i} has INDIRECT and NEXT`);
    if (len === 0 || len % VIRTQ_DESC_SIZE !== 0 || len / VIRTQ_DESC_SIZE > this.size) {
      throw this.fault(
        'ERR_QUEUE_INDIRECT_LENGTH',
        `chain ${head}: indirect table of ${len} bytes (a non-zero multiple of 16, at most ${this.size} descriptors)`,
      );
    }
    if (!this.inside(addr, len)) throw this.addressFault(head, 'indirect table', addr, len);
    return this.memory.view(addr, len);
  }

  /**
   * Whether [addr, addr + len) lies in guest memory. `addr` comes from joinU64 and `len` from a
   * le32, so both are non-negative and an address at or above 2^53 is above every window.
   */
  private inside(addr: number, len: number): boolean {
    return (addr >= this.topStart && addr <= this.topEnd - len) || addr <= this.lowEnd - len || this.memory.contains(addr, len);
  }

  // The faults walk() throws, each built apart from it: their messages are most of its bytecode, and
  // with them inline walk() is too large for V8 to inline into pop().
  private loopFault(head: number, entries: number): QueueFaultError {
    return this.fault('ERR_QUEUE_CHAIN_TOO_LONG', `chain ${head} visits more than ${entries} descriptors (a loop)`);
  }
  private addressFault(head: number, what: string, addr: number, len: number): QueueFaultError {
    return this.fault(
      'ERR_QUEUE_BUFFER_ADDRESS',
      `chain ${head}: ${what} [0x${addr.toString(16)}, +0x${len.toString(16)}) outside guest memory`,
    );
  }
  private writeBeforeReadFault(head: number, count: number): QueueFaultError {
    return this.fault('ERR_QUEUE_WRITE_BEFORE_READ', `chain ${head}: device-readable buffer ${count} after a device-writable one`);
  }
  private tooManyBuffersFault(head: number, count: number): QueueFaultError {
    return this.fault('ERR_QUEUE_CHAIN_TOO_LONG', `chain ${head} has more than ${count} buffers`);
  }
  private descIndexFault(head: number, i: number, entries: number): QueueFaultError {
    return this.fault('ERR_QUEUE_DESC_INDEX', `chain ${head}: next ${i} outside a table of ${entries}`);
  }
  private tooManyBytesFault(head: number, bytes: number): QueueFaultError {
    return this.fault('ERR_QUEUE_CHAIN_TOO_LONG', `chain ${head} holds ${bytes} bytes, more than 2^32`);
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
