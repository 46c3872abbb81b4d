/**
 * PCI Local Bus facts used by the virtio PCI transport: the type-0 configuration header, the
 * command/status bits, BAR encoding, capability IDs and the MSI-X capability (PCI Local Bus 3.0
 * section 6; MSI-X in 6.8.2). The virtio spec refers to these in 4.1.
 */

/** Size of conventional PCI configuration space. */
export const PCI_CONFIG_SPACE_SIZE = 256;

// Type-0 header field offsets.
export const PCI_VENDOR_ID = 0x00; // 16
export const PCI_DEVICE_ID = 0x02; // 16
export const PCI_COMMAND = 0x04; // 16
export const PCI_STATUS = 0x06; // 16
export const PCI_REVISION_ID = 0x08; // 8
export const PCI_CLASS_PROG = 0x09; // 8
export const PCI_CLASS_DEVICE = 0x0a; // 16: subclass, then base class
export const PCI_CACHE_LINE_SIZE = 0x0c; // 8
export const PCI_LATENCY_TIMER = 0x0d; // 8
export const PCI_HEADER_TYPE = 0x0e; // 8
export const PCI_BIST = 0x0f; // 8
export const PCI_BASE_ADDRESS_0 = 0x10; // 6 x 32
export const PCI_CARDBUS_CIS = 0x28; // 32
export const PCI_SUBSYSTEM_VENDOR_ID = 0x2c; // 16
export const PCI_SUBSYSTEM_ID = 0x2e; // 16
export const PCI_ROM_ADDRESS = 0x30; // 32
export const PCI_CAPABILITY_LIST = 0x34; // 8
export const PCI_INTERRUPT_LINE = 0x3c; // 8
export const PCI_INTERRUPT_PIN = 0x3d; // 8
export const PCI_MIN_GNT = 0x3e; // 8
export const PCI_MAX_LAT = 0x3f; // 8
/** First byte after the type-0 header: capabilities live from here on. */
export const PCI_HEADER_END = 0x40;

export const PCI_NUM_BARS = 6;
export const PCI_HEADER_TYPE_NORMAL = 0;

// Command register bits.
export const PCI_COMMAND_IO = 0x1;
export const PCI_COMMAND_MEMORY = 0x2;
export const PCI_COMMAND_MASTER = 0x4;
export const PCI_COMMAND_INTX_DISABLE = 0x400;

// Status register bits.
export const PCI_STATUS_INTERRUPT = 0x8;
export const PCI_STATUS_CAP_LIST = 0x10;

// BAR encoding.
export const PCI_BASE_ADDRESS_SPACE_IO = 0x1;
export const PCI_BASE_ADDRESS_MEM_TYPE_64 = 0x4;
export const PCI_BASE_ADDRESS_MEM_PREFETCH = 0x8;
export const PCI_BASE_ADDRESS_IO_MASK = 0xfffffffc;
export const PCI_BASE_ADDRESS_MEM_MASK = 0xfffffff0;

// Capability IDs.
export const PCI_CAP_ID_PM = 0x01;
export const PCI_CAP_ID_MSI = 0x05;
export const PCI_CAP_ID_VNDR = 0x09;
export const PCI_CAP_ID_EXP = 0x10;
export const PCI_CAP_ID_MSIX = 0x11;
export const PCI_CAP_LIST_ID = 0; // 8
export const PCI_CAP_LIST_NEXT = 1; // 8

// MSI-X capability (PCI 3.0 6.8.2).
export const PCI_MSIX_FLAGS = 2; // 16: message control
export const PCI_MSIX_FLAGS_QSIZE = 0x07ff; // table size - 1
export const PCI_MSIX_FLAGS_MASKALL = 0x4000;
export const PCI_MSIX_FLAGS_ENABLE = 0x8000;
export const PCI_MSIX_TABLE = 4; // 32: BIR in bits 0..2, offset in the rest
export const PCI_MSIX_PBA = 8; // 32
export const PCI_MSIX_BIR_MASK = 0x7;
export const PCI_MSIX_CAP_SIZE = 12;
export const PCI_MSIX_ENTRY_SIZE = 16;
export const PCI_MSIX_ENTRY_LOWER_ADDR = 0;
export const PCI_MSIX_ENTRY_UPPER_ADDR = 4;
export const PCI_MSIX_ENTRY_DATA = 8;
export const PCI_MSIX_ENTRY_VECTOR_CTRL = 12;
export const PCI_MSIX_ENTRY_CTRL_MASKBIT = 0x1;

/** Class codes (base << 16 | sub << 8 | prog-if) that QEMU gives virtio devices of each kind. */
export const PCI_CLASS_NETWORK_ETHERNET = 0x020000;
export const PCI_CLASS_STORAGE_SCSI = 0x010000;
export const PCI_CLASS_COMMUNICATION_OTHER = 0x078000;
/** Base class 0x00 (unclassified), subclass 0xff: QEMU 7.2 reads back 0x00ff at 0x0a (checked over qtest). */
export const PCI_CLASS_OTHERS = 0x00ff00;

/** Config address port pair of PCI configuration mechanism #1 (x86). */
export const PCI_CONFIG_ADDRESS_PORT = 0xcf8;
export const PCI_CONFIG_DATA_PORT = 0xcfc;
