/** Mutants of family 'device-config': each breaks one rule of 2.5 in our device. */

import type { Mutants } from './mutant.js';
import { tamperMutant, type Access } from './tamper.js';
import { VIRTIO_CONFIG_S_FEATURES_OK } from '../../../../src/spec/status.js';
import { VIRTIO_PCI_CONFIG_OFF_NO_MSIX } from '../../../../src/spec/virtio-pci.js';

const isDeviceConfig = (at: Access): boolean =>
  at.area === 'device' || (at.area === 'legacy' && at.offset >= VIRTIO_PCI_CONFIG_OFF_NO_MSIX);

let counter = 0;

export const deviceConfigMutants: Mutants = {
  'device-config/readable-before-features-ok': tamperMutant(
    'configuration reads 0 until the driver wrote its features',
    { kind: 'blk', mode: 'transitional' },
    {
      read: (fn, at, value) =>
        isDeviceConfig(at) && fn.core.driverFeatures === 0n && (fn.core.status & VIRTIO_CONFIG_S_FEATURES_OK) === 0 ? 0 : value,
    },
  ),
  'device-config/generation-covers-changes': tamperMutant(
    'configuration byte 0 changes on every read, config_generation stays',
    { kind: 'net' },
    { read: (_fn, at, value) => (at.area === 'device' && at.offset === 0 ? counter++ & 0xff : value) },
  ),
};
