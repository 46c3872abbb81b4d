/** Split virtqueue layout (spec 2.7 "Split Virtqueues"). */

/** struct virtq_desc { le64 addr; le32 len; le16 flags; le16 next; }; */
export const VIRTQ_DESC_SIZE = 16;
export const VIRTQ_DESC_ADDR = 0;
export const VIRTQ_DESC_LEN = 8;
export const VIRTQ_DESC_FLAGS = 12;
export const VIRTQ_DESC_NEXT = 14;

export const VIRTQ_DESC_F_NEXT = 1;
export const VIRTQ_DESC_F_WRITE = 2;
export const VIRTQ_DESC_F_INDIRECT = 4;

/** struct virtq_avail { le16 flags; le16 idx; le16 ring[N]; le16 used_event; }; */
export const VIRTQ_AVAIL_FLAGS = 0;
export const VIRTQ_AVAIL_IDX = 2;
export const VIRTQ_AVAIL_RING = 4;
export const VIRTQ_AVAIL_ELEM_SIZE = 2;
export const VIRTQ_AVAIL_F_NO_INTERRUPT = 1;

/** struct virtq_used { le16 flags; le16 idx; struct virtq_used_elem ring[N]; le16 avail_event; }; */
export const VIRTQ_USED_FLAGS = 0;
export const VIRTQ_USED_IDX = 2;
export const VIRTQ_USED_RING = 4;
/** struct virtq_used_elem { le32 id; le32 len; }; */
export const VIRTQ_USED_ELEM_SIZE = 8;
export const VIRTQ_USED_F_NO_NOTIFY = 1;

/** 2.7 alignment requirements: descriptor table 16, available ring 2, used ring 4. */
export const VIRTQ_DESC_ALIGN = 16;
export const VIRTQ_AVAIL_ALIGN = 2;
export const VIRTQ_USED_ALIGN = 4;

/** 2.7: queue size is at most 32768; split queue sizes must be powers of 2 unless negotiated otherwise. */
export const VIRTQ_MAX_SIZE = 32768;

/** Bytes of the descriptor table for a queue of `size`. */
export function descTableSize(size: number): number {
  return VIRTQ_DESC_SIZE * size;
}
/** Bytes of the available ring (with used_event) for a queue of `size`. */
export function availRingSize(size: number): number {
  return VIRTQ_AVAIL_RING + VIRTQ_AVAIL_ELEM_SIZE * size + 2;
}
/** Bytes of the used ring (with avail_event) for a queue of `size`. */
export function usedRingSize(size: number): number {
  return VIRTQ_USED_RING + VIRTQ_USED_ELEM_SIZE * size + 2;
}

/**
 * 2.7.7.2 / 2.7.10: with VIRTIO_F_EVENT_IDX, whether moving an index from `old` to `newIdx` crossed
 * `eventIdx` (all 16-bit, wrapping), i.e. whether the other side asked to be notified.
 */
export function vringNeedEvent(eventIdx: number, newIdx: number, old: number): boolean {
  return ((newIdx - eventIdx - 1) & 0xffff) < ((newIdx - old) & 0xffff);
}

/**
 * 2.7.2 "Legacy Interfaces: A Note on Virtqueue Layout": one contiguous area, descriptor table then
 * available ring, padding to `queueAlign`, then the used ring. Offset of the used ring in that area.
 */
export function legacyUsedOffset(size: number, queueAlign: number): number {
  return alignUp(descTableSize(size) + availRingSize(size), queueAlign);
}
/** 2.7.2: total bytes of the legacy contiguous ring area (virtq_size() in the spec). */
export function legacyRingSize(size: number, queueAlign: number): number {
  return legacyUsedOffset(size, queueAlign) + alignUp(usedRingSize(size), queueAlign);
}
function alignUp(n: number, align: number): number {
  return Math.ceil(n / align) * align;
}
