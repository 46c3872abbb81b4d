/**
 * 3.4 Device Suspend, the device core's part: which SUSPEND writes start a suspension, DRIVER_OK
 * cleared once the chains in flight are used, and the resume that sends what the device held back.
 * What "stopped" means for the queues is the suspend gate's (device-suspend.ts); the driver's side is
 * driver/device-status.ts.
 */

import { DRIVER_REQUIREMENTS as R } from '../spec/driver-requirements.js';
import { hasFeature, VIRTIO_F_SUSPEND } from '../spec/features.js';
import {
  VIRTIO_CONFIG_S_DEVICE_NEEDS_RESET,
  VIRTIO_CONFIG_S_DRIVER_OK,
  VIRTIO_CONFIG_S_FAILED,
  VIRTIO_CONFIG_S_SUSPEND,
} from '../spec/status.js';
import type { DeviceStatus } from './device-status.js';
import type { Notifications, NotificationsHost } from './notifications.js';
import { asError } from './virtio-device.js';
import type { Virtqueues } from './virtqueues.js';

/** See the file comment. */
export class SuspendResume {
  constructor(
    private readonly host: NotificationsHost,
    private readonly deviceStatus: DeviceStatus,
    private readonly vqs: Virtqueues,
    private readonly notifications: Notifications,
  ) {}

  /**
   * A driver status write of `value`: SUSPEND set by the driver of a live device with
   * VIRTIO_F_SUSPEND starts a suspension (any other SUSPEND write is ignored, 3.4.2); once the chains
   * in flight are used the device shows DRIVER_OK clear. DRIVER_OK written to a suspended device
   * resumes it. A driver cannot cancel a suspension under way: only reset or the resume end it.
   */
  statusWritten(value: number): void {
    const s = this.deviceStatus.value;
    if (this.vqs.gate.state === 'suspended') {
      if ((value & VIRTIO_CONFIG_S_DRIVER_OK) !== 0) this.resume();
      return;
    }
    if ((value & VIRTIO_CONFIG_S_SUSPEND) === 0 || (s & VIRTIO_CONFIG_S_SUSPEND) !== 0) return;
    const negotiated = hasFeature(this.host.negotiatedFeatures, VIRTIO_F_SUSPEND);
    if (!negotiated || (s & VIRTIO_CONFIG_S_DRIVER_OK) === 0 || (s & (VIRTIO_CONFIG_S_FAILED | VIRTIO_CONFIG_S_DEVICE_NEEDS_RESET)) !== 0) {
      this.host.audit?.(
        R.suspendWhenLive,
        `SUSPEND set in status 0x${s.toString(16)}${negotiated ? '' : ' without VIRTIO_F_SUSPEND negotiated'}`,
      );
      return;
    }
    this.deviceStatus.value |= VIRTIO_CONFIG_S_SUSPEND;
    this.start();
  }

  /**
   * SUSPEND is set: stop taking chains (but for the first `takeBack` pops: the chains a restored model
   * held); once those in flight are used, show DRIVER_OK clear.
   */
  start(takeBack = 0): void {
    const gate = this.vqs.gate;
    gate.suspend(takeBack, () => {
      if (gate === this.vqs.gate && !this.host.needsResetSet) this.deviceStatus.value &= ~VIRTIO_CONFIG_S_DRIVER_OK;
    });
    try {
      this.host.device.suspend?.();
    } catch (e) {
      this.host.needsReset(asError(e));
    }
  }

  /** 3.4: the suspended device runs again, sends what it held back and looks at every live ring. */
  private resume(): void {
    this.deviceStatus.value = (this.deviceStatus.value & ~VIRTIO_CONFIG_S_SUSPEND) | VIRTIO_CONFIG_S_DRIVER_OK;
    const held = this.vqs.gate.resume();
    for (const queue of held.usedQueues) this.notifications.send({ kind: 'used-buffer', queue });
    if (held.configChange) this.notifications.send({ kind: 'configuration-change' });
    for (const q of this.vqs.active) {
      if (q === null || !this.notifications.live) continue;
      try {
        this.host.device.queueNotify(q.index);
      } catch (e) {
        this.host.needsReset(asError(e));
      }
    }
  }
}
