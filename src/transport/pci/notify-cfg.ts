/**
 * The notification structure, device side (4.1.4.4): queue `i` is notified by a write at
 * queue_notify_off(i) * notify_off_multiplier. As QEMU 7.2 without page-per-vq: multiplier 4,
 * queue_notify_off = queue index; a write of any width at offset o notifies queue o / multiplier;
 * reads return 0.
 */

import type { BarRegion } from '../../pci/bar-region.js';
import type { DeviceCore } from '../../core/device-core.js';

/** Bytes between queue notify addresses (4.1.4.4); QEMU's default without page-per-vq. */
export const MODERN_NOTIFY_OFF_MULTIPLIER = 4;

/** The queue_notify_off the driver reads for queue `index` (4.1.4.4). */
export function queueNotifyOff(index: number): number {
  return index;
}

/** The notify block of BAR4 over `core`. */
export function notifyCfgRegion(core: DeviceCore): BarRegion {
  return {
    read: () => 0,
    write: (offset: number) => {
      const index = Math.floor(offset / MODERN_NOTIFY_OFF_MULTIPLIER);
      if (index < core.queues.length) core.notify(index);
    },
  };
}
