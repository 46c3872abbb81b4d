/**
 * What a driver ring checks before it puts a chain in, the same for both formats (2.7.5, 2.8.6): the
 * chain's buffer count and byte total, each buffer's address and length, and how many ring
 * descriptors it takes (one for an indirect table, 2.7.5.3 and 2.8.7, or one per buffer).
 */

import { QueueFullError, UsageError } from '../errors.js';
import type { DmaSpan } from '../memory/dma.js';
import { isSafeInteger } from '../memory/guest-memory.js';

/**
 * Check the chain of `out` then `inn` buffers against the format's limits and return its writable
 * bytes. Throws UsageError for an empty chain, more than `maxBuffers` buffers, a bad address or a
 * length beyond 32 bits, or more than `maxBytes` in total.
 */
export function admitChain(index: number, out: readonly DmaSpan[], inn: readonly DmaSpan[], maxBuffers: number, maxBytes: number): number {
  const n = out.length + inn.length;
  if (n === 0 || n > maxBuffers) throw new UsageError(`queue ${index}: a chain of ${n} buffers (1..${maxBuffers})`);
  const writable = spanBytes(index, inn);
  const total = spanBytes(index, out) + writable;
  if (total > maxBytes) throw new UsageError(`queue ${index}: a chain of ${total} bytes (at most 2^32)`);
  return writable;
}

/**
 * Ring descriptors a chain of `n` buffers takes with `free` left: 1 when it goes into an indirect
 * table (negotiated, several buffers, and too few free descriptors for them directly: a table costs
 * a DMA allocation), else `n`. Throws QueueFullError when even that many are not free.
 */
export function descriptorsNeeded(index: number, n: number, free: number, indirect: boolean): number {
  const needed = indirect && n > 1 && n > free ? 1 : n;
  if (needed > free) throw new QueueFullError(index, `${needed} descriptors needed, ${free} free`);
  return needed;
}

/** Total length of `spans`; throws UsageError for an address or length the ring cannot carry. */
function spanBytes(index: number, spans: readonly DmaSpan[]): number {
  let total = 0;
  for (let k = 0; k < spans.length; k++) {
    const { addr, len } = spans[k]!;
    if (!(isSafeInteger(addr) && addr >= 0 && len >>> 0 === len)) throw new UsageError(`queue ${index}: bad buffer [${addr}, +${len})`);
    total += len;
  }
  return total;
}
