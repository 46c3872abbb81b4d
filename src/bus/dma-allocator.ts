/**
 * An aligned allocator over a range of bus addresses: first fit over a sorted free list, with
 * neighbouring free blocks coalesced on free. It hands out addresses only; each DmaMemory
 * implementation (in-process guest RAM, QEMU's RAM over qtest) maps them to bytes.
 */

import { UsageError } from '../errors.js';

interface Block {
  addr: number;
  size: number;
}

function isPowerOfTwo(n: number): boolean {
  return Number.isSafeInteger(n) && n > 0 && 2 ** Math.round(Math.log2(n)) === n;
}

export class DmaAllocator {
  /** Free blocks, sorted by address, never adjacent (coalesced). */
  private readonly freeList: Block[];
  /** Allocated blocks: address -> size. */
  private readonly used = new Map<number, number>();

  /** Manage [base, base + size). */
  constructor(
    readonly base: number,
    readonly size: number,
  ) {
    if (!Number.isSafeInteger(base) || !Number.isSafeInteger(size) || base < 0 || size <= 0 || !Number.isSafeInteger(base + size))
      throw new UsageError(`bad DMA range [0x${base.toString(16)}, +0x${size.toString(16)})`);
    this.freeList = [{ addr: base, size }];
  }

  /**
   * Address of `size` bytes aligned to `align` (a power of two). A size of 0 takes one byte so
   * that every allocation has its own address. Throws UsageError when no free block fits.
   */
  alloc(size: number, align = 1): number {
    if (!Number.isSafeInteger(size) || size < 0) throw new UsageError(`bad DMA allocation size ${size}`);
    if (!isPowerOfTwo(align)) throw new UsageError(`DMA alignment ${align} is not a power of two`);
    const want = Math.max(size, 1);
    for (let i = 0; i < this.freeList.length; i++) {
      const block = this.freeList[i]!;
      const addr = Math.ceil(block.addr / align) * align;
      const end = block.addr + block.size;
      if (addr + want > end) continue;
      const pieces: Block[] = [];
      if (addr > block.addr) pieces.push({ addr: block.addr, size: addr - block.addr });
      if (addr + want < end) pieces.push({ addr: addr + want, size: end - addr - want });
      this.freeList.splice(i, 1, ...pieces);
      this.used.set(addr, want);
      return addr;
    }
    throw new UsageError(`DMA memory exhausted: no ${size} bytes aligned to ${align} free (${this.freeBytes} bytes free in total)`);
  }

  /** Return the allocation at `addr`. Throws UsageError for an address not allocated (double free). */
  free(addr: number): void {
    const size = this.used.get(addr);
    if (size === undefined) throw new UsageError(`DMA free of 0x${addr.toString(16)}, which is not allocated`);
    this.used.delete(addr);
    let i = 0;
    while (i < this.freeList.length && this.freeList[i]!.addr < addr) i++;
    this.freeList.splice(i, 0, { addr, size });
    // Merge with the next block, then with the previous one.
    const next = this.freeList[i + 1];
    if (next !== undefined && addr + size === next.addr) {
      this.freeList[i]!.size += next.size;
      this.freeList.splice(i + 1, 1);
    }
    const prev = this.freeList[i - 1];
    if (prev !== undefined && prev.addr + prev.size === addr) {
      prev.size += this.freeList[i]!.size;
      this.freeList.splice(i, 1);
    }
  }

  /** Size of the allocation at `addr`, or undefined. */
  sizeOf(addr: number): number | undefined {
    return this.used.get(addr);
  }

  get freeBytes(): number {
    return this.freeList.reduce((sum, b) => sum + b.size, 0);
  }

  /** Number of free blocks (1 when everything is free: the list coalesces). */
  get freeBlocks(): number {
    return this.freeList.length;
  }
}
