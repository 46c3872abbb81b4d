/**
 * 2.3 Notifications, the device's side: the driver's available buffer notifications dispatched to
 * the device model (or the administration queue), and the notifications the device sends its driver
 * (used buffer, configuration change) subject to event suppression and the suspend gate. How one
 * reaches the driver is the transport's {@link NotificationSink}. The driver's side is
 * driver/driver-notifications.ts.
 */

import { QueueFaultError } from '../errors.js';
import { ringFormat } from '../queue/ring-format.js';
import { DRIVER_REQUIREMENTS as R, type DriverAuditSink } from '../spec/driver-requirements.js';
import {
  VIRTIO_CONFIG_S_DEVICE_NEEDS_RESET,
  VIRTIO_CONFIG_S_DRIVER_OK,
  VIRTIO_CONFIG_S_FAILED,
  VIRTIO_CONFIG_S_SUSPEND,
} from '../spec/status.js';
import type { DeviceObserver, DriverNotification } from './device-observer.js';
import type { DeviceStatus } from './device-status.js';
import { asError, type VirtioDevice } from './virtio-device.js';
import type { Virtqueues } from './virtqueues.js';

/**
 * How the core sends notifications; each transport implements it on its own mechanism (the PCI
 * transport: ISR bits, MSI-X vectors or INTx, see transport/pci/pci-notifications.ts).
 */
export interface NotificationSink {
  /** The core decided to notify the driver (event suppression already applied). */
  notify(notification: DriverNotification): void;
  /** A device reset (2.4) began: the transport's notification state goes back to its power-on value. */
  reset(): void;
}

/** What notifications need of the device core (device-core.ts). */
export interface NotificationsHost {
  readonly device: VirtioDevice;
  readonly audit: DriverAuditSink | undefined;
  /** The negotiated features once FEATURES_OK is set, else 0. */
  readonly negotiatedFeatures: bigint;
  readonly needsResetSet: boolean;
  readonly resetPending: boolean;
  /** Whether the current interface lets the driver use the device before DRIVER_OK (InterfaceRules). */
  readonly usableBeforeDriverOk: boolean;
  readonly observer: DeviceObserver | undefined;
  /** A fault: DEVICE_NEEDS_RESET. */
  needsReset(cause: Error): void;
}

/** See the file comment. */
export class Notifications {
  constructor(
    private readonly host: NotificationsHost,
    private readonly deviceStatus: DeviceStatus,
    private readonly vqs: Virtqueues,
    private readonly sink: NotificationSink,
  ) {}

  /**
   * Whether the device serves its queues: activated (at DRIVER_OK, or before it on an interface
   * that allows that, on the first notification), DEVICE_NEEDS_RESET not set and not suspending (3.4).
   */
  get live(): boolean {
    return this.vqs.activated && !this.host.needsResetSet && !this.deviceStatus.suspendSet;
  }

  /** A notification before DRIVER_OK on an interface that allows use then: start the device now. */
  private activateOnFirstUse(): void {
    if (this.vqs.activated || !this.host.usableBeforeDriverOk || this.host.resetPending || !this.deviceStatus.inQueueSetup) return;
    if ((this.deviceStatus.value & (VIRTIO_CONFIG_S_FAILED | VIRTIO_CONFIG_S_DEVICE_NEEDS_RESET)) !== 0) return;
    this.vqs.activate();
  }

  /** The driver notified queue `index` (2.9): see DeviceCore.notify. */
  notify(index: number, next?: number): void {
    const audit = this.host.audit;
    // The legacy interface lets a driver use the queues before DRIVER_OK (3.1.2).
    if (this.deviceStatus.suspendSet) audit?.(R.suspendNoNotify, `queue ${index} notified while SUSPEND is set`);
    else if (audit !== undefined && (this.deviceStatus.value & VIRTIO_CONFIG_S_DRIVER_OK) === 0 && !this.host.usableBeforeDriverOk)
      audit(R.initNoNotifyBeforeDriverOk, `queue ${index} notified in status 0x${this.deviceStatus.value.toString(16)}`);
    this.host.observer?.queueNotified(index);
    this.activateOnFirstUse();
    if (!this.live) return;
    const q = this.vqs.config(index);
    const live = this.vqs.active[index];
    if (!live || q === undefined) return;
    if (next !== undefined && !ringFormat(this.host.negotiatedFeatures).isNotificationNext(next, q.size)) {
      this.reject(index, `notification data next 0x${next.toString(16)} is impossible for a queue of size ${q.size}`);
      return;
    }
    try {
      if (q === this.vqs.adminQueue) this.vqs.serveAdmin(live);
      else this.host.device.queueNotify(index, next);
    } catch (e) {
      this.host.needsReset(asError(e));
    }
  }

  /** A driver notification that breaks the transport's rules: see DeviceCore.rejectNotification. */
  reject(index: number, why: string): void {
    if (this.live) this.host.needsReset(new QueueFaultError('ERR_QUEUE_NOTIFICATION', index, why));
  }

  /** The device model changed its configuration: tell the driver, now or at resume (3.4.2). */
  configChanged(): void {
    // Suspended (DRIVER_OK clear, SUSPEND set): told when the device resumes (3.4.2).
    if ((this.deviceStatus.value & (VIRTIO_CONFIG_S_DRIVER_OK | VIRTIO_CONFIG_S_SUSPEND)) !== 0 && this.vqs.gate.admitConfigChange())
      this.send({ kind: 'configuration-change' });
  }

  /** Used elements were pushed on queue `index`: a used buffer notification unless event suppression or the suspend gate holds it back. */
  usedBuffers(index: number): void {
    if (this.host.needsResetSet) return;
    const q = this.vqs.active[index];
    if (!q) return;
    let wanted: boolean;
    try {
      wanted = q.needsInterrupt();
    } catch (e) {
      this.host.needsReset(asError(e));
      return;
    }
    if (wanted && this.vqs.gate.admitUsed(index)) this.send({ kind: 'used-buffer', queue: index });
  }

  /** Send the driver a notification through the transport (and tell the observer). */
  send(notification: DriverNotification): void {
    this.sink.notify(notification);
    this.host.observer?.notificationSent(notification);
  }

  /** A device reset (2.4) began: the transport's notification state goes back to its power-on value. */
  reset(): void {
    this.sink.reset();
  }
}
