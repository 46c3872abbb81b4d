/** Mutants of family 'status': each breaks one rule of 2.1 in our device. */

import type { Mutants } from './mutant.js';
import { tamperMutant, type Access, type TamperedFunction } from './tamper.js';
import {
  VIRTIO_CONFIG_S_ACKNOWLEDGE,
  VIRTIO_CONFIG_S_DEVICE_NEEDS_RESET,
  VIRTIO_CONFIG_S_DRIVER,
  VIRTIO_CONFIG_S_DRIVER_OK,
  VIRTIO_CONFIG_S_FAILED,
} from '../../../../src/spec/status.js';
import { VIRTIO_PCI_COMMON_STATUS, VIRTIO_PCI_ISR_CONFIG, VIRTIO_PCI_STATUS } from '../../../../src/spec/virtio-pci.js';

const isStatus = (at: Access): boolean =>
  (at.area === 'common' && at.offset === VIRTIO_PCI_COMMON_STATUS) || (at.area === 'legacy' && at.offset === VIRTIO_PCI_STATUS);

/** device_status reads without `bit`. */
function dropsBit(bit: number, name: string, kind: 'rng' | 'blk' | 'net' | 'console') {
  return tamperMutant(
    `device status never shows ${name}`,
    { kind, mode: 'transitional' },
    {
      read: (_fn, at, value) => (isStatus(at) ? value & ~bit : value),
    },
  );
}

export const statusMutants: Mutants = {
  'status/keeps-acknowledge': dropsBit(VIRTIO_CONFIG_S_ACKNOWLEDGE, 'ACKNOWLEDGE', 'rng'),
  'status/keeps-driver': dropsBit(VIRTIO_CONFIG_S_DRIVER, 'DRIVER', 'blk'),
  'status/keeps-driver-ok': dropsBit(VIRTIO_CONFIG_S_DRIVER_OK, 'DRIVER_OK', 'net'),
  'status/keeps-failed': dropsBit(VIRTIO_CONFIG_S_FAILED, 'FAILED', 'console'),
  'status/needs-reset-on-error': dropsBit(VIRTIO_CONFIG_S_DEVICE_NEEDS_RESET, 'DEVICE_NEEDS_RESET', 'rng'),
  'status/needs-reset-notifies-config': tamperMutant(
    'DEVICE_NEEDS_RESET comes without a configuration change notification',
    { kind: 'blk' },
    { read: (_fn: TamperedFunction, at, value) => (at.area === 'isr' ? value & ~VIRTIO_PCI_ISR_CONFIG : value) },
  ),
};
