/**
 * Block device (spec 5.2 "Block Device"): feature bits (5.2.3), struct virtio_blk_config (5.2.4),
 * the request layout, request types and status values (5.2.6).
 */

// 5.2.3 Feature bits.
export const VIRTIO_BLK_F_SIZE_MAX = 1;
export const VIRTIO_BLK_F_SEG_MAX = 2;
export const VIRTIO_BLK_F_GEOMETRY = 4;
export const VIRTIO_BLK_F_RO = 5;
export const VIRTIO_BLK_F_BLK_SIZE = 6;
export const VIRTIO_BLK_F_FLUSH = 9;
export const VIRTIO_BLK_F_TOPOLOGY = 10;
export const VIRTIO_BLK_F_CONFIG_WCE = 11;
export const VIRTIO_BLK_F_MQ = 12;
export const VIRTIO_BLK_F_DISCARD = 13;
export const VIRTIO_BLK_F_WRITE_ZEROES = 14;
export const VIRTIO_BLK_F_LIFETIME = 15;
export const VIRTIO_BLK_F_SECURE_ERASE = 16;
export const VIRTIO_BLK_F_ZONED = 17;
// 5.2.3.1 Legacy interface feature bits.
export const VIRTIO_BLK_F_BARRIER = 0;
export const VIRTIO_BLK_F_SCSI = 7;

export const VIRTIO_BLK_FEATURE_NAMES: ReadonlyMap<number, string> = new Map([
  [VIRTIO_BLK_F_BARRIER, 'BARRIER'],
  [VIRTIO_BLK_F_SIZE_MAX, 'SIZE_MAX'],
  [VIRTIO_BLK_F_SEG_MAX, 'SEG_MAX'],
  [VIRTIO_BLK_F_GEOMETRY, 'GEOMETRY'],
  [VIRTIO_BLK_F_RO, 'RO'],
  [VIRTIO_BLK_F_BLK_SIZE, 'BLK_SIZE'],
  [VIRTIO_BLK_F_SCSI, 'SCSI'],
  [VIRTIO_BLK_F_FLUSH, 'FLUSH'],
  [VIRTIO_BLK_F_TOPOLOGY, 'TOPOLOGY'],
  [VIRTIO_BLK_F_CONFIG_WCE, 'CONFIG_WCE'],
  [VIRTIO_BLK_F_MQ, 'MQ'],
  [VIRTIO_BLK_F_DISCARD, 'DISCARD'],
  [VIRTIO_BLK_F_WRITE_ZEROES, 'WRITE_ZEROES'],
  [VIRTIO_BLK_F_LIFETIME, 'LIFETIME'],
  [VIRTIO_BLK_F_SECURE_ERASE, 'SECURE_ERASE'],
  [VIRTIO_BLK_F_ZONED, 'ZONED'],
]);

/** 5.2.4: capacity and every sector number are in 512-byte units, whatever blk_size says. */
export const VIRTIO_BLK_SECTOR_SIZE = 512;

/**
 * struct virtio_blk_config (5.2.4). Each constant is the byte offset; the comment gives the width and
 * the feature that makes the field meaningful.
 */
export const VIRTIO_BLK_CONFIG_CAPACITY = 0; // le64 capacity, always
export const VIRTIO_BLK_CONFIG_SIZE_MAX = 8; // le32 size_max, SIZE_MAX
export const VIRTIO_BLK_CONFIG_SEG_MAX = 12; // le32 seg_max, SEG_MAX
export const VIRTIO_BLK_CONFIG_GEOMETRY_CYLINDERS = 16; // le16 geometry.cylinders, GEOMETRY
export const VIRTIO_BLK_CONFIG_GEOMETRY_HEADS = 18; // u8 geometry.heads, GEOMETRY
export const VIRTIO_BLK_CONFIG_GEOMETRY_SECTORS = 19; // u8 geometry.sectors, GEOMETRY
export const VIRTIO_BLK_CONFIG_BLK_SIZE = 20; // le32 blk_size, BLK_SIZE
export const VIRTIO_BLK_CONFIG_PHYSICAL_BLOCK_EXP = 24; // u8 topology.physical_block_exp, TOPOLOGY
export const VIRTIO_BLK_CONFIG_ALIGNMENT_OFFSET = 25; // u8 topology.alignment_offset, TOPOLOGY
export const VIRTIO_BLK_CONFIG_MIN_IO_SIZE = 26; // le16 topology.min_io_size, TOPOLOGY
export const VIRTIO_BLK_CONFIG_OPT_IO_SIZE = 28; // le32 topology.opt_io_size, TOPOLOGY
export const VIRTIO_BLK_CONFIG_WRITEBACK = 32; // u8 writeback, CONFIG_WCE (driver-writable)
export const VIRTIO_BLK_CONFIG_UNUSED0 = 33; // u8 unused0
export const VIRTIO_BLK_CONFIG_NUM_QUEUES = 34; // le16 num_queues, MQ
export const VIRTIO_BLK_CONFIG_MAX_DISCARD_SECTORS = 36; // le32, DISCARD
export const VIRTIO_BLK_CONFIG_MAX_DISCARD_SEG = 40; // le32, DISCARD
export const VIRTIO_BLK_CONFIG_DISCARD_SECTOR_ALIGNMENT = 44; // le32, DISCARD
export const VIRTIO_BLK_CONFIG_MAX_WRITE_ZEROES_SECTORS = 48; // le32, WRITE_ZEROES
export const VIRTIO_BLK_CONFIG_MAX_WRITE_ZEROES_SEG = 52; // le32, WRITE_ZEROES
export const VIRTIO_BLK_CONFIG_WRITE_ZEROES_MAY_UNMAP = 56; // u8, WRITE_ZEROES
export const VIRTIO_BLK_CONFIG_UNUSED1 = 57; // u8 unused1[3]
export const VIRTIO_BLK_CONFIG_MAX_SECURE_ERASE_SECTORS = 60; // le32, SECURE_ERASE
export const VIRTIO_BLK_CONFIG_MAX_SECURE_ERASE_SEG = 64; // le32, SECURE_ERASE
export const VIRTIO_BLK_CONFIG_SECURE_ERASE_SECTOR_ALIGNMENT = 68; // le32, SECURE_ERASE
/** struct virtio_blk_zoned_characteristics zoned (ZONED): 24 bytes from here. */
export const VIRTIO_BLK_CONFIG_ZONED = 72;
/** zoned.model (u8): after zone_sectors, max_open_zones, max_active_zones, max_append_sectors, write_granularity. */
export const VIRTIO_BLK_CONFIG_ZONED_MODEL = VIRTIO_BLK_CONFIG_ZONED + 20;
/** 5.2.4 zoned.model values: not zoned (or drive-managed), host-managed, host-aware. */
export const VIRTIO_BLK_Z_NONE = 0;
export const VIRTIO_BLK_Z_HM = 1;
export const VIRTIO_BLK_Z_HA = 2;
/** sizeof(struct virtio_blk_config) with every field of the current spec. */
export const VIRTIO_BLK_CONFIG_SIZE = 96;

/** 5.2.6: struct virtio_blk_req header { le32 type; le32 reserved; le64 sector; }, then data, then u8 status. */
export const VIRTIO_BLK_REQ_TYPE = 0;
export const VIRTIO_BLK_REQ_RESERVED = 4;
export const VIRTIO_BLK_REQ_SECTOR = 8;
export const VIRTIO_BLK_REQ_HDR_SIZE = 16;
/** The trailing status byte. */
export const VIRTIO_BLK_REQ_STATUS_SIZE = 1;

// 5.2.6 Request types.
export const VIRTIO_BLK_T_IN = 0;
export const VIRTIO_BLK_T_OUT = 1;
export const VIRTIO_BLK_T_FLUSH = 4;
export const VIRTIO_BLK_T_GET_ID = 8;
export const VIRTIO_BLK_T_GET_LIFETIME = 10;
export const VIRTIO_BLK_T_DISCARD = 11;
export const VIRTIO_BLK_T_WRITE_ZEROES = 13;
export const VIRTIO_BLK_T_SECURE_ERASE = 14;
// 5.2.6 Zoned request types (VIRTIO_BLK_F_ZONED).
export const VIRTIO_BLK_T_ZONE_APPEND = 15;
export const VIRTIO_BLK_T_ZONE_REPORT = 16;
export const VIRTIO_BLK_T_ZONE_OPEN = 18;
export const VIRTIO_BLK_T_ZONE_CLOSE = 20;
export const VIRTIO_BLK_T_ZONE_FINISH = 22;
export const VIRTIO_BLK_T_ZONE_RESET = 24;
export const VIRTIO_BLK_T_ZONE_RESET_ALL = 26;
// 5.2.6.3 Legacy request types.
export const VIRTIO_BLK_T_FLUSH_OUT = 5;
export const VIRTIO_BLK_T_BARRIER = 0x8000_0000;

// 5.2.6 Status values.
export const VIRTIO_BLK_S_OK = 0;
export const VIRTIO_BLK_S_IOERR = 1;
export const VIRTIO_BLK_S_UNSUPP = 2;

/** 5.2.6: the GET_ID device ID string is NUL-padded ASCII of up to this many bytes. */
export const VIRTIO_BLK_ID_BYTES = 20;

/**
 * 5.2.6: struct virtio_blk_discard_write_zeroes { le64 sector; le32 num_sectors; le32 flags; },
 * one per segment of a DISCARD, WRITE_ZEROES or SECURE_ERASE request.
 */
export const VIRTIO_BLK_DWZ_SECTOR = 0;
export const VIRTIO_BLK_DWZ_NUM_SECTORS = 8;
export const VIRTIO_BLK_DWZ_FLAGS = 12;
export const VIRTIO_BLK_DWZ_SIZE = 16;
/** flags.unmap (bit 0); bits 1..31 are reserved. */
export const VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP = 1;
