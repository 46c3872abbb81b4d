/** Mutants of family 'status': each breaks one rule of 2.1 (or of 3.4, the SUSPEND bit) in our device. */

import type { Mutants } from './mutant.js';
import { MODERN_BAR } from '../../../../src/transport/pci/modern-device.js';
import { mutant, onAccess, type Access, type Mutation } from './pci-function-mutant.js';
import {
  VIRTIO_CONFIG_S_ACKNOWLEDGE,
  VIRTIO_CONFIG_S_DEVICE_NEEDS_RESET,
  VIRTIO_CONFIG_S_DRIVER,
  VIRTIO_CONFIG_S_DRIVER_OK,
  VIRTIO_CONFIG_S_FAILED,
  VIRTIO_CONFIG_S_SUSPEND,
} from '../../../../src/spec/status.js';
import {
  VIRTIO_PCI_COMMON_Q_SELECT,
  VIRTIO_PCI_COMMON_Q_SIZE,
  VIRTIO_PCI_COMMON_STATUS,
  VIRTIO_PCI_ISR_CONFIG,
  VIRTIO_PCI_STATUS,
} from '../../../../src/spec/virtio-pci.js';

const isStatus = (at: Access): boolean =>
  (at.area === 'common' && at.offset === VIRTIO_PCI_COMMON_STATUS) || (at.area === 'legacy' && at.offset === VIRTIO_PCI_STATUS);

/** device_status reads without `bit`. */
function dropsBit(bit: number, name: string, kind: 'rng' | 'blk' | 'net' | 'console') {
  return mutant(
    `device status never shows ${name}`,
    { kind, mode: 'transitional' },
    onAccess({
      read: (_fn, at, value) => (isStatus(at) ? value & ~bit : value),
    }),
  );
}

const SUSPEND = VIRTIO_CONFIG_S_SUSPEND;
const DRIVER_OK = VIRTIO_CONFIG_S_DRIVER_OK;

/**
 * A device that takes no SUSPEND write (the bit never reaches the core) yet, when `claims`, shows
 * itself suspended from the write on (until a reset): it says so and keeps running.
 */
function ignoresSuspend(claims: boolean): Mutation {
  return (fn) => {
    let claimed = false;
    return onAccess({
      write: (inner, at, value) => {
        if (!isStatus(at)) return false;
        if (value === 0) claimed = false;
        if ((value & SUSPEND) === 0) return false;
        claimed = claims;
        inner.barWrite(MODERN_BAR, VIRTIO_PCI_COMMON_STATUS, 1, value & ~SUSPEND);
        return true;
      },
      read: (_fn, at, value) => (isStatus(at) && claimed ? (value | SUSPEND) & ~DRIVER_OK : value),
    })(fn);
  };
}

/** A device that takes SUSPEND before DRIVER_OK: it shows the bit from such a write on, until a reset. */
const suspendsEarly: Mutation = (fn) => {
  let early = false;
  return onAccess({
    write: (inner, at, value) => {
      if (!isStatus(at)) return false;
      if (value === 0) early = false;
      else if ((value & SUSPEND) !== 0 && (inner.core.status & DRIVER_OK) === 0) early = true;
      return false;
    },
    read: (_fn, at, value) => (isStatus(at) && early ? value | SUSPEND : value),
  })(fn);
};

/** A suspended device that never resumes: a DRIVER_OK write while SUSPEND shows is dropped. */
const neverResumes: Mutation = onAccess({
  write: (fn, at, value) => isStatus(at) && (fn.core.status & SUSPEND) !== 0 && (value & DRIVER_OK) !== 0,
});

/** A suspended device that still takes queue_size writes (as a device in queue set-up does). */
const takesQueueWritesSuspended: Mutation = (fn) => {
  let selected = 0;
  return onAccess({
    write: (inner, at, value) => {
      if (at.area !== 'common') return false;
      if (at.offset === VIRTIO_PCI_COMMON_Q_SELECT) selected = value;
      const q = inner.core.queues[selected];
      if (at.offset !== VIRTIO_PCI_COMMON_Q_SIZE || (inner.core.status & SUSPEND) === 0 || q === undefined) return false;
      q.size = value;
      return true;
    },
  })(fn);
};

export const statusMutants: Mutants = {
  'status/suspend-shows-suspended': mutant('SUSPEND writes are ignored on a live device', { kind: 'rng' }, ignoresSuspend(false)),
  'status/suspend-ignored-before-driver-ok': mutant('SUSPEND is taken before DRIVER_OK', { kind: 'blk' }, suspendsEarly),
  'status/suspended-uses-no-queue': mutant(
    'the device shows itself suspended and keeps serving its queues',
    { kind: 'rng' },
    ignoresSuspend(true),
  ),
  'status/resume-runs': mutant('a suspended device never resumes', { kind: 'console' }, neverResumes),
  'status/suspended-ignores-queue-writes': mutant('a suspended device takes queue_size writes', { kind: 'net' }, takesQueueWritesSuspended),

  'status/keeps-acknowledge': dropsBit(VIRTIO_CONFIG_S_ACKNOWLEDGE, 'ACKNOWLEDGE', 'rng'),
  'status/keeps-driver': dropsBit(VIRTIO_CONFIG_S_DRIVER, 'DRIVER', 'blk'),
  'status/keeps-driver-ok': dropsBit(VIRTIO_CONFIG_S_DRIVER_OK, 'DRIVER_OK', 'net'),
  'status/keeps-failed': dropsBit(VIRTIO_CONFIG_S_FAILED, 'FAILED', 'console'),
  'status/needs-reset-on-error': dropsBit(VIRTIO_CONFIG_S_DEVICE_NEEDS_RESET, 'DEVICE_NEEDS_RESET', 'rng'),
  'status/needs-reset-notifies-config': mutant(
    'DEVICE_NEEDS_RESET comes without a configuration change notification',
    { kind: 'blk' },
    onAccess({ read: (_fn, at, value) => (at.area === 'isr' ? value & ~VIRTIO_PCI_ISR_CONFIG : value) }),
  ),
};
