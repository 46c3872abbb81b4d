/** PCI Local Bus 3.0 facts a driver needs to find functions (6.1, 6.2.1), beside src/spec/pci.ts. */

/** Bit 7 of the header type register: the device implements functions 1..7 as well as 0. */
export const PCI_HEADER_TYPE_MULTI_FUNCTION = 0x80;
/** Device numbers per bus. */
export const PCI_DEVICES_PER_BUS = 32;
/** Function numbers per device. */
export const PCI_FUNCTIONS_PER_DEVICE = 8;
