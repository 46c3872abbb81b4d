/**
 * The virtio PCI transport's own layouts (spec 4.1 "Virtio Over PCI Bus"): capability types and the
 * struct virtio_pci_cap family (4.1.4), the common configuration structure (4.1.4.3), notification
 * (4.1.4.4), ISR (4.1.4.5), the PCI configuration access capability (4.1.4.9) and the legacy
 * header in BAR0 (4.1.4.10).
 */

// 4.1.4 cfg_type values.
export const VIRTIO_PCI_CAP_COMMON_CFG = 1;
export const VIRTIO_PCI_CAP_NOTIFY_CFG = 2;
export const VIRTIO_PCI_CAP_ISR_CFG = 3;
export const VIRTIO_PCI_CAP_DEVICE_CFG = 4;
export const VIRTIO_PCI_CAP_PCI_CFG = 5;
export const VIRTIO_PCI_CAP_SHARED_MEMORY_CFG = 8;
export const VIRTIO_PCI_CAP_VENDOR_CFG = 9;

export const VIRTIO_PCI_CAP_NAMES: ReadonlyMap<number, string> = new Map([
  [VIRTIO_PCI_CAP_COMMON_CFG, 'common-cfg'],
  [VIRTIO_PCI_CAP_NOTIFY_CFG, 'notify-cfg'],
  [VIRTIO_PCI_CAP_ISR_CFG, 'isr-cfg'],
  [VIRTIO_PCI_CAP_DEVICE_CFG, 'device-cfg'],
  [VIRTIO_PCI_CAP_PCI_CFG, 'pci-cfg'],
  [VIRTIO_PCI_CAP_SHARED_MEMORY_CFG, 'shared-memory-cfg'],
  [VIRTIO_PCI_CAP_VENDOR_CFG, 'vendor-cfg'],
]);

/**
 * struct virtio_pci_cap { u8 cap_vndr; u8 cap_next; u8 cap_len; u8 cfg_type; u8 bar; u8 id;
 *   u8 padding[2]; le32 offset; le32 length; };
 */
export const VIRTIO_PCI_CAP_VNDR = 0;
export const VIRTIO_PCI_CAP_NEXT = 1;
export const VIRTIO_PCI_CAP_LEN = 2;
export const VIRTIO_PCI_CAP_CFG_TYPE = 3;
export const VIRTIO_PCI_CAP_BAR = 4;
export const VIRTIO_PCI_CAP_ID = 5;
export const VIRTIO_PCI_CAP_OFFSET = 8;
export const VIRTIO_PCI_CAP_LENGTH = 12;
export const VIRTIO_PCI_CAP_SIZE = 16;
/** struct virtio_pci_cap64 adds le32 offset_hi; le32 length_hi (shared memory regions). */
export const VIRTIO_PCI_CAP64_OFFSET_HI = 16;
export const VIRTIO_PCI_CAP64_LENGTH_HI = 20;
export const VIRTIO_PCI_CAP64_SIZE = 24;
/**
 * struct virtio_pci_vndr_data (4.1.4.8): cap_vndr, cap_next, cap_len, cfg_type, le16 vendor_id, then
 * the vendor's own data; the whole capability is a multiple of 4 bytes long.
 */
export const VIRTIO_PCI_VNDR_DATA_VENDOR_ID = 4;
export const VIRTIO_PCI_VNDR_DATA_HEADER_SIZE = 6;
export const VIRTIO_PCI_VNDR_DATA_SIZE_MULTIPLE = 4;
/** struct virtio_pci_notify_cap { struct virtio_pci_cap cap; le32 notify_off_multiplier; }; */
export const VIRTIO_PCI_NOTIFY_CAP_MULT = 16;
export const VIRTIO_PCI_NOTIFY_CAP_SIZE = 20;
/** struct virtio_pci_cfg_cap { struct virtio_pci_cap cap; u8 pci_cfg_data[4]; }; */
export const VIRTIO_PCI_CFG_CAP_DATA = 16;
export const VIRTIO_PCI_CFG_CAP_SIZE = 20;
/** Highest BAR index a virtio capability may name (4.1.4: values 0x0 to 0x5). */
export const VIRTIO_PCI_CAP_BAR_MAX = 5;

/**
 * struct virtio_pci_common_cfg (4.1.4.3). Each constant is the byte offset; the comment gives the
 * width and who may write it.
 */
export const VIRTIO_PCI_COMMON_DFSELECT = 0; // le32 device_feature_select, RW
export const VIRTIO_PCI_COMMON_DF = 4; // le32 device_feature, RO
export const VIRTIO_PCI_COMMON_GFSELECT = 8; // le32 driver_feature_select, RW
export const VIRTIO_PCI_COMMON_GF = 12; // le32 driver_feature, RW
export const VIRTIO_PCI_COMMON_MSIX = 16; // le16 config_msix_vector, RW
export const VIRTIO_PCI_COMMON_NUMQ = 18; // le16 num_queues, RO
export const VIRTIO_PCI_COMMON_STATUS = 20; // u8 device_status, RW
export const VIRTIO_PCI_COMMON_CFGGENERATION = 21; // u8 config_generation, RO
export const VIRTIO_PCI_COMMON_Q_SELECT = 22; // le16 queue_select, RW
export const VIRTIO_PCI_COMMON_Q_SIZE = 24; // le16 queue_size, RW
export const VIRTIO_PCI_COMMON_Q_MSIX = 26; // le16 queue_msix_vector, RW
export const VIRTIO_PCI_COMMON_Q_ENABLE = 28; // le16 queue_enable, RW
export const VIRTIO_PCI_COMMON_Q_NOFF = 30; // le16 queue_notify_off, RO
export const VIRTIO_PCI_COMMON_Q_DESCLO = 32; // le64 queue_desc, RW
export const VIRTIO_PCI_COMMON_Q_DESCHI = 36;
export const VIRTIO_PCI_COMMON_Q_AVAILLO = 40; // le64 queue_driver, RW
export const VIRTIO_PCI_COMMON_Q_AVAILHI = 44;
export const VIRTIO_PCI_COMMON_Q_USEDLO = 48; // le64 queue_device, RW
export const VIRTIO_PCI_COMMON_Q_USEDHI = 52;
/** le16 queue_notify_data (1.2 name; 1.4 calls it queue_notif_config_data), RO. */
export const VIRTIO_PCI_COMMON_Q_NDATA = 56;
export const VIRTIO_PCI_COMMON_Q_RESET = 58; // le16 queue_reset, RW (VIRTIO_F_RING_RESET)
export const VIRTIO_PCI_COMMON_ADM_Q_IDX = 60; // le16 admin_queue_index, RO (VIRTIO_F_ADMIN_VQ)
export const VIRTIO_PCI_COMMON_ADM_Q_NUM = 62; // le16 admin_queue_num, RO
/** Size of the whole current struct; drivers need at least up to queue_device (4.1.4.3.2). */
export const VIRTIO_PCI_COMMON_CFG_SIZE = 64;
/** Minimum common-cfg length a driver accepts: through queue_device (as Linux checks). */
export const VIRTIO_PCI_COMMON_CFG_MIN_SIZE = 56;

/** 4.1.4.3: "no vector" for config_msix_vector / queue_msix_vector. */
export const VIRTIO_MSI_NO_VECTOR = 0xffff;

// 4.1.4.5 ISR status bits.
export const VIRTIO_PCI_ISR_QUEUE = 0x1;
export const VIRTIO_PCI_ISR_CONFIG = 0x2;

/**
 * Legacy header in BAR0 (4.1.4.10), all little-endian in I/O space. The MSI-X registers exist only
 * while MSI-X is enabled; device config follows at 20, or at 24 with MSI-X enabled.
 */
export const VIRTIO_PCI_HOST_FEATURES = 0; // le32 RO
export const VIRTIO_PCI_GUEST_FEATURES = 4; // le32 RW
export const VIRTIO_PCI_QUEUE_PFN = 8; // le32 RW
export const VIRTIO_PCI_QUEUE_NUM = 12; // le16 RO
export const VIRTIO_PCI_QUEUE_SEL = 14; // le16 RW
export const VIRTIO_PCI_QUEUE_NOTIFY = 16; // le16 RW
export const VIRTIO_PCI_STATUS = 18; // u8 RW
export const VIRTIO_PCI_ISR = 19; // u8 R (read clears)
export const VIRTIO_MSI_CONFIG_VECTOR = 20; // le16 RW, with MSI-X only
export const VIRTIO_MSI_QUEUE_VECTOR = 22; // le16 RW, with MSI-X only
export const VIRTIO_PCI_CONFIG_OFF_NO_MSIX = 20;
export const VIRTIO_PCI_CONFIG_OFF_MSIX = 24;
/** Legacy queue PFNs count pages of this size (4.1.4.10). */
export const VIRTIO_PCI_QUEUE_ADDR_SHIFT = 12;
/** Legacy split ring: the used ring starts on this alignment (2.7.2 legacy note). */
export const VIRTIO_PCI_VRING_ALIGN = 4096;
