/**
 * The notification structure, device side (4.1.4.4, notifications 4.1.5.2): queue `i` is notified by
 * a write at queue_notify_off(i) * notify_off_multiplier. As QEMU 7.2 without page-per-vq:
 * multiplier 4, queue_notify_off = queue index; reads return 0.
 *
 * What a write means depends on the negotiated features:
 * - neither VIRTIO_F_NOTIFICATION_DATA nor VIRTIO_F_NOTIF_CONFIG_DATA: a write of any width at
 *   offset o notifies queue o / multiplier and its value is not looked at (as QEMU 7.2);
 * - with either: the driver MUST write a 16-bit value (32-bit with NOTIFICATION_DATA) whose low 16
 *   bits are the queue index, or the queue's queue_notif_config_data with NOTIF_CONFIG_DATA
 *   (4.1.5.2 driver requirements). A write of another width or offset, or naming another queue,
 *   follows no order of events a driver keeping those rules can produce: a guest fault
 *   (ERR_QUEUE_NOTIFICATION, DEVICE_NEEDS_RESET). With NOTIFICATION_DATA the upper 16 bits go to the
 *   core, which checks them against the ring format.
 */

import type { AccessSize } from '../../memory/access-size.js';
import type { BarRegion } from '../../pci/bar-region.js';
import type { DeviceCore } from '../../core/device-core.js';
import { notificationNext, notificationVqn } from '../../queue/notification-data.js';
import { VIRTIO_F_NOTIFICATION_DATA, VIRTIO_F_NOTIF_CONFIG_DATA, hasFeature } from '../../spec/features.js';
import { DRIVER_REQUIREMENTS as R, type DriverAuditSink } from '../../spec/driver-requirements.js';

/** Bytes between queue notify addresses (4.1.4.4); QEMU's default without page-per-vq. 4.1.4.4: a multiple of 4 for NOTIFICATION_DATA. */
export const MODERN_NOTIFY_OFF_MULTIPLIER = 4;

/** The queue_notify_off the driver reads for queue `index` (4.1.4.4). */
export function queueNotifyOff(index: number): number {
  return index;
}

/**
 * The queue_notif_config_data of queue `index` (4.1.4.3, VIRTIO_F_NOTIF_CONFIG_DATA): the device's
 * own identifier for the queue. This device gives the byte offset of the queue's notify address in
 * the notify structure (the spec's "internal offset related to the virtqueue index").
 */
export function queueNotifConfigData(index: number): number {
  return queueNotifyOff(index) * MODERN_NOTIFY_OFF_MULTIPLIER;
}

/** The notify block of BAR4 over `core`. */
export function notifyCfgRegion(core: DeviceCore): BarRegion {
  return {
    read: () => 0,
    write: (offset: number, size: AccessSize, value: number) => {
      const index = Math.floor(offset / MODERN_NOTIFY_OFF_MULTIPLIER);
      if (core.queueConfig(index) === undefined) return;
      const features = core.negotiatedFeatures;
      const withData = hasFeature(features, VIRTIO_F_NOTIFICATION_DATA);
      const configData = hasFeature(features, VIRTIO_F_NOTIF_CONFIG_DATA);
      const width = withData ? 4 : 2;
      if (core.audit !== undefined) auditNotification(core.audit, offset, size, value, index, width, configData);
      if (!withData && !configData) {
        core.notify(index);
        return;
      }
      if (size !== width || offset % MODERN_NOTIFY_OFF_MULTIPLIER !== 0) {
        core.rejectNotification(
          index,
          `a ${size}-byte notification at notify offset ${offset}; the driver must write ${width} bytes at ${index * MODERN_NOTIFY_OFF_MULTIPLIER}`,
        );
        return;
      }
      const expected = configData ? queueNotifConfigData(index) : index;
      const vqn = notificationVqn(value);
      if (vqn !== expected) {
        core.rejectNotification(index, `notification names queue identifier ${vqn}, expected ${expected}`);
        return;
      }
      core.notify(index, withData ? notificationNext(value) : undefined);
    },
  };
}

/** Audit: the driver rules of 4.1.5.2.1 for a notification of queue `index` (the width, and what the value names). */
function auditNotification(
  audit: DriverAuditSink,
  offset: number,
  size: AccessSize,
  value: number,
  index: number,
  width: number,
  configData: boolean,
): void {
  if (size !== width || offset % MODERN_NOTIFY_OFF_MULTIPLIER !== 0) {
    audit(
      R.notifyWidth,
      `a ${size}-byte notification of queue ${index}; ${width} bytes at ${index * MODERN_NOTIFY_OFF_MULTIPLIER} expected`,
    );
    return;
  }
  const expected = configData ? queueNotifConfigData(index) : index;
  const named = notificationVqn(value);
  if (named !== expected) audit(R.notifyValue, `notification of queue ${index} carries ${named}, expected ${expected}`);
}
