import { ArrayGuestMemory } from '../../src/memory/guest-memory.js';

/**
 * 1 MiB of real memory at 0 and a 16 GiB region at 2^34 that only answers contains(): enough to
 * build chains of more than 4 GiB of buffers that a queue checks but never touches.
 */
export class PhantomHighMemory extends ArrayGuestMemory {
  static readonly HIGH = 2 ** 34;
  override readonly end = PhantomHighMemory.HIGH + 2 ** 34;
  constructor() {
    super(1 << 20);
  }
  override contains(addr: number, len: number): boolean {
    return super.contains(addr, len) || (addr >= PhantomHighMemory.HIGH && len >= 0 && addr + len <= this.end);
  }
}
