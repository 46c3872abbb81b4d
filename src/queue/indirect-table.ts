/**
 * An indirect descriptor table (VIRTIO_F_INDIRECT_DESC; split ring 2.7.5.3, packed ring 2.8.7): the
 * checks both formats make on the descriptor that refers to one, and a reusable DataView over it.
 * The descriptor layout is the same 16 bytes in both formats.
 */

import { QueueFaultError } from '../errors.js';
import type { GuestMemory } from '../memory/guest-memory.js';
import type { BufferBounds } from './buffer-bounds.js';

/** sizeof(struct virtq_desc) == sizeof(struct pvirtq_desc). */
const DESC_SIZE = 16;

/** The table of one chain at a time, opened by {@link open}; one per queue. */
export class IndirectTable {
  /** The table as a DataView and the table's offset in it, valid after open(). */
  dv: DataView | undefined;
  base = 0;
  /** Descriptors in the table. */
  entries = 0;
  /** The buffer of the last table, whose DataView is reused while tables share a region. */
  private buffer: ArrayBufferLike | undefined;

  constructor(
    private readonly queueIndex: number,
    /** Queue size: a table holds at most this many descriptors (2.7.5.3.1, 2.8.17). */
    private readonly size: number,
    private readonly memory: GuestMemory,
    private readonly bounds: BufferBounds,
  ) {}

  /**
   * Check the table [addr, +len) of chain `chain` and open it: a non-zero multiple of 16 bytes, at
   * most `size` descriptors, inside guest memory. Throws QueueFaultError.
   */
  open(chain: number, addr: number, len: number): void {
    if (len === 0 || len % DESC_SIZE !== 0 || len / DESC_SIZE > this.size) {
      throw new QueueFaultError(
        'ERR_QUEUE_INDIRECT_LENGTH',
        this.queueIndex,
        `chain ${chain}: indirect table of ${len} bytes (a non-zero multiple of 16, at most ${this.size} descriptors)`,
      );
    }
    if (!this.bounds.inside(addr, len)) {
      throw new QueueFaultError(
        'ERR_QUEUE_BUFFER_ADDRESS',
        this.queueIndex,
        `chain ${chain}: indirect table [0x${addr.toString(16)}, +0x${len.toString(16)}) outside guest memory`,
      );
    }
    const table = this.memory.view(addr, len);
    if (table.buffer !== this.buffer) {
      this.buffer = table.buffer;
      this.dv = new DataView(table.buffer);
    }
    this.base = table.byteOffset;
    this.entries = len / DESC_SIZE;
  }
}
