/**
 * DMA memory that is guest RAM itself (the in-process machine): buffers are zero-copy views of
 * guest memory, so flush and refresh have nothing to do.
 */

import type { DmaBuffer, DmaMemory } from '../memory/dma.js';
import { DmaAllocator } from './dma-allocator.js';
import { UsageError } from '../errors.js';
import type { GuestMemory } from '../memory/guest-memory.js';

export class RamDma implements DmaMemory {
  readonly allocator: DmaAllocator;
  readonly coherent: boolean = true;

  /** Allocate from [base, base + size), which must lie inside one region of `memory`. */
  constructor(
    protected readonly memory: GuestMemory,
    base: number,
    size: number,
  ) {
    if (!memory.contains(base, size)) throw new UsageError(`DMA window [0x${base.toString(16)}, +0x${size.toString(16)}) is not guest RAM`);
    this.allocator = new DmaAllocator(base, size);
  }

  alloc(size: number, align: number): DmaBuffer {
    const addr = this.allocator.alloc(size, align);
    return { addr, bytes: this.memory.view(addr, size) };
  }

  free(buffer: DmaBuffer): void {
    this.allocator.free(buffer.addr);
  }

  async flush(): Promise<void> {}

  async refresh(): Promise<void> {}
}
