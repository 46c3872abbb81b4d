/** Mutants of family 'reset': each breaks one rule of 2.4, 3.4 or 2.6.1 in our device. */

import type { Mutants } from './mutant.js';
import { WrappedDevice } from './wrap-device.js';
import { deviceMutant, mutant, onAccess, type Access } from './pci-function-mutant.js';
import type { VirtioPciFunction } from '../../../../src/transport/pci/virtio-pci-function.js';
import type { DeviceQueue } from '../../../../src/queue/types.js';
import { MODERN_BAR } from '../../../../src/transport/pci/modern-device.js';
import { VIRTIO_CONFIG_S_DEVICE_NEEDS_RESET, VIRTIO_CONFIG_S_DRIVER_OK, VIRTIO_CONFIG_S_FAILED } from '../../../../src/spec/status.js';
import {
  VIRTIO_PCI_COMMON_Q_ENABLE,
  VIRTIO_PCI_COMMON_Q_RESET,
  VIRTIO_PCI_COMMON_Q_SELECT,
  VIRTIO_PCI_COMMON_Q_SIZE,
  VIRTIO_PCI_COMMON_STATUS,
  VIRTIO_PCI_STATUS,
} from '../../../../src/spec/virtio-pci.js';

const isStatus = (at: Access): boolean =>
  (at.area === 'common' && at.offset === VIRTIO_PCI_COMMON_STATUS) || (at.area === 'legacy' && at.offset === VIRTIO_PCI_STATUS);
const isCommon = (at: Access, offset: number): boolean => at.area === 'common' && at.offset === offset;
const selected = (fn: VirtioPciFunction): number => fn.barReadDirect(MODERN_BAR, VIRTIO_PCI_COMMON_Q_SELECT, 2);

/** A reset written while device status has `bit` is ignored. */
function ignoresResetWith(bit: number, breaks: string, kind: 'rng' | 'blk' | 'net' | 'console') {
  return mutant(
    breaks,
    { kind, mode: 'transitional' },
    onAccess({
      write: (fn, at, value) => isStatus(at) && (value & 0xff) === 0 && (fn.core.status & bit) !== 0,
    }),
  );
}

/** Functions that have seen a queue reset written (mutants whose rule applies from then on). */
const queueResetSeen = new WeakSet<VirtioPciFunction>();
function noteQueueReset(fn: VirtioPciFunction, at: Access, value: number): void {
  if (isCommon(at, VIRTIO_PCI_COMMON_Q_RESET) && value === 1) queueResetSeen.add(fn);
}

/** Chains a device takes after its queue was reset and re-enabled skip as many as it took before: stale available state. */
function staleAvailState() {
  return deviceMutant('a queue reset keeps the available index of the old rings', { kind: 'rng' }, (inner) => {
    let taken = 0;
    let skip = 0;
    let generation = 0;
    return new WrappedDevice(inner, {
      queue(q: DeviceQueue): DeviceQueue {
        if (generation++ > 0) skip = taken;
        return {
          index: q.index,
          size: q.size,
          pop: () => {
            while (skip > 0) {
              if (q.pop() === null) return null;
              skip--;
            }
            const chain = q.pop();
            if (chain !== null) taken++;
            return chain;
          },
          pushUsed: (head, len) => q.pushUsed(head, len),
          needsInterrupt: () => q.needsInterrupt(),
          setNotification: (enabled) => q.setNotification(enabled),
          hasAvailable: () => q.hasAvailable(),
          position: () => q.position(),
        };
      },
    });
  });
}

/** Used elements land 10 ms late, on whatever rings the device had then: a late completion after a reset. */
function lateCompletions() {
  return deviceMutant(
    'completions land after a reset on the old rings',
    { kind: 'rng', mode: 'transitional' },
    (inner) =>
      new WrappedDevice(inner, {
        queue: (q) => ({
          index: q.index,
          size: q.size,
          pop: () => q.pop(),
          pushUsed: (head, len) => void setTimeout(() => q.pushUsed(head, len), 10),
          needsInterrupt: () => q.needsInterrupt(),
          setNotification: (enabled) => q.setNotification(enabled),
          hasAvailable: () => q.hasAvailable(),
          position: () => q.position(),
        }),
      }),
  );
}

/** Shadowed queue_size: reads show what the driver wrote after a queue reset, the device keeps its own. */
const shadowSize = new WeakMap<VirtioPciFunction, number>();

export const resetMutants: Mutants = {
  'reset/status-zero-when-live': ignoresResetWith(VIRTIO_CONFIG_S_DRIVER_OK, 'a reset written to a live device is ignored', 'blk'),
  'reset/status-zero-when-failed': ignoresResetWith(VIRTIO_CONFIG_S_FAILED, 'a reset written after FAILED is ignored', 'net'),
  'reset/status-zero-after-features-ok': mutant(
    'a reset written after FEATURES_OK is ignored',
    { kind: 'console' },
    onAccess({
      write: (fn, at, value) => isStatus(at) && (value & 0xff) === 0 && (fn.core.status & 8) !== 0 && (fn.core.status & 4) === 0,
    }),
  ),
  'reset/status-zero-after-error': ignoresResetWith(
    VIRTIO_CONFIG_S_DEVICE_NEEDS_RESET,
    'a reset written after DEVICE_NEEDS_RESET is ignored',
    'rng',
  ),
  'reset/no-queue-use-after-reset': lateCompletions(),
  'reset/no-notification-after-reset': mutant(
    'a used buffer notification follows the reset',
    { kind: 'console', mode: 'transitional' },
    onAccess({
      write(fn, at, value) {
        if (isStatus(at) && (value & 0xff) === 0) setTimeout(() => fn.notifications.notify({ kind: 'used-buffer', queue: 0 }), 5);
        return false;
      },
    }),
  ),
  'reset/queues-disabled-after-reset': mutant(
    'queue_enable keeps reading 1 after a reset',
    { kind: 'net' },
    onAccess({
      read: (fn, at, value) =>
        isCommon(at, VIRTIO_PCI_COMMON_Q_ENABLE) && fn.core.queues[selected(fn)]?.ringAddress('desc') === 0 ? 1 : value,
    }),
  ),
  'reset/queue-reset-completes': mutant(
    'queue_reset keeps reading 1',
    { kind: 'rng' },
    onAccess({
      read: (fn, at, value) => (isCommon(at, VIRTIO_PCI_COMMON_Q_RESET) && queueResetSeen.has(fn) ? 1 : value),
      write: (fn, at, value) => (noteQueueReset(fn, at, value), false),
    }),
  ),
  'reset/queue-reset-disables': mutant(
    'queue_enable reads 1 after a queue reset',
    { kind: 'rng' },
    onAccess({
      read: (fn, at, value) => (isCommon(at, VIRTIO_PCI_COMMON_Q_ENABLE) && queueResetSeen.has(fn) ? 1 : value),
      write: (fn, at, value) => (noteQueueReset(fn, at, value), false),
    }),
  ),
  'reset/queue-reset-stops-requests': deviceMutant(
    'the device keeps serving a reset queue',
    { kind: 'rng' },
    // The device model is not told of the queue reset and keeps its queue...
    (inner) => new WrappedDevice(inner, { resetQueue: () => undefined }),
    onAccess({
      // ...and notifications reach it whatever the queue's state.
      write(fn, at) {
        if (at.area === 'notify') fn.device.queueNotify(0);
        return at.area === 'notify';
      },
    }),
  ),
  'reset/queue-reset-no-notification': mutant(
    'a used buffer notification follows a queue reset',
    { kind: 'rng' },
    onAccess({
      write(fn, at, value) {
        if (isCommon(at, VIRTIO_PCI_COMMON_Q_RESET) && value === 1) {
          const queue = selected(fn);
          setTimeout(() => fn.notifications.notify({ kind: 'used-buffer', queue }), 5);
        }
        return false;
      },
    }),
  ),
  'reset/queue-reset-default-state': staleAvailState(),
  'reset/queue-reenable-uses-new-size': mutant(
    'a re-enabled queue keeps its maximum size',
    { kind: 'rng' },
    onAccess({
      read: (fn, at, value) => (isCommon(at, VIRTIO_PCI_COMMON_Q_SIZE) ? (shadowSize.get(fn) ?? value) : value),
      write(fn, at, value) {
        noteQueueReset(fn, at, value);
        if (!isCommon(at, VIRTIO_PCI_COMMON_Q_SIZE) || !queueResetSeen.has(fn)) return false;
        shadowSize.set(fn, value);
        return true;
      },
    }),
  ),
  'reset/queue-reset-zero-when-enabled': mutant(
    'queue_reset reads 1 on an enabled queue',
    { kind: 'rng' },
    onAccess({
      read: (fn, at, value) => (isCommon(at, VIRTIO_PCI_COMMON_Q_RESET) && fn.core.queues[selected(fn)]?.enabled === true ? 1 : value),
    }),
  ),
  'reset/queue-reset-zero-after-device-reset': mutant(
    'queue_reset keeps reading 1 across a device reset',
    { kind: 'rng' },
    onAccess({
      read: (fn, at, value) => (isCommon(at, VIRTIO_PCI_COMMON_Q_RESET) && queueResetSeen.has(fn) ? 1 : value),
      write: (fn, at, value) => (noteQueueReset(fn, at, value), false),
    }),
  ),
};
