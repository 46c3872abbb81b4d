/** Mutants of family 'initialization': each breaks one rule of 2.1.2 / 3.1 in our device. */

import type { Mutants } from './mutant.js';
import { tamperMutant, type TamperedFunction } from './tamper.js';
import { VIRTIO_CONFIG_S_DRIVER_OK, VIRTIO_CONFIG_S_FEATURES_OK } from '../../../../src/spec/status.js';
import { VIRTIO_PCI_COMMON_STATUS, VIRTIO_PCI_QUEUE_NOTIFY } from '../../../../src/spec/virtio-pci.js';
import { VIRTIO_PCI_CONFIG_OFF_NO_MSIX } from '../../../../src/spec/virtio-pci.js';

const live = (fn: TamperedFunction): boolean => (fn.core.status & VIRTIO_CONFIG_S_DRIVER_OK) !== 0;

export const initializationMutants: Mutants = {
  'initialization/no-consume-before-driver-ok': tamperMutant(
    'the device goes live at the first notification, DRIVER_OK or not',
    { kind: 'rng' },
    {
      write(fn, at) {
        if (at.area === 'notify' && !live(fn)) fn.core.writeStatus(fn.core.status | VIRTIO_CONFIG_S_DRIVER_OK);
        return false;
      },
    },
  ),
  'initialization/no-used-notification-before-driver-ok': tamperMutant(
    'the device answers a notification before DRIVER_OK with a used buffer notification',
    { kind: 'blk' },
    {
      write(fn, at) {
        if (at.area === 'notify' && !live(fn)) fn.notifications.notify({ kind: 'used-buffer', queue: 0 });
        return false;
      },
    },
  ),
  'initialization/live-after-driver-ok': tamperMutant(
    'the device ignores every notification',
    { kind: 'net', mode: 'transitional' },
    { write: (_fn, at) => at.area === 'notify' || (at.area === 'legacy' && at.offset === VIRTIO_PCI_QUEUE_NOTIFY) },
  ),
  'initialization/features-ok-stays-set': tamperMutant(
    'device_status drops FEATURES_OK once DRIVER_OK is set',
    { kind: 'console' },
    {
      read: (fn, at, value) =>
        at.area === 'common' && at.offset === VIRTIO_PCI_COMMON_STATUS && live(fn) ? value & ~VIRTIO_CONFIG_S_FEATURES_OK : value,
    },
  ),
  'initialization/legacy-config-write-before-features': tamperMutant(
    'the legacy interface drops configuration writes',
    { kind: 'blk', mode: 'transitional' },
    { write: (_fn, at) => at.area === 'legacy' && at.offset >= VIRTIO_PCI_CONFIG_OFF_NO_MSIX },
  ),
  'initialization/legacy-use-before-driver-ok': tamperMutant(
    'the legacy interface ignores notifications',
    { kind: 'rng', mode: 'transitional' },
    { write: (_fn, at) => at.area === 'legacy' && at.offset === VIRTIO_PCI_QUEUE_NOTIFY },
  ),
};
