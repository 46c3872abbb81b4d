/**
 * The packed ring's descriptor chain walk (spec 2.8): from the device's next available position,
 * the descriptors the driver made available for the current wrap counter, chained by NEXT in ring
 * order, or one descriptor referring to an indirect table; checked and stored in a
 * {@link ChainStorage} whose `head` is the chain's buffer id.
 */

import { QueueFaultError, type QueueFaultCode } from '../../errors.js';
import { joinU64, type GuestMemory } from '../../memory/guest-memory.js';
import * as packedRingSpec from '../../spec/packed-ring.js';
import * as ringSpec from '../../spec/ring.js';
import { BufferBounds } from '../buffer-bounds.js';
import { ChainStorage, refusalMessage, type ChainStorageFault } from '../chain-storage.js';
import { IndirectTable } from '../indirect-table.js';
import { PACKED_RING } from '../ring-format.js';

// The layout constants as this module's own consts: optimised code (V8 11, Node 20) folds a module's
// own const but loads an imported binding from its cell, with a TDZ check, at every use.
const { PVIRTQ_DESC_ADDR, PVIRTQ_DESC_FLAGS, PVIRTQ_DESC_ID, PVIRTQ_DESC_LEN, PVIRTQ_DESC_SIZE, VIRTQ_DESC_F_AVAIL, VIRTQ_DESC_F_USED } =
  packedRingSpec;
const { VIRTQ_DESC_F_INDIRECT, VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE } = ringSpec;

/** The format's rule, read once: the walk compares with a constant rather than a property. */
const MAX_CHAIN_BYTES = PACKED_RING.maxChainBytes;
const AVAIL_USED = VIRTQ_DESC_F_AVAIL | VIRTQ_DESC_F_USED;

/**
 * Whether descriptor `flags` mark it available for ring wrap counter `wrap` (0 or 1): AVAIL equal to
 * the counter and USED its inverse (2.8.1).
 */
export function isAvailable(flags: number, wrap: number): boolean {
  return (flags & AVAIL_USED) === (wrap === 1 ? VIRTQ_DESC_F_AVAIL : VIRTQ_DESC_F_USED);
}

export interface PackedDescriptorWalkOptions {
  /** Queue index, for fault messages. */
  readonly index: number;
  readonly size: number;
  readonly memory: GuestMemory;
  /** The descriptor ring, already checked to lie in guest memory, as a DataView and offset. */
  readonly descDv: DataView;
  readonly descBase: number;
  /** VIRTIO_F_INDIRECT_DESC negotiated; without it an INDIRECT descriptor is a fault. */
  readonly indirect: boolean;
}

/**
 * Walks the chain at a position of one queue's descriptor ring. Each descriptor's flags are read
 * before its other fields (the driver writes them last, 2.8.21.1), the head's first of all. Limits:
 * a chain takes at most the ring slots the device does not hold (`free`), never more than the queue
 * size, and an indirect table holds at most `size` descriptors (2.8.17, 2.8.19). Zero-length
 * buffers are accepted, as in the split ring.
 */
export class PackedDescriptorWalk {
  private readonly index: number;
  private readonly size: number;
  private readonly memory: GuestMemory;
  private readonly indirect: boolean;
  private readonly descDv: DataView;
  private readonly descBase: number;
  private readonly bounds: BufferBounds;
  private readonly table: IndirectTable;

  constructor(options: PackedDescriptorWalkOptions) {
    const { memory, size } = options;
    this.index = options.index;
    this.size = size;
    this.memory = memory;
    this.indirect = options.indirect;
    this.descDv = options.descDv;
    this.descBase = options.descBase;
    this.bounds = new BufferBounds(memory);
    this.table = new IndirectTable(options.index, size, memory, this.bounds);
  }

  /** Storage for a chain of this queue, up to the chain limit. */
  newChain(): ChainStorage {
    return new ChainStorage(this.memory, PACKED_RING.maxChainBuffers(this.size));
  }

  /** Whether the descriptor at ring offset `pos` is available for wrap counter `wrap`. */
  available(pos: number, wrap: number): boolean {
    return isAvailable(this.descDv.getUint16(this.descBase + pos * PVIRTQ_DESC_SIZE + PVIRTQ_DESC_FLAGS, true), wrap);
  }

  /**
   * Walk the chain whose first descriptor is at ring offset `pos`, the device's wrap counter being
   * `wrap`, into `chain` (made by {@link newChain}), with `free` ring slots not held by the device.
   * Returns the number of ring descriptors the chain takes, or 0 when the descriptor at `pos` is not
   * available; `chain.head` is then the buffer id. Throws QueueFaultError on the first violation.
   */
  walk(chain: ChainStorage, pos: number, wrap: number, free: number): number {
    const dv = this.descDv;
    const size = this.size;
    const descBase = this.descBase;
    let off = descBase + pos * PVIRTQ_DESC_SIZE;
    let flags = dv.getUint16(off + PVIRTQ_DESC_FLAGS, true);
    if (!isAvailable(flags, wrap)) return 0;
    // The driver can have made available only slots the device does not hold.
    if (free === 0) throw this.fault('ERR_QUEUE_CHAIN_PAST_AVAIL', `descriptor ${pos} made available while the device holds every slot`);
    const bounds = this.bounds;
    if ((flags & (VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_INDIRECT)) === 0) {
      // A chain of one direct descriptor, the commonest shape, without the loop (which costs a
      // one-descriptor chain 12% once the code has also seen longer ones): neither rule of
      // ChainStorage can refuse a chain's first buffer, and the id is in this descriptor (2.8.6).
      const len = dv.getUint32(off + PVIRTQ_DESC_LEN, true);
      const addr = joinU64(dv.getUint32(off + PVIRTQ_DESC_ADDR, true), dv.getUint32(off + PVIRTQ_DESC_ADDR + 4, true));
      if (!bounds.inside(addr, len)) throw this.bufferAddressFault(pos, 'buffer', addr, len);
      chain.addrs[0] = addr;
      chain.lens[0] = len;
      if ((flags & VIRTQ_DESC_F_WRITE) !== 0) this.finish(chain, pos, off, 1, 0, 0, len);
      else this.finish(chain, pos, off, 1, 1, len, 0);
      return 1;
    }
    let addrs = chain.addrs;
    let lens = chain.lens;
    let count = 0;
    let readable = 0;
    let readableBytes = 0;
    let writableBytes = 0;
    let n = 0;
    let p = pos;
    let w = wrap;
    for (;;) {
      n++;
      const len = dv.getUint32(off + PVIRTQ_DESC_LEN, true);
      const addr = joinU64(dv.getUint32(off + PVIRTQ_DESC_ADDR, true), dv.getUint32(off + PVIRTQ_DESC_ADDR + 4, true));
      if ((flags & VIRTQ_DESC_F_INDIRECT) !== 0) return this.walkIndirect(chain, pos, off, n, flags, addr, len);
      if (!bounds.inside(addr, len)) throw this.bufferAddressFault(pos, 'buffer', addr, len);
      if ((flags & VIRTQ_DESC_F_WRITE) !== 0) {
        writableBytes += len;
      } else {
        if (count !== readable) throw this.refusal(pos, `buffer ${count}`, 'ERR_QUEUE_WRITE_BEFORE_READ');
        readable++;
        readableBytes += len;
      }
      if (count === lens.length) {
        if (!chain.room(count)) throw this.refusal(pos, `buffer ${count}`, 'ERR_QUEUE_CHAIN_TOO_LONG');
        addrs = chain.addrs;
        lens = chain.lens;
      }
      addrs[count] = addr;
      lens[count] = len;
      count++;
      if ((flags & VIRTQ_DESC_F_NEXT) === 0) break;
      if (n === free) throw this.pastFreeFault(pos, n);
      if (++p === size) {
        p = 0;
        w ^= 1;
      }
      off = descBase + p * PVIRTQ_DESC_SIZE;
      flags = dv.getUint16(off + PVIRTQ_DESC_FLAGS, true);
      if (!isAvailable(flags, w)) throw this.notAvailableFault(pos, p, flags, w);
    }
    this.finish(chain, pos, off, count, readable, readableBytes, writableBytes);
    return n;
  }

  /**
   * The end of a walk whose last descriptor is at `off` (2.8.6: the buffer id is in the last
   * descriptor of the chain): check the id and the chain's bytes, and publish the chain.
   */
  private finish(
    chain: ChainStorage,
    pos: number,
    off: number,
    count: number,
    readable: number,
    readableBytes: number,
    writableBytes: number,
  ): void {
    const id = this.descDv.getUint16(off + PVIRTQ_DESC_ID, true);
    if (id >= this.size) throw this.fault('ERR_QUEUE_BUFFER_ID', `chain at ${pos}: buffer id ${id} of ${this.size}`);
    if (readableBytes + writableBytes > MAX_CHAIN_BYTES) {
      throw this.fault('ERR_QUEUE_CHAIN_TOO_LONG', `chain at ${pos} holds ${readableBytes + writableBytes} bytes, more than 2^32`);
    }
    chain.fill(id, count, readable, readableBytes, writableBytes);
  }

  /**
   * The chain at `pos` whose `n`-th descriptor, at `off`, refers to an indirect table: its buffers
   * are the table's. The descriptor is the whole list (2.8.19: no INDIRECT in a list linked by NEXT;
   * 2.8.7: its WRITE flag is ignored); the table's entries follow each other, WRITE their only flag,
   * and an INDIRECT among them is a nested table, refused. Returns the ring slots the chain takes,
   * 1. Apart from walk() so that walk stays small.
   */
  private walkIndirect(chain: ChainStorage, pos: number, off: number, n: number, flags: number, addr: number, len: number): number {
    if (!this.indirect)
      throw this.fault('ERR_QUEUE_INDIRECT_UNNEGOTIATED', `chain at ${pos}: INDIRECT descriptor without VIRTIO_F_INDIRECT_DESC`);
    if (n !== 1 || (flags & VIRTQ_DESC_F_NEXT) !== 0)
      throw this.fault('ERR_QUEUE_INDIRECT_WITH_NEXT', `chain at ${pos}: INDIRECT descriptor in a list linked by NEXT`);
    const table = this.table;
    table.open(pos, addr, len);
    const dv = table.dv!;
    let readable = 0;
    let readableBytes = 0;
    let writableBytes = 0;
    for (let i = 0; i < table.entries; i++) {
      const at = table.base + i * PVIRTQ_DESC_SIZE;
      const f = dv.getUint16(at + PVIRTQ_DESC_FLAGS, true);
      if ((f & VIRTQ_DESC_F_INDIRECT) !== 0)
        throw this.fault('ERR_QUEUE_NESTED_INDIRECT', `chain at ${pos}: INDIRECT descriptor inside an indirect table`);
      const a = joinU64(dv.getUint32(at + PVIRTQ_DESC_ADDR, true), dv.getUint32(at + PVIRTQ_DESC_ADDR + 4, true));
      const l = dv.getUint32(at + PVIRTQ_DESC_LEN, true);
      if (!this.bounds.inside(a, l)) throw this.bufferAddressFault(pos, `indirect buffer ${i}`, a, l);
      if ((f & VIRTQ_DESC_F_WRITE) !== 0) {
        writableBytes += l;
      } else {
        if (i !== readable) throw this.refusal(pos, `indirect buffer ${i}`, 'ERR_QUEUE_WRITE_BEFORE_READ');
        readable++;
        readableBytes += l;
      }
      if (i === chain.lens.length && !chain.room(i)) throw this.refusal(pos, `indirect buffer ${i}`, 'ERR_QUEUE_CHAIN_TOO_LONG');
      chain.addrs[i] = a;
      chain.lens[i] = l;
    }
    this.finish(chain, pos, off, table.entries, readable, readableBytes, writableBytes);
    return 1;
  }

  private bufferAddressFault(pos: number, which: string, addr: number, len: number): QueueFaultError {
    return this.fault(
      'ERR_QUEUE_BUFFER_ADDRESS',
      `chain at ${pos}: ${which} [0x${addr.toString(16)}, +0x${len.toString(16)}) outside guest memory`,
    );
  }

  private refusal(pos: number, which: string, code: ChainStorageFault): QueueFaultError {
    return this.fault(code, `chain at ${pos}: ${which} (${refusalMessage(code)})`);
  }

  private pastFreeFault(pos: number, n: number): QueueFaultError {
    return n === this.size
      ? this.fault('ERR_QUEUE_CHAIN_TOO_LONG', `chain at ${pos} has more than ${n} descriptors`)
      : this.fault('ERR_QUEUE_CHAIN_PAST_AVAIL', `chain at ${pos} runs past ${n} descriptors into slots the device holds`);
  }

  private notAvailableFault(pos: number, p: number, flags: number, w: number): QueueFaultError {
    return this.fault(
      'ERR_QUEUE_DESC_NOT_AVAILABLE',
      `chain at ${pos}: descriptor ${p} has flags 0x${flags.toString(16)}, not available for wrap counter ${w}`,
    );
  }

  private fault(code: QueueFaultCode, message: string): QueueFaultError {
    return new QueueFaultError(code, this.index, message);
  }
}
