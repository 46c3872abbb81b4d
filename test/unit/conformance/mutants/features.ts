/** Mutants of family 'features': each breaks one rule of 2.2 or 6 in our device. */

import type { Mutants } from './mutant.js';
import { changedDevice, deviceMutant, tamperMutant, type Access, type TamperedFunction } from './tamper.js';
import { MODERN_BAR } from '../../../../src/transport/pci/modern-device.js';
import { VIRTIO_F_ANY_LAYOUT, VIRTIO_F_EVENT_IDX, VIRTIO_F_INDIRECT_DESC, VIRTIO_F_SR_IOV, bit } from '../../../../src/spec/features.js';
import { VIRTIO_NET_F_CTRL_RX, VIRTIO_NET_F_CTRL_VQ } from '../../../../src/spec/net.js';
import {
  VIRTIO_PCI_COMMON_DF,
  VIRTIO_PCI_COMMON_DFSELECT,
  VIRTIO_PCI_HOST_FEATURES,
  VIRTIO_PCI_QUEUE_NOTIFY,
} from '../../../../src/spec/virtio-pci.js';

const featureSelect = (fn: TamperedFunction): number => fn.barReadDirect(MODERN_BAR, VIRTIO_PCI_COMMON_DFSELECT, 4);
const isDeviceFeature = (at: Access): boolean => at.area === 'common' && at.offset === VIRTIO_PCI_COMMON_DF;

/** The device also offers `extra` (nothing else changes). */
function offersToo(extra: bigint, breaks: string, kind: 'rng' | 'blk' | 'net' | 'console', mode?: 'transitional') {
  return deviceMutant(breaks, { kind, ...(mode ? { mode } : {}) }, (inner) => changedDevice(inner, { addFeatures: extra }));
}

/** The device refuses FEATURES_OK for sets `refuses` picks. */
function refusing(breaks: string, kind: 'rng' | 'blk' | 'net' | 'console', refuses: (features: bigint) => boolean) {
  return deviceMutant(breaks, { kind }, (inner) =>
    changedDevice(inner, { acceptFeatures: (features, device) => !refuses(features) && (device.acceptFeatures?.(features) ?? true) }),
  );
}

export const featuresMutants: Mutants = {
  'features/no-offer-without-requirement': deviceMutant(
    'net offers CTRL_RX without CTRL_VQ',
    { kind: 'net', mode: 'transitional' },
    (inner) => changedDevice(inner, { addFeatures: bit(VIRTIO_NET_F_CTRL_RX), removeFeatures: bit(VIRTIO_NET_F_CTRL_VQ) }),
  ),
  'features/no-undescribed-transport-bits': offersToo(bit(25), 'the device offers bit 25', 'blk', 'transitional'),
  'features/no-future-bits': offersToo(bit(44), 'the device offers bit 44', 'console'),
  'features/no-bits-beyond-127': tamperMutant(
    'device_feature shows bit 128',
    { kind: 'rng' },
    {
      read: (fn, at, value) => (isDeviceFeature(at) && featureSelect(fn) === 4 ? 1 : value),
    },
  ),
  'features/offers-version-1': tamperMutant(
    'device_feature hides VERSION_1',
    { kind: 'net' },
    {
      read: (fn, at, value) => (isDeviceFeature(at) && featureSelect(fn) === 1 ? value & ~1 : value),
    },
  ),
  'features/no-sr-iov-without-capability': offersToo(bit(VIRTIO_F_SR_IOV), 'the device offers SR_IOV without the capability', 'rng'),
  // ANY_LAYOUT is the legacy interface's own offer (the transport's, not the device model's).
  'features/transitional-offers-any-layout': tamperMutant(
    'the transitional device does not offer ANY_LAYOUT',
    { kind: 'rng', mode: 'transitional' },
    {
      read: (_fn, at, value) =>
        at.area === 'legacy' && at.offset === VIRTIO_PCI_HOST_FEATURES ? value & ~Number(bit(VIRTIO_F_ANY_LAYOUT)) : value,
    },
  ),
  'features/accepts-minimal-set': refusing(
    'FEATURES_OK refused without a device-specific or ring feature',
    'rng',
    (f) => (f & 0xffff_ffffn) === 0n,
  ),
  'features/accepts-whole-offer': refusing(
    'FEATURES_OK refused when EVENT_IDX is accepted',
    'blk',
    (f) => (f & bit(VIRTIO_F_EVENT_IDX)) !== 0n,
  ),
  'features/accepts-each-feature': refusing(
    'FEATURES_OK refused when INDIRECT_DESC is accepted',
    'console',
    (f) => (f & bit(VIRTIO_F_INDIRECT_DESC)) !== 0n,
  ),
  'features/renegotiates-after-reset': deviceMutant('FEATURES_OK accepted only the first time', { kind: 'net' }, (inner) => {
    let negotiated = 0;
    return changedDevice(inner, { acceptFeatures: () => negotiated++ === 0 });
  }),
  'features/transitional-serves-legacy-driver': tamperMutant(
    'the legacy interface ignores notifications',
    { kind: 'console', mode: 'transitional' },
    {
      write: (_fn, at) => at.area === 'legacy' && at.offset === VIRTIO_PCI_QUEUE_NOTIFY,
    },
  ),
};
