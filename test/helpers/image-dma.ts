/**
 * DMA memory as a remote bus has it: a local image of guest memory [base, base + size) that reaches
 * guest memory only on flush and is updated from it only on refresh, so a driver that forgets a flush
 * or a refresh sees (or leaves) wrong bytes. Not coherent.
 */

import { DmaAllocator } from '../../src/bus/dma-allocator.js';
import type { DmaBuffer, DmaMemory } from '../../src/memory/dma.js';
import type { GuestMemory } from '../../src/memory/guest-memory.js';

export class ImageDma implements DmaMemory {
  readonly image: Uint8Array;
  readonly allocator: DmaAllocator;
  /** Every flush and refresh, in order. */
  readonly log: { readonly op: 'flush' | 'refresh'; readonly addr: number; readonly len: number }[] = [];

  constructor(
    readonly memory: GuestMemory,
    readonly base: number,
    size: number,
  ) {
    this.image = new Uint8Array(size);
    this.allocator = new DmaAllocator(base, size);
  }

  alloc(size: number, align: number): DmaBuffer {
    const addr = this.allocator.alloc(size, align);
    return { addr, bytes: this.image.subarray(addr - this.base, addr - this.base + size) };
  }

  free(buffer: DmaBuffer): void {
    this.allocator.free(buffer.addr);
  }

  async flush(addr: number, len: number): Promise<void> {
    this.log.push({ op: 'flush', addr, len });
    this.memory.write(addr, this.image.subarray(addr - this.base, addr - this.base + len));
  }

  async refresh(addr: number, len: number): Promise<void> {
    this.log.push({ op: 'refresh', addr, len });
    this.memory.read(addr, this.image.subarray(addr - this.base, addr - this.base + len));
  }
}
