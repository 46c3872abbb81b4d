/**
 * A VirtioDevice wrapper for mutants: one of our devices with its offer, what it accepts, its
 * queues or its reset changed; everything else is the inner device's.
 */

import type { ActivateContext, ResetCompletion, VirtioDevice, VirtioDeviceHost } from '../../../../src/core/virtio-device.js';
import type { DeviceQueue } from '../../../../src/queue/types.js';

/** Changes to a device model: its offer, what it accepts, its queues. Everything else is the inner device's. */
export interface DeviceChanges {
  readonly addFeatures?: bigint;
  readonly removeFeatures?: bigint;
  acceptFeatures?(features: bigint, inner: VirtioDevice): boolean;
  /** The queues the device model gets at DRIVER_OK (and at a queue's re-enable). */
  queue?(queue: DeviceQueue): DeviceQueue;
  /** Called after the inner device's reset. */
  afterReset?(): void;
}

/** `inner` with `changes`; the queue reset hooks only where the inner device has them (the core offers RING_RESET by them). */
export function changedDevice(inner: VirtioDevice, changes: DeviceChanges): VirtioDevice {
  const queue = (q: DeviceQueue | null): DeviceQueue | null => (q === null || changes.queue === undefined ? q : changes.queue(q));
  const wrapped: VirtioDevice = {
    deviceType: inner.deviceType,
    deviceFeatures: (inner.deviceFeatures | (changes.addFeatures ?? 0n)) & ~(changes.removeFeatures ?? 0n),
    queueMaxSizes: inner.queueMaxSizes,
    configSize: inner.configSize,
    attach: (host: VirtioDeviceHost) => inner.attach(host),
    readConfig: (offset, size) => inner.readConfig(offset, size),
    writeConfig: (offset, size, value) => inner.writeConfig(offset, size, value),
    acceptFeatures: (features) =>
      changes.acceptFeatures !== undefined ? changes.acceptFeatures(features, inner) : (inner.acceptFeatures?.(features) ?? true),
    activate: (ctx: ActivateContext) => inner.activate({ features: ctx.features, queues: ctx.queues.map(queue) }),
    queueNotify: (index, next) => inner.queueNotify(index, next),
    reset: (): ResetCompletion => {
      const done = inner.reset();
      changes.afterReset?.();
      return done;
    },
  };
  if (inner.resetQueue !== undefined && inner.enableQueue !== undefined) {
    const resetQueue = inner.resetQueue.bind(inner);
    const enableQueue = inner.enableQueue.bind(inner);
    return { ...wrapped, resetQueue: (index) => resetQueue(index), enableQueue: (q) => enableQueue(queue(q)!) };
  }
  return wrapped;
}
