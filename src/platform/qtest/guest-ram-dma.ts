/**
 * DMA memory in QEMU's guest RAM. The driver works on a local image of the DMA window; alloc()
 * zeroes both the local bytes and guest RAM (posted memset), so the two agree from the start; flush()
 * copies a range to QEMU with b64write (posted: it resolves once queued, and QEMU performs it before
 * the notify the driver sends next) and refresh() brings a range back with b64read. Ranges are cut
 * into chunks so no single protocol line grows without bound; the chunks of one call are pipelined.
 */

import type { DmaBuffer, DmaMemory } from '../../memory/dma.js';
import { BusError, UsageError } from '../../errors.js';
import { rangeInside } from '../../memory/guest-memory.js';
import { b64readCommand, b64writeCommand, memsetCommand } from './qtest-protocol.js';
import type { QtestClient } from './qtest-client.js';
import { DmaAllocator } from '../../bus/dma-allocator.js';

/** Largest transfer in one command: 256 KiB is about 350 KB of base64 on the line. */
const CHUNK_BYTES = 0x4_0000;

export class GuestRamDma implements DmaMemory {
  /** The local image of guest RAM [base, base + size). */
  readonly image: Uint8Array;
  private readonly allocator: DmaAllocator;

  constructor(
    private readonly client: QtestClient,
    readonly base: number,
    readonly size: number,
  ) {
    this.image = new Uint8Array(size);
    this.allocator = new DmaAllocator(base, size);
  }

  alloc(size: number, align: number): DmaBuffer {
    const addr = this.allocator.alloc(size, align);
    const bytes = this.image.subarray(addr - this.base, addr - this.base + size);
    // A fresh buffer starts as zeroes on both sides. Guest RAM still holds what an earlier owner of
    // these addresses left (a previous driver's rings, in a QEMU that outlives drivers), and a
    // device may look before the driver's first flush: a stale avail.idx is a request from nowhere.
    bytes.fill(0);
    if (size > 0) this.client.post(memsetCommand(addr, size, 0));
    return { addr, bytes };
  }

  free(buffer: DmaBuffer): void {
    this.allocator.free(buffer.addr);
  }

  async flush(addr: number, len: number): Promise<void> {
    this.check(addr, len);
    for (let done = 0; done < len; done += CHUNK_BYTES) {
      const n = Math.min(CHUNK_BYTES, len - done);
      const at = addr - this.base + done;
      this.client.post(b64writeCommand(addr + done, this.image.subarray(at, at + n)));
    }
  }

  async refresh(addr: number, len: number): Promise<void> {
    this.check(addr, len);
    const replies: Array<Promise<void>> = [];
    for (let done = 0; done < len; done += CHUNK_BYTES) {
      const n = Math.min(CHUNK_BYTES, len - done);
      const at = addr - this.base + done;
      replies.push(
        this.client.request(b64readCommand(addr + done, n)).then((b64) => {
          const bytes = Buffer.from(b64, 'base64');
          if (bytes.length !== n) throw new BusError(`b64read of ${n} bytes returned ${bytes.length}`);
          this.image.set(bytes, at);
        }),
      );
    }
    await Promise.all(replies);
  }

  private check(addr: number, len: number): void {
    if (!rangeInside(addr, len, this.base, this.size)) {
      throw new UsageError(`DMA range [0x${addr.toString(16)}, +0x${len.toString(16)}) is outside guest RAM's DMA window`);
    }
  }
}
