/**
 * The used length a device reports for a chain (2.7.8 split: "the number of bytes written into the
 * device writable portion of the buffer"; 2.8.4 packed: the length "initialized (written to) by the
 * device"), never more than the chain's writable bytes. A device model that reports more has a bug
 * (the guest cannot cause it): a UsageError. Every layer that accepts a used element checks it
 * here, so the rule is stated once.
 */

import { UsageError } from '../errors.js';

/** Whether `len` is a 32-bit count of at most `writableBytes`: the check on a device ring's hot path. */
export function usedLenFits(len: number, writableBytes: number): boolean {
  return len >>> 0 === len && len <= writableBytes;
}

/** Throws UsageError unless `len` is a 32-bit count of at most `writableBytes`. */
export function checkUsedLen(queue: number, head: number, len: number, writableBytes: number): void {
  if (!usedLenFits(len, writableBytes)) throw usedLenError(queue, head, len, writableBytes);
}

/** The UsageError for a used `len` that does not fit (see {@link usedLenFits}). */
export function usedLenError(queue: number, head: number, len: number, writableBytes: number): UsageError {
  return new UsageError(`queue ${queue}: used len ${len} for head ${head} with ${writableBytes} writable bytes`);
}
