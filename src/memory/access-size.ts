/**
 * The width of a register or bus access, shared by both halves: the device half's PCI function and
 * device models, and the driver half's bus, without either importing the other's layer.
 */

/** Width of a register access in bytes. 8-byte accesses are split into two 4-byte ones by the caller. */
export type AccessSize = 1 | 2 | 4;
