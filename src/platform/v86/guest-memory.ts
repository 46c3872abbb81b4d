/**
 * v86's guest RAM as a GuestMemory, zero-copy. Two v86 facts shape it (see internals.ts):
 * - RAM lives inside the wasm memory, which grows when v86's allocator runs out (the JIT allocates
 *   as it compiles); growing detaches every view of the old buffer, including the DataViews a queue
 *   keeps of its rings. {@link reserveWasmHeap} gives the allocator room up front so that it does not
 *   grow in practice; should it grow anyway, the wrapper re-creates its own view (counted in
 *   {@link V86GuestMemory.growths}), but views handed out earlier are dead.
 * - The JIT caches compiled code per page and only notices the CPU's own writes. Device writes are
 *   remembered here and {@link V86GuestMemory.flushDirty} tells the JIT before the guest is
 *   interrupted, so code read from a virtio disk into a page that once held other code runs fresh.
 *   They are kept page by page: one span around scattered pages (a 1 MiB direct read lands in 256
 *   pages anywhere in RAM) would throw away the compiled code of every page between them, the
 *   kernel's included, and cost a JIT lookup per page of that span.
 */

import { ArrayGuestMemory, type GuestMemory, type GuestRegion } from '../../memory/guest-memory.js';
import type { V86Cpu } from './internals.js';
import type { V86MemoryMap } from './memory-map.js';

/** The JIT's unit of compiled code (a 4 KiB page). */
const PAGE_SHIFT = 12;
const PAGE_SIZE = 1 << PAGE_SHIFT;

/** Heap room given to v86's allocator; a 10 s boot plus tests allocates under 3 MiB. */
const WASM_HEAP_RESERVE = 32 << 20;
const reserved = new WeakSet<V86Cpu>();

/**
 * Grow v86's wasm heap once, before the guest runs, by allocating and freeing a large block: the
 * allocator keeps the freed block for later allocations instead of growing the memory (which would
 * detach every view of guest RAM). Relies on the wasm exports v86_malloc and v86_free.
 */
export function reserveWasmHeap(cpu: V86Cpu): void {
  if (reserved.has(cpu)) return;
  reserved.add(cpu);
  cpu.wm.exports.v86_free(cpu.wm.exports.v86_malloc(WASM_HEAP_RESERVE));
}

/** CR0.PG: paging is on. */
const CR0_PG = 0x8000_0000;

export class V86GuestMemory implements GuestMemory {
  /** The end of the OS's RAM (the firmware's zone above it is reached through {@link contains}). */
  readonly end: number;
  /** The RAM of the OS's map, and the RAM the firmware uses (the same view without a map). */
  private ram: ArrayGuestMemory;
  private firmware: ArrayGuestMemory;
  /** A mark per page of v86's memory array written since the last flush, and those pages in order of writing. */
  private readonly dirtyMarks: Uint8Array;
  private dirtyPages: number[] = [];
  /** How often the wasm memory grew under this wrapper (each time, older views died). */
  growths = 0;

  /**
   * @param map what devices may reach (default: all of v86's memory array): v86's array also holds
   *   what the firmware's map leaves out of the OS's RAM (the firmware area below 1 MiB, the tables
   *   SeaBIOS keeps at the top), see memory-map.ts. The firmware's own zone is reachable while the
   *   guest runs without paging, as it does while the firmware drives a device.
   */
  constructor(
    private readonly cpu: V86Cpu,
    private readonly map?: V86MemoryMap,
  ) {
    [this.ram, this.firmware] = this.wrap();
    this.end = this.ram.end;
    this.dirtyMarks = new Uint8Array(Math.ceil((this.cpu.memory_size[0]! >>> 0) / PAGE_SIZE));
  }

  private wrap(): [ram: ArrayGuestMemory, firmware: ArrayGuestMemory] {
    const size = this.cpu.memory_size[0]! >>> 0;
    const bytes = new Uint8Array(this.cpu.wasm_memory.buffer, this.cpu.mem8.byteOffset, size);
    const ram = new ArrayGuestMemory(bytes, 0, this.map?.ram);
    return [ram, this.map === undefined ? ram : new ArrayGuestMemory(bytes, 0, this.map.firmwareRam)];
  }

  /**
   * The view over the current wasm buffer that serves [addr, addr + len): the OS's RAM, or the
   * firmware's while paging is off (CR0 is read only when the OS's RAM refuses the access).
   */
  private at(addr: number, len: number): ArrayGuestMemory {
    if (this.ram.bytes.buffer !== this.cpu.wasm_memory.buffer) {
      [this.ram, this.firmware] = this.wrap();
      this.growths++;
    }
    return this.ram.contains(addr, len) || !this.firmwareDrives() ? this.ram : this.firmware;
  }

  /** Whether the guest runs without paging: the firmware (or a real-mode loader using its services), not an OS. */
  private firmwareDrives(): boolean {
    return (this.cpu.cr[0]! & CR0_PG) === 0;
  }

  /** Only called after an access the views accepted, so every page is inside v86's memory array. */
  private touch(addr: number, len: number): void {
    if (len <= 0) return;
    const last = (addr + len - 1) >>> PAGE_SHIFT;
    for (let page = addr >>> PAGE_SHIFT; page <= last; page++) {
      if (this.dirtyMarks[page] === 0) {
        this.dirtyMarks[page] = 1;
        this.dirtyPages.push(page);
      }
    }
  }

  /** Tell v86's JIT about every page written since the last flush, a run of adjacent pages at a time. */
  flushDirty(): void {
    const pages = this.dirtyPages;
    if (pages.length === 0) return;
    this.dirtyPages = [];
    pages.sort((a, b) => a - b);
    let first = pages[0]!;
    let prev = first;
    for (let i = 1; i <= pages.length; i++) {
      const page = pages[i];
      if (page === prev + 1) {
        prev = page;
        continue;
      }
      this.cpu.jit_dirty_cache(first * PAGE_SIZE, (prev + 1) * PAGE_SIZE);
      for (let p = first; p <= prev; p++) this.dirtyMarks[p] = 0;
      if (page !== undefined) first = prev = page;
    }
  }

  contains(addr: number, len: number): boolean {
    // Not through `at`: the checks read only fields fixed at construction, so a view detached by
    // growth answers the same, and nothing needs re-wrapping.
    return this.ram.contains(addr, len) || (this.firmware !== this.ram && this.firmwareDrives() && this.firmware.contains(addr, len));
  }
  read8(addr: number): number {
    return this.at(addr, 1).read8(addr);
  }
  read16(addr: number): number {
    return this.at(addr, 2).read16(addr);
  }
  read32(addr: number): number {
    return this.at(addr, 4).read32(addr);
  }
  read64(addr: number): bigint {
    return this.at(addr, 8).read64(addr);
  }
  write8(addr: number, value: number): void {
    this.at(addr, 1).write8(addr, value);
    this.touch(addr, 1);
  }
  write16(addr: number, value: number): void {
    this.at(addr, 2).write16(addr, value);
    this.touch(addr, 2);
  }
  write32(addr: number, value: number): void {
    this.at(addr, 4).write32(addr, value);
    this.touch(addr, 4);
  }
  write64(addr: number, value: bigint): void {
    this.at(addr, 8).write64(addr, value);
    this.touch(addr, 8);
  }
  /** A view a device may write through, so its range counts as written. */
  view(addr: number, len: number): Uint8Array {
    const v = this.at(addr, len).view(addr, len);
    this.touch(addr, len);
    return v;
  }
  /** Like a view: the range counts as written. */
  region(addr: number, len: number): GuestRegion {
    const r = this.at(addr, len).region(addr, len);
    this.touch(addr, len);
    return r;
  }
  read(addr: number, dst: Uint8Array): void {
    this.at(addr, dst.length).read(addr, dst);
  }
  write(addr: number, src: Uint8Array): void {
    this.at(addr, src.length).write(addr, src);
    this.touch(addr, src.byteLength);
  }
}
