/** Mutants of family 'notifications': each breaks one rule of 2.3 in our device. */

import type { Mutants } from './mutant.js';
import { tamperMutant, type TamperedFunction } from './tamper.js';
import { MODERN_BAR } from '../../../../src/transport/pci/modern-device.js';
import { VIRTIO_MSI_NO_VECTOR, VIRTIO_PCI_COMMON_Q_MSIX, VIRTIO_PCI_COMMON_Q_SELECT } from '../../../../src/spec/virtio-pci.js';

const VECTORS = 3;
/** queue_msix_vector as the driver wrote it, by function and queue (the device uses another). */
const written = new WeakMap<TamperedFunction, Map<number, number>>();
const selected = (fn: TamperedFunction): number => fn.barReadDirect(MODERN_BAR, VIRTIO_PCI_COMMON_Q_SELECT, 2);

export const notificationsMutants: Mutants = {
  'notifications/used-notification-names-its-queue': tamperMutant(
    "a queue's used buffer notifications go to the next vector (reads show the vector written)",
    { kind: 'rng', msixVectors: VECTORS },
    {
      read(fn, at, value) {
        if (at.area !== 'common' || at.offset !== VIRTIO_PCI_COMMON_Q_MSIX) return value;
        return written.get(fn)?.get(selected(fn)) ?? value;
      },
      write(fn, at, value) {
        if (at.area !== 'common' || at.offset !== VIRTIO_PCI_COMMON_Q_MSIX || value === VIRTIO_MSI_NO_VECTOR) return false;
        const map = written.get(fn) ?? new Map<number, number>();
        written.set(fn, map.set(selected(fn), value));
        fn.barWriteDirect(MODERN_BAR, at.offset, at.size, (value + 1) % VECTORS);
        return true;
      },
    },
  ),
};
