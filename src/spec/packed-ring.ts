/** Packed virtqueue layout (spec 2.8 "Packed Virtqueues", VIRTIO_F_RING_PACKED). */

/** struct pvirtq_desc { le64 addr; le32 len; le16 id; le16 flags; }; the same size as a split descriptor. */
export const PVIRTQ_DESC_SIZE = 16;
export const PVIRTQ_DESC_ADDR = 0;
export const PVIRTQ_DESC_LEN = 8;
export const PVIRTQ_DESC_ID = 12;
export const PVIRTQ_DESC_FLAGS = 14;

/** 2.8.1: descriptor flags; NEXT, WRITE and INDIRECT keep the split ring's values (2.7.5). */
export const VIRTQ_DESC_F_AVAIL = 1 << 7;
export const VIRTQ_DESC_F_USED = 1 << 15;

/**
 * struct pvirtq_event_suppress { le16 desc; le16 flags; }: `desc` holds the event offset (bits 0-14)
 * and its wrap counter (bit 15); used only when `flags` is RING_EVENT_FLAGS_DESC (with EVENT_IDX).
 */
export const PVIRTQ_EVENT_DESC = 0;
export const PVIRTQ_EVENT_FLAGS = 2;
export const PVIRTQ_EVENT_SUPPRESS_SIZE = 4;
export const RING_EVENT_FLAGS_ENABLE = 0;
export const RING_EVENT_FLAGS_DISABLE = 1;
export const RING_EVENT_FLAGS_DESC = 2;
/** The value 3 of the flags field is reserved (2.8.10). */
export const RING_EVENT_FLAGS_RESERVED = 3;
export const RING_EVENT_OFF_MASK = 0x7fff;
export const RING_EVENT_WRAP_SHIFT = 15;

/** 2.8.10.1 alignment: descriptor ring 16, driver and device event suppression areas 4. */
export const PVIRTQ_DESC_ALIGN = 16;
export const PVIRTQ_EVENT_ALIGN = 4;

/** Bytes of the descriptor ring for a queue of `size`. */
export function packedDescRingSize(size: number): number {
  return PVIRTQ_DESC_SIZE * size;
}

/**
 * 2.4.3 / 2.8.1 notification data (VIRTIO_F_NOTIFICATION_DATA) for a packed queue: bits 0-15 the
 * queue index (or queue_notify_data with NOTIF_CONFIG_DATA), bits 16-30 the offset of the next
 * available descriptor, bit 31 the driver's wrap counter. For a split queue bits 16-31 are the next
 * available index.
 */
export const NOTIFY_DATA_VQN_MASK = 0xffff;
export const NOTIFY_DATA_NEXT_SHIFT = 16;
export const NOTIFY_DATA_PACKED_OFF_MASK = 0x7fff;
export const NOTIFY_DATA_PACKED_WRAP_SHIFT = 31;
