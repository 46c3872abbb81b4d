/**
 * What the device core needs of an administration virtqueue's owner (2.13, VIRTIO_F_ADMIN_VQ): the
 * queue's maximum size, a way to serve the commands queued on it, and a reset. The core offers
 * VIRTIO_F_ADMIN_VQ, places the queue after the device's own queues (admin_queue_index =
 * num_queues, admin_queue_num = 1) and runs it beside the device model, which never sees it.
 */

import type { DeviceQueue } from '../queue/types.js';
import type { DriverAuditSink } from '../spec/driver-requirements.js';

export interface AdminQueueHandler {
  /** The administration queue's maximum size (a power of two). */
  readonly queueMaxSize: number;
  /**
   * Serve every command available on `queue`, pushing a used element for each; returns whether any
   * was pushed. Throws QueueFaultError for a chain the ring cannot give (the core then sets
   * DEVICE_NEEDS_RESET); every command it can read is answered with a status, never a throw. With
   * `audit`, the driver statements of 2.12.1.6 a command breaks are recorded there.
   */
  serve(queue: DeviceQueue, audit?: DriverAuditSink): boolean;
  /** Device reset (2.4): back to the state after power-on (2.12.1: only LIST_QUERY and LIST_USE in use). */
  reset(): void;
}
