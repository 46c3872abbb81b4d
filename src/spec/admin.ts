/**
 * Device groups and group administration commands (spec 2.12 "Device groups", 2.12.1 "Group
 * administration commands", 2.12.1.1 "Legacy Interfaces") and the layout of struct
 * virtio_admin_cmd as an administration virtqueue carries it (2.13). Constants and layouts only.
 */

/** 2.12: group type identifiers. */
export const VIRTIO_ADMIN_GROUP_TYPE_SELF = 0x0;
export const VIRTIO_ADMIN_GROUP_TYPE_SRIOV = 0x1;

/** 2.12.1: opcodes. 0x0013..0x7fff use struct virtio_admin_cmd; 0x8000.. are reserved. */
export const VIRTIO_ADMIN_CMD_LIST_QUERY = 0x0;
export const VIRTIO_ADMIN_CMD_LIST_USE = 0x1;
export const VIRTIO_ADMIN_CMD_LEGACY_COMMON_CFG_WRITE = 0x2;
export const VIRTIO_ADMIN_CMD_LEGACY_COMMON_CFG_READ = 0x3;
export const VIRTIO_ADMIN_CMD_LEGACY_DEV_CFG_WRITE = 0x4;
export const VIRTIO_ADMIN_CMD_LEGACY_DEV_CFG_READ = 0x5;
export const VIRTIO_ADMIN_CMD_LEGACY_NOTIFY_INFO = 0x6;

/** 2.12.1: status values (matching Linux errno numbers). Others are reserved errors. */
export const VIRTIO_ADMIN_STATUS_OK = 0;
export const VIRTIO_ADMIN_STATUS_ENXIO = 6;
export const VIRTIO_ADMIN_STATUS_EAGAIN = 11;
export const VIRTIO_ADMIN_STATUS_ENOMEM = 12;
export const VIRTIO_ADMIN_STATUS_EBUSY = 16;
export const VIRTIO_ADMIN_STATUS_EINVAL = 22;
export const VIRTIO_ADMIN_STATUS_ENOSPC = 28;

/** 2.12.1: status_qualifier values; 0x08..0xffff are reserved. */
export const VIRTIO_ADMIN_STATUS_Q_OK = 0x0;
export const VIRTIO_ADMIN_STATUS_Q_INVALID_COMMAND = 0x1;
export const VIRTIO_ADMIN_STATUS_Q_INVALID_OPCODE = 0x2;
export const VIRTIO_ADMIN_STATUS_Q_INVALID_FIELD = 0x3;
export const VIRTIO_ADMIN_STATUS_Q_INVALID_GROUP = 0x4;
export const VIRTIO_ADMIN_STATUS_Q_INVALID_MEMBER = 0x5;
export const VIRTIO_ADMIN_STATUS_Q_NORESOURCE = 0x6;
export const VIRTIO_ADMIN_STATUS_Q_TRYAGAIN = 0x7;

/** Names of the defined statuses, for messages. */
export const VIRTIO_ADMIN_STATUS_NAMES: ReadonlyMap<number, string> = new Map([
  [VIRTIO_ADMIN_STATUS_OK, 'OK'],
  [VIRTIO_ADMIN_STATUS_ENXIO, 'ENXIO'],
  [VIRTIO_ADMIN_STATUS_EAGAIN, 'EAGAIN'],
  [VIRTIO_ADMIN_STATUS_ENOMEM, 'ENOMEM'],
  [VIRTIO_ADMIN_STATUS_EBUSY, 'EBUSY'],
  [VIRTIO_ADMIN_STATUS_EINVAL, 'EINVAL'],
  [VIRTIO_ADMIN_STATUS_ENOSPC, 'ENOSPC'],
]);

/** Names of the defined status qualifiers, for messages. */
export const VIRTIO_ADMIN_STATUS_Q_NAMES: readonly string[] = [
  'OK',
  'INVALID_COMMAND',
  'INVALID_OPCODE',
  'INVALID_FIELD',
  'INVALID_GROUP',
  'INVALID_MEMBER',
  'NORESOURCE',
  'TRYAGAIN',
];

/**
 * struct virtio_admin_cmd, device-readable part: le16 opcode, le16 group_type, u8 reserved1[12],
 * le64 group_member_id, then command_specific_data.
 */
export const VIRTIO_ADMIN_CMD_OPCODE = 0;
export const VIRTIO_ADMIN_CMD_GROUP_TYPE = 2;
export const VIRTIO_ADMIN_CMD_RESERVED1 = 4;
export const VIRTIO_ADMIN_CMD_GROUP_MEMBER_ID = 16;
/** Where command_specific_data starts (the header's length). */
export const VIRTIO_ADMIN_CMD_DATA = 24;

/** Device-writable part: le16 status, le16 status_qualifier, u8 reserved2[4], then command_specific_result. */
export const VIRTIO_ADMIN_CMD_STATUS = 0;
export const VIRTIO_ADMIN_CMD_STATUS_QUALIFIER = 2;
/** Where command_specific_result starts (the result header's length). */
export const VIRTIO_ADMIN_CMD_RESULT = 8;

/** 2.13.2: both parts the driver supplies are a multiple of 64 bits long. */
export const VIRTIO_ADMIN_CMD_PART_ALIGN = 8;

/**
 * struct virtio_admin_cmd_legacy_common_cfg_wr_data / _dev_reg_wr_data: u8 offset, u8 reserved[7],
 * u8 data[]. The read forms (…_rd_data) are the offset byte alone.
 */
export const VIRTIO_ADMIN_LEGACY_WR_OFFSET = 0;
export const VIRTIO_ADMIN_LEGACY_WR_DATA = 8;

/** struct virtio_pci_legacy_notify_info: u8 flags, u8 bar, u8 padding[6], le64 offset (16 bytes). */
export const VIRTIO_ADMIN_LEGACY_NOTIFY_INFO_SIZE = 16;
export const VIRTIO_ADMIN_LEGACY_NOTIFY_INFO_FLAGS = 0;
export const VIRTIO_ADMIN_LEGACY_NOTIFY_INFO_BAR = 1;
export const VIRTIO_ADMIN_LEGACY_NOTIFY_INFO_OFFSET = 8;
/** struct virtio_admin_cmd_legacy_notify_info_result: four entries. */
export const VIRTIO_ADMIN_LEGACY_NOTIFY_INFO_ENTRIES = 4;
/** flags of an entry: end of list, an owner device address, a member device address. */
export const VIRTIO_ADMIN_LEGACY_NOTIFY_INFO_FLAGS_END = 0;
export const VIRTIO_ADMIN_LEGACY_NOTIFY_INFO_FLAGS_OWNER_DEV = 1;
export const VIRTIO_ADMIN_LEGACY_NOTIFY_INFO_FLAGS_MEMBER_DEV = 2;

/**
 * struct virtio_admin_cmd_list (LIST_QUERY's result, LIST_USE's data): le64 words, bit (n % 64) of
 * word n / 64 set when opcode n is in the list. The length is whole words for the largest opcode;
 * extra all-zero words are allowed.
 */
export function encodeCommandList(opcodes: Iterable<number>): Uint8Array {
  let max = -1;
  const list = [...opcodes];
  for (const op of list) max = Math.max(max, op);
  const bytes = new Uint8Array(Math.ceil((max + 1) / 64) * 8);
  for (const op of list) bytes[op >> 3]! |= 1 << (op & 7);
  return bytes;
}

/** The opcodes a struct virtio_admin_cmd_list holds, ascending (bounded by the bytes given). */
export function decodeCommandList(bytes: Uint8Array): number[] {
  const opcodes: number[] = [];
  for (let i = 0; i < bytes.length; i++) for (let b = 0; b < 8; b++) if ((bytes[i]! & (1 << b)) !== 0) opcodes.push(i * 8 + b);
  return opcodes;
}
