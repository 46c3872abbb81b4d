/**
 * The width of a register or bus access, shared by both halves: the device half's PCI function and
 * device models, and the driver half's bus, without either importing the other's layer.
 */

/** Width of a register access in bytes. 8-byte accesses are split into two 4-byte ones by the caller. */
export type AccessSize = 1 | 2 | 4;

/** The value of an access of each width with every bit set: what a read of nothing returns. */
export const ALL_ONES: Readonly<Record<AccessSize, number>> = { 1: 0xff, 2: 0xffff, 4: 0xffff_ffff };

/** `value` cut to the bytes an access of `size` carries, as an unsigned number. */
export function truncate(value: number, size: AccessSize): number {
  return (value & ALL_ONES[size]) >>> 0;
}
