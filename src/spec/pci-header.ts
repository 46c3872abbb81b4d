/**
 * Type-0 header facts the function model needs beyond src/spec/pci.ts (PCI Local Bus 3.0 6.2 and
 * 6.7): interrupt pin values, the smallest BARs, capability alignment.
 */

/** 6.2.4 Interrupt Pin: 0 = none, 1..4 = INTA#..INTD#. */
export const PCI_INTERRUPT_PIN_NONE = 0;
export const PCI_INTERRUPT_PIN_INTA = 1;

/** 6.2.5.1: a memory BAR decodes at least 16 bytes, an I/O BAR at least 4. */
export const PCI_BAR_MIN_MEM_SIZE = 16;
export const PCI_BAR_MIN_IO_SIZE = 4;

/** Low type bits of a memory BAR (bit 0 space, bits 1..2 type, bit 3 prefetchable) and of an I/O BAR. */
export const PCI_BASE_ADDRESS_MEM_TYPE_BITS = 0xf;
export const PCI_BASE_ADDRESS_IO_TYPE_BITS = 0x3;

/** 6.7: each capability starts on a DWORD boundary; the two low bits of every pointer are reserved. */
export const PCI_CAP_ALIGN = 4;
