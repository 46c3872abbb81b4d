/** A disk image held in memory: every operation completes synchronously. */

import { UsageError } from '../../errors.js';
import type { BlockBackend, GuestIo } from './backend.js';

export interface MemoryBackendOptions {
  readonly readOnly?: boolean;
}

/** A {@link BlockBackend} over bytes in memory (synchronous). */
export class MemoryBlockBackend implements BlockBackend {
  /** The disk's bytes (shared, not copied, when a view was given). */
  readonly bytes: Uint8Array;
  readonly size: number;
  readonly readOnly: boolean;
  /** Number of flush() calls, for observing that FLUSH reached the backend. */
  flushes = 0;
  /** `bytes`' buffer and offset: a view built on them costs half a `subarray` (see ArrayGuestMemory). */
  private readonly buffer: ArrayBufferLike;
  private readonly byteOffset: number;

  /** @param image size in bytes (zero-filled) or the bytes to use as the disk, without copying */
  constructor(image: number | Uint8Array, options: MemoryBackendOptions = {}) {
    this.bytes = typeof image === 'number' ? new Uint8Array(image) : image;
    this.size = this.bytes.byteLength;
    this.buffer = this.bytes.buffer;
    this.byteOffset = this.bytes.byteOffset;
    this.readOnly = options.readOnly ?? false;
  }

  // One view of the disk per buffer and none of guest memory: memory.write copies into the guest at
  // an offset. Writes take one view of the guest buffer instead.
  read(offset: number, dst: GuestIo): void {
    const { memory, spans } = dst;
    let pos = offset;
    for (let i = 0; i < spans.length; i++) {
      const { addr, len } = spans[i]!;
      this.checkRange(pos, len);
      memory.write(addr, new Uint8Array(this.buffer, this.byteOffset + pos, len));
      pos += len;
    }
  }

  write(offset: number, src: GuestIo): void {
    const { memory, spans } = src;
    let pos = offset;
    for (let i = 0; i < spans.length; i++) {
      const { addr, len } = spans[i]!;
      this.bytes.set(memory.view(addr, len), pos);
      pos += len;
    }
  }

  /**
   * The device checks every range first; this keeps a view built on the buffer inside `bytes` (which
   * may be a view of a larger buffer) for a caller that does not. (`set` bounds writes by itself.)
   */
  private checkRange(offset: number, length: number): void {
    if (!(offset >= 0 && length >= 0 && offset <= this.size - length))
      throw new UsageError(`disk range [${offset}, +${length}) outside ${this.size} bytes`);
  }

  flush(): void {
    this.flushes++;
  }

  writeZeroes(offset: number, length: number): void {
    this.bytes.fill(0, offset, offset + length);
  }

  /** Memory cannot be deallocated; discarded sectors read back as zeroes. */
  discard(offset: number, length: number): void {
    this.writeZeroes(offset, length);
  }
}
