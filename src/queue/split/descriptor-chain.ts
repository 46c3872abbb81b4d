/**
 * The split ring's descriptor chain walk (spec 2.7.5): turns the descriptors a head names into a
 * checked chain, stored in a {@link ChainStorage}.
 */

import { QueueFaultError, type QueueFaultCode } from '../../errors.js';
import { joinU64, type GuestMemory } from '../../memory/guest-memory.js';
import * as ringSpec from '../../spec/ring.js';
import { BufferBounds } from '../buffer-bounds.js';
import { ChainSlots, ChainStorage, refusalMessage, type ChainStorageFault } from '../chain-storage.js';
import { IndirectTable } from '../indirect-table.js';
import { SPLIT_RING } from '../ring-format.js';

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
} = ringSpec;

/** The format's rule, read once: the walk compares with a constant rather than a property. */
const MAX_CHAIN_BYTES = SPLIT_RING.maxChainBytes;

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
  private readonly bounds: BufferBounds;
  private readonly table: IndirectTable;
  /** Where walks put each head's first buffers (see {@link ChainSlots}). */
  private readonly slots: ChainSlots;

  constructor(options: DescriptorWalkOptions) {
    const { memory, size } = options;
    this.index = options.index;
    this.size = size;
    this.maxBuffers = SPLIT_RING.maxChainBuffers(size);
    this.memory = memory;
    this.indirect = options.indirect;
    this.descDv = options.descDv;
    this.descBase = options.descBase;
    this.bounds = new BufferBounds(memory);
    this.table = new IndirectTable(options.index, size, memory, this.bounds);
    this.slots = new ChainSlots(size, this.maxBuffers);
  }

  /** Storage for a chain of this queue, up to the chain limit. */
  newChain(): ChainStorage {
    return new ChainStorage(this.memory, this.maxBuffers, this.slots);
  }

  /**
   * Walk the chain at `head` into `chain` (made by {@link newChain}); throws QueueFaultError on the
   * first violation. A chain of one direct descriptor, the commonest shape (a receive buffer, a
   * frame with its header), takes a path without the loop: neither rule of {@link ChainStorage} can
   * refuse a chain's first buffer, one buffer cannot reach the byte limit, and one descriptor cannot
   * make a loop or name a next one.
   */
  walk(chain: ChainStorage, head: number): void {
    const dv = this.descDv;
    const off = this.descBase + head * VIRTQ_DESC_SIZE;
    const flags = dv.getUint16(off + VIRTQ_DESC_FLAGS, true);
    if ((flags & (VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_INDIRECT)) !== 0) return this.walkList(chain, head);
    const len = dv.getUint32(off + VIRTQ_DESC_LEN, true);
    const addr = joinU64(dv.getUint32(off + VIRTQ_DESC_ADDR, true), dv.getUint32(off + VIRTQ_DESC_ADDR + 4, true));
    if (!this.bounds.inside(addr, len)) throw this.bufferAddressFault(head, addr, len);
    const slots = this.slots;
    const at = head * slots.perHead;
    slots.addrs[at] = addr;
    slots.lens[at] = len;
    if ((flags & VIRTQ_DESC_F_WRITE) !== 0) chain.fillAt(head, 1, 0, 0, len, slots.addrs, slots.lens, at);
    else chain.fillAt(head, 1, 1, len, 0, slots.addrs, slots.lens, at);
  }

  /**
   * Walk a chain of several descriptors, or an indirect one, at `head`. The chain's totals stay in
   * locals until the end (see {@link ChainStorage}), and every fault's message is built out of line,
   * so that the loop stays short.
   */
  private walkList(chain: ChainStorage, head: number): void {
    let dv = this.descDv;
    let base = this.descBase;
    let entries = this.size; // descriptors in the table being walked
    let budget = entries; // descriptors still to be read in it: a loop runs this out
    let inIndirect = false;
    let i = head;
    const bounds = this.bounds;
    // Buffers go to the head's slots until the chain outgrows them, then to the chain's own arrays.
    const slots = this.slots;
    let addrs = slots.addrs;
    let lens = slots.lens;
    let capacity = slots.perHead;
    let at = head * capacity;
    let own = false;
    let count = 0;
    let readable = 0;
    let readableBytes = 0;
    let writableBytes = 0;
    for (;;) {
      if (budget === 0) throw this.fault('ERR_QUEUE_CHAIN_TOO_LONG', `chain ${head} visits more than ${entries} descriptors (a loop)`);
      budget--;
      const off = base + i * VIRTQ_DESC_SIZE;
      const flags = dv.getUint16(off + VIRTQ_DESC_FLAGS, true);
      const len = dv.getUint32(off + VIRTQ_DESC_LEN, true);
      const addr = joinU64(dv.getUint32(off + VIRTQ_DESC_ADDR, true), dv.getUint32(off + VIRTQ_DESC_ADDR + 4, true));
      if ((flags & VIRTQ_DESC_F_INDIRECT) !== 0) {
        const table = this.openIndirect(head, i, flags, addr, len, inIndirect);
        dv = table.dv!;
        base = table.base;
        entries = budget = table.entries;
        inIndirect = true;
        i = 0;
        continue;
      }
      if (!bounds.inside(addr, len)) throw this.bufferAddressFault(head, addr, len);
      if ((flags & VIRTQ_DESC_F_WRITE) !== 0) {
        writableBytes += len;
      } else {
        if (count !== readable) throw this.refusal(head, count, 'ERR_QUEUE_WRITE_BEFORE_READ');
        readable++;
        readableBytes += len;
      }
      if (count === capacity) {
        if (!(own ? chain.room(count) : chain.spill(count, addrs, lens, at))) throw this.refusal(head, count, 'ERR_QUEUE_CHAIN_TOO_LONG');
        own = true;
        addrs = chain.addrs;
        lens = chain.lens;
        at = 0;
        capacity = addrs.length;
      }
      addrs[at + count] = addr;
      lens[at + count] = len;
      count++;
      if ((flags & VIRTQ_DESC_F_NEXT) === 0) break;
      i = dv.getUint16(off + VIRTQ_DESC_NEXT, true);
      if (i >= entries) throw this.fault('ERR_QUEUE_DESC_INDEX', `chain ${head}: next ${i} outside a table of ${entries}`);
    }
    if (readableBytes + writableBytes > MAX_CHAIN_BYTES) throw this.chainBytesFault(head, readableBytes + writableBytes);
    chain.fillAt(head, count, readable, readableBytes, writableBytes, addrs, lens, at);
  }

  /**
   * Open the table an INDIRECT descriptor refers to, checked (2.7.5.3: zero or more direct
   * descriptors, then one that refers to a table; its WRITE flag is ignored). Apart from walk() so
   * that walk stays small.
   */
  private openIndirect(head: number, i: number, flags: number, addr: number, len: number, inIndirect: boolean): IndirectTable {
    if (!this.indirect)
      throw this.fault('ERR_QUEUE_INDIRECT_UNNEGOTIATED', `chain ${head}: INDIRECT descriptor without VIRTIO_F_INDIRECT_DESC`);
    if (inIndirect) throw this.fault('ERR_QUEUE_NESTED_INDIRECT', `chain ${head}: INDIRECT descriptor inside an indirect table`);
    if ((flags & VIRTQ_DESC_F_NEXT) !== 0)
      throw this.fault('ERR_QUEUE_INDIRECT_WITH_NEXT', `chain ${head}: descriptor ${i} has INDIRECT and NEXT`);
    this.table.open(head, addr, len);
    return this.table;
  }

  private bufferAddressFault(head: number, addr: number, len: number): QueueFaultError {
    return this.fault(
      'ERR_QUEUE_BUFFER_ADDRESS',
      `chain ${head}: buffer [0x${addr.toString(16)}, +0x${len.toString(16)}) outside guest memory`,
    );
  }

  private refusal(head: number, count: number, code: ChainStorageFault): QueueFaultError {
    return this.fault(code, `chain ${head}: buffer ${count} (${refusalMessage(code)})`);
  }

  private chainBytesFault(head: number, bytes: number): QueueFaultError {
    return this.fault('ERR_QUEUE_CHAIN_TOO_LONG', `chain ${head} holds ${bytes} bytes, more than 2^32`);
  }

  private fault(code: QueueFaultCode, message: string): QueueFaultError {
    return new QueueFaultError(code, this.index, message);
  }
}
