/** Mutants of family 'pci-notify': our function's notification capability misaligned, mis-sized or with a bad multiplier. */

import { VIRTIO_F_NOTIFICATION_DATA } from '../../../../src/spec/features.js';
import {
  VIRTIO_PCI_CAP_CFG_TYPE,
  VIRTIO_PCI_CAP_LENGTH,
  VIRTIO_PCI_CAP_NOTIFY_CFG,
  VIRTIO_PCI_CAP_OFFSET,
  VIRTIO_PCI_COMMON_DF,
  VIRTIO_PCI_COMMON_DFSELECT,
  VIRTIO_PCI_NOTIFY_CAP_MULT,
} from '../../../../src/spec/virtio-pci.js';
import { MODERN_BAR, MODERN_COMMON_OFFSET } from '../../../../src/transport/pci/modern-device.js';
import type { Mutants } from './mutant.js';
import { blk, mutant, onBarRead, patchCapField, rng, type Mutation } from './pci-function-mutant.js';

/** Our devices offer VIRTIO_F_NOTIFICATION_DATA; this base hides it, so that the plain variant applies to the original. */
const hideNotificationData: Mutation = onBarRead(MODERN_BAR, MODERN_COMMON_OFFSET + VIRTIO_PCI_COMMON_DF, (i, s) => {
  const v = i.barRead(MODERN_BAR, MODERN_COMMON_OFFSET + VIRTIO_PCI_COMMON_DF, s);
  const select = i.barRead(MODERN_BAR, MODERN_COMMON_OFFSET + VIRTIO_PCI_COMMON_DFSELECT, 4);
  return select === 1 ? (v & ~(1 << (VIRTIO_F_NOTIFICATION_DATA - 32))) >>> 0 : v;
});

const field = (f: number, width: number, value: (old: number) => number): Mutation =>
  patchCapField(VIRTIO_PCI_CAP_NOTIFY_CFG, f, width, value);

export const pciNotifyMutants: Mutants = {
  'pci-notify/notify-cfg-present': mutant(
    'the notify capability has a reserved cfg_type',
    rng(),
    field(VIRTIO_PCI_CAP_CFG_TYPE, 1, () => 0x0a),
  ),
  'pci-notify/offset-aligned': mutant(
    'without NOTIFICATION_DATA, notify offset odd',
    rng(),
    field(VIRTIO_PCI_CAP_OFFSET, 4, (o) => o + 1),
    hideNotificationData,
  ),
  'pci-notify/multiplier': mutant(
    'without NOTIFICATION_DATA, multiplier 3',
    rng(),
    field(VIRTIO_PCI_NOTIFY_CAP_MULT, 4, () => 3),
    hideNotificationData,
  ),
  'pci-notify/length-minimum': mutant(
    'without NOTIFICATION_DATA, notify length 1',
    rng(),
    field(VIRTIO_PCI_CAP_LENGTH, 4, () => 1),
    hideNotificationData,
  ),
  'pci-notify/length-covers-queues': mutant(
    'without NOTIFICATION_DATA, notify length 2 with a second queue past it',
    blk({}, 2),
    field(VIRTIO_PCI_CAP_LENGTH, 4, () => 2),
    hideNotificationData,
  ),
  'pci-notify/offset-aligned-notification-data': mutant(
    'with NOTIFICATION_DATA, notify offset 2-aligned only',
    rng(),
    field(VIRTIO_PCI_CAP_OFFSET, 4, (o) => o + 2),
  ),
  'pci-notify/multiplier-notification-data': mutant(
    'with NOTIFICATION_DATA, multiplier 2',
    rng(),
    field(VIRTIO_PCI_NOTIFY_CAP_MULT, 4, () => 2),
  ),
  'pci-notify/length-minimum-notification-data': mutant(
    'with NOTIFICATION_DATA, notify length 2',
    rng(),
    field(VIRTIO_PCI_CAP_LENGTH, 4, () => 2),
  ),
  'pci-notify/length-covers-queues-notification-data': mutant(
    'with NOTIFICATION_DATA, notify length 4 with a second queue past it',
    blk({}, 2),
    field(VIRTIO_PCI_CAP_LENGTH, 4, () => 4),
  ),
};
