/**
 * A block backend whose operations wait until the test releases them (in any order, with success or
 * an injected I/O error), over a memory disk: the slow backend of reset and in-flight tests.
 */

import type { BlockBackend, GuestIo } from '../../src/device/blk/backend.js';
import { MemoryBlockBackend } from '../../src/device/blk/memory-backend.js';

export class DeferredBackend implements BlockBackend {
  readonly inner: MemoryBlockBackend;
  /** Operations not yet released, in the order they were started. */
  readonly pending: { offset: number; release: (ok: boolean) => void }[] = [];
  readonly readOnly = false;
  constructor(bytes: Uint8Array) {
    this.inner = new MemoryBlockBackend(bytes);
  }
  get size(): number {
    return this.inner.size;
  }
  private defer(offset: number, op: () => void): Promise<void> {
    return new Promise((resolve, reject) => {
      this.pending.push({
        offset,
        release: (ok) => {
          if (!ok) return reject(new Error('injected I/O error'));
          op();
          resolve();
        },
      });
    });
  }
  read(offset: number, dst: GuestIo): Promise<void> {
    return this.defer(offset, () => this.inner.read(offset, dst));
  }
  write(offset: number, src: GuestIo): Promise<void> {
    return this.defer(offset, () => this.inner.write(offset, src));
  }
  flush(): Promise<void> {
    return this.defer(-1, () => this.inner.flush());
  }
  /** Release every pending operation (successfully), oldest first. */
  releaseAll(): void {
    for (const p of this.pending.splice(0)) p.release(true);
  }
}
