/**
 * The input layout both ring targets (split-ring, packed-ring) share: a header, then fixed-size
 * operation records, over the same small guest memory placed at one of three bases. Their saved
 * corpora depend on these numbers: change them and every kept input means something else.
 */

import type { MutationShape } from '../engine/mutator.js';

/** Guest memory: room for a 127/128-entry ring and buffers, small enough to diff per operation. */
export const MEM_SIZE = 0x4000;
/** Bases: plain low memory, memory straddling 4 GiB (lo/hi halves), and memory ending at 2^53. */
export const BASES = [0, 0x1_0000_0000 - 0x2000, 2 ** 53 - MEM_SIZE] as const;
const HEADER = 10;
/** op u8, a u16, b u16, c u32, d u64. */
const RECORD = 17;
export const MAX_OPS = 96;
/** Offset of the data area the seeds put buffers and indirect tables in (rings stay below it). */
export const DATA = 0x3000;

/** The mutation shape of a ring target's input, with its own dictionary. */
export function ringRecordShape(dictionary: MutationShape['dictionary']): MutationShape {
  return { maxLength: HEADER + RECORD * MAX_OPS, headerSize: HEADER, recordSize: RECORD, dictionary };
}
