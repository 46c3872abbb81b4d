/**
 * What a {@link DeviceCore} tells one observer (a transport monitor) as a driver drives it, in
 * transport-neutral words: device status changes, the driver's available buffer notifications and
 * the notifications the device sends. Opt-in: a core without an observer pays one undefined check
 * at each of these points and nothing else. The calls come synchronously from inside the guest's
 * register access (or the device's completion): an observer records and returns, it never calls back
 * into the device.
 */

/**
 * The two notifications a device sends its driver (2.3): a used buffer notification for a queue, a
 * configuration change notification (also how DEVICE_NEEDS_RESET is told, 2.1.2).
 */
export type DriverNotification = { readonly kind: 'used-buffer'; readonly queue: number } | { readonly kind: 'configuration-change' };

/** Why device_status changed: a driver write (a reset is a write of 0), or the device setting DEVICE_NEEDS_RESET (2.1.2). */
export type StatusCause = 'driver' | 'reset' | 'device';

/** See the file comment. */
export interface DeviceObserver {
  /** device_status is now `status` (as the core holds it, before a pending reset completes). */
  statusChanged(status: number, cause: StatusCause): void;
  /** The driver notified queue `index` (2.9), whether or not the device could use the notification. */
  queueNotified(index: number): void;
  /** The device sent the driver `notification` (event suppression already applied, 2.3). */
  notificationSent(notification: DriverNotification): void;
}
