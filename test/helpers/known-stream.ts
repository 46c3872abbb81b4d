/**
 * An entropy source for virtio-rng tests whose output is known: SHA-256 of a label and a counter,
 * block after block, so no 64-byte window repeats and each stream is told apart by its label. It
 * keeps everything it handed out, so a test can check that bytes the guest read came from it.
 */

import { createHash } from 'node:crypto';

export class KnownStream {
  private produced = Buffer.alloc(0);
  private pool = Buffer.alloc(0);
  private block = 0;

  constructor(readonly label: string) {}

  /** An EntropySource (src/device/rng/entropy.ts). */
  readonly fill = (dst: Uint8Array): void => {
    while (this.pool.byteLength < dst.byteLength) {
      this.pool = Buffer.concat([this.pool, createHash('sha256').update(`${this.label} ${this.block++}`).digest()]);
    }
    dst.set(this.pool.subarray(0, dst.byteLength));
    this.produced = Buffer.concat([this.produced, this.pool.subarray(0, dst.byteLength)]);
    this.pool = this.pool.subarray(dst.byteLength);
  };

  /** Whether `bytes` is a run of what this stream handed out. */
  gave(bytes: Uint8Array): boolean {
    return bytes.byteLength > 0 && this.produced.indexOf(bytes) >= 0;
  }
}
