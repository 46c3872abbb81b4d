/**
 * Resets that wait for the old life's backend operations (2.4 device reset, 2.6.1.1 queue reset):
 * the device stops using its queues at once, but the reset completes (device_status or queue_reset
 * reads 0 again) only once every operation started before it has settled, so that nothing of the
 * old life touches guest memory or the backend afterwards. The device core resets its state; this
 * file decides when a reset is complete.
 */

import type { ResetCompletion } from './virtio-device.js';
import type { VirtqueueConfig } from './virtqueue-config.js';
import { VIRTIO_CONFIG_S_DEVICE_NEEDS_RESET } from '../spec/status.js';

/**
 * What device_status reads while a device reset waits for the old life's backend operations
 * (4.1.4.3.2: the driver waits for a read of 0 before reinitializing). Any non-zero value keeps the
 * driver waiting; DEVICE_NEEDS_RESET also says that the device is not usable yet, and another 0
 * written meanwhile is simply part of the same reset.
 */
export const RESET_PENDING_STATUS = VIRTIO_CONFIG_S_DEVICE_NEEDS_RESET;

/** Track a {@link ResetCompletion}: `done` runs once it settled (at once when there is nothing to wait for). */
export function whenSettled(completion: ResetCompletion, done: () => void): void {
  if (completion === undefined) done();
  else completion.then(done, done);
}

/** The device's resets under way: only the latest device reset completes, and it ends every queue reset before it. */
export class PendingResets {
  /** Device resets begun so far; a completion only finishes the latest one. */
  private resets = 0;
  private waiting = false;
  private readonly listeners: (() => void)[] = [];

  /** Whether a device reset waits for the old life's operations. */
  get device(): boolean {
    return this.waiting;
  }

  /** Run `listener` when every device reset completes. */
  onDeviceReset(listener: () => void): void {
    this.listeners.push(listener);
  }

  /** A device reset begins: pending until the returned function is called, unless another begins first. */
  beginDevice(): () => void {
    const serial = ++this.resets;
    this.waiting = true;
    return () => {
      if (serial !== this.resets) return;
      this.waiting = false;
      for (const listener of this.listeners) listener();
    };
  }

  /** Queue `q` was reset (2.6.1.1): its reset is pending until `completion` settles. */
  beginQueue(q: VirtqueueConfig, completion: ResetCompletion): void {
    const serial = this.resets;
    q.resetPending = true;
    // A device reset meanwhile has reset the queue (and waits for the device's operations itself).
    whenSettled(completion, () => {
      if (serial === this.resets) q.resetPending = false;
    });
  }
}
