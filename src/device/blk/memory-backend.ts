/** A disk image held in memory: every operation completes synchronously. */

import type { BlockBackend, IoVec } from './backend.js';

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

  /** @param image size in bytes (zero-filled) or the bytes to use as the disk, without copying */
  constructor(image: number | Uint8Array, options: MemoryBackendOptions = {}) {
    this.bytes = typeof image === 'number' ? new Uint8Array(image) : image;
    this.size = this.bytes.byteLength;
    this.readOnly = options.readOnly ?? false;
  }

  // `length` rather than `byteLength` (equal for bytes): V8 does not inline the byteLength getter.
  read(offset: number, iov: IoVec): void {
    let pos = offset;
    for (let i = 0; i < iov.length; i++) {
      const dst = iov[i]!;
      const n = dst.length;
      dst.set(this.bytes.subarray(pos, pos + n));
      pos += n;
    }
  }

  write(offset: number, iov: IoVec): void {
    let pos = offset;
    for (let i = 0; i < iov.length; i++) {
      const src = iov[i]!;
      this.bytes.set(src, pos);
      pos += src.length;
    }
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
