/** Mutants of family 'initialization': each breaks one rule of 2.1.2 / 3.1 in our device. */

import type { Mutants } from './mutant.js';
import { mutant, onAccess } from './pci-function-mutant.js';
import type { VirtioPciFunction } from '../../../../src/transport/pci/virtio-pci-function.js';
import { VIRTIO_CONFIG_S_DRIVER_OK, VIRTIO_CONFIG_S_FEATURES_OK } from '../../../../src/spec/status.js';
import { VIRTIO_PCI_COMMON_STATUS, VIRTIO_PCI_QUEUE_NOTIFY } from '../../../../src/spec/virtio-pci.js';
import { VIRTIO_PCI_CONFIG_OFF_NO_MSIX } from '../../../../src/spec/virtio-pci.js';

const live = (fn: VirtioPciFunction): boolean => (fn.core.status & VIRTIO_CONFIG_S_DRIVER_OK) !== 0;

export const initializationMutants: Mutants = {
  'initialization/no-consume-before-driver-ok': mutant(
    'the device goes live at the first notification, DRIVER_OK or not',
    { kind: 'rng' },
    onAccess({
      write(fn, at) {
        if (at.area === 'notify' && !live(fn)) fn.core.writeStatus(fn.core.status | VIRTIO_CONFIG_S_DRIVER_OK);
        return false;
      },
    }),
  ),
  'initialization/no-used-notification-before-driver-ok': mutant(
    'the device answers a notification before DRIVER_OK with a used buffer notification',
    { kind: 'blk' },
    onAccess({
      write(fn, at) {
        if (at.area === 'notify' && !live(fn)) fn.notifications.notify({ kind: 'used-buffer', queue: 0 });
        return false;
      },
    }),
  ),
  'initialization/live-after-driver-ok': mutant(
    'the device ignores every notification',
    { kind: 'net', mode: 'transitional' },
    onAccess({ write: (_fn, at) => at.area === 'notify' || (at.area === 'legacy' && at.offset === VIRTIO_PCI_QUEUE_NOTIFY) }),
  ),
  'initialization/features-ok-stays-set': mutant(
    'device_status drops FEATURES_OK once DRIVER_OK is set',
    { kind: 'console' },
    onAccess({
      read: (fn, at, value) =>
        at.area === 'common' && at.offset === VIRTIO_PCI_COMMON_STATUS && live(fn) ? value & ~VIRTIO_CONFIG_S_FEATURES_OK : value,
    }),
  ),
  'initialization/legacy-config-write-before-features': mutant(
    'the legacy interface drops configuration writes',
    { kind: 'blk', mode: 'transitional' },
    onAccess({ write: (_fn, at) => at.area === 'legacy' && at.offset >= VIRTIO_PCI_CONFIG_OFF_NO_MSIX }),
  ),
  'initialization/legacy-use-before-driver-ok': mutant(
    'the legacy interface ignores notifications',
    { kind: 'rng', mode: 'transitional' },
    onAccess({ write: (_fn, at) => at.area === 'legacy' && at.offset === VIRTIO_PCI_QUEUE_NOTIFY }),
  ),
};
