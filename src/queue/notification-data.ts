/**
 * Driver notifications with VIRTIO_F_NOTIFICATION_DATA (2.9 "Driver Notifications"; PCI 4.1.5.2):
 * one 32-bit value, le32 { vqn : 16; next_off : 15; next_wrap : 1 }. Both halves build and take it
 * apart here. The upper 16 bits ("next": next_off with next_wrap in bit 15) are format-neutral: a
 * split ring's next avail index (2.9: its 15 low bits and bit 15), a packed ring's next descriptor
 * offset with the driver's wrap counter. Each ring format says which values are possible
 * (ring-format.ts).
 */

import { NOTIFY_DATA_NEXT_SHIFT, NOTIFY_DATA_VQN_MASK } from '../spec/packed-ring.js';

/** The 32-bit notification value for queue identifier `vqn` (index or queue_notif_config_data) and `next`. */
export function notificationValue(vqn: number, next: number): number {
  return ((next & 0xffff) * 2 ** NOTIFY_DATA_NEXT_SHIFT + (vqn & NOTIFY_DATA_VQN_MASK)) >>> 0;
}

/** The queue identifier field (bits 0-15) of a notification value. */
export function notificationVqn(value: number): number {
  return value & NOTIFY_DATA_VQN_MASK;
}

/** The `next` field (bits 16-31: next_off, next_wrap) of a notification value. */
export function notificationNext(value: number): number {
  return (value >>> NOTIFY_DATA_NEXT_SHIFT) & 0xffff;
}
