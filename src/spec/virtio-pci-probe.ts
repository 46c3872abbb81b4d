/**
 * What a driver checks of each virtio structure's capability (spec 4.1.4 "Virtio Structure PCI
 * Capabilities" and the device requirements under 4.1.4.3 - 4.1.4.6), and of a legacy interface
 * (4.1.2.1). Lengths and alignments are in bytes.
 */

import {
  VIRTIO_PCI_CAP_COMMON_CFG,
  VIRTIO_PCI_CAP_DEVICE_CFG,
  VIRTIO_PCI_CAP_ISR_CFG,
  VIRTIO_PCI_CAP_NOTIFY_CFG,
  VIRTIO_PCI_COMMON_CFG_MIN_SIZE,
} from './virtio-pci.js';

/** 4.1.4.3.1: the common configuration structure's offset is 4-byte aligned. */
export const VIRTIO_PCI_COMMON_CFG_ALIGN = 4;
/** 4.1.4.4.1: cap.offset of the notification structure is 2-byte aligned, cap.length at least 2. */
export const VIRTIO_PCI_NOTIFY_CFG_ALIGN = 2;
export const VIRTIO_PCI_NOTIFY_CFG_MIN_SIZE = 2;
/** 4.1.4.5: the ISR status is one byte, with no alignment requirement. */
export const VIRTIO_PCI_ISR_CFG_ALIGN = 1;
export const VIRTIO_PCI_ISR_CFG_MIN_SIZE = 1;
/** 4.1.4.6.1: the device-specific configuration's offset is 4-byte aligned. */
export const VIRTIO_PCI_DEVICE_CFG_ALIGN = 4;
export const VIRTIO_PCI_DEVICE_CFG_MIN_SIZE = 1;

/** Alignment and minimum length of each structure a driver maps, by cfg_type. */
export const VIRTIO_PCI_CAP_RULES: ReadonlyMap<number, { readonly align: number; readonly minLength: number }> = new Map([
  [VIRTIO_PCI_CAP_COMMON_CFG, { align: VIRTIO_PCI_COMMON_CFG_ALIGN, minLength: VIRTIO_PCI_COMMON_CFG_MIN_SIZE }],
  [VIRTIO_PCI_CAP_NOTIFY_CFG, { align: VIRTIO_PCI_NOTIFY_CFG_ALIGN, minLength: VIRTIO_PCI_NOTIFY_CFG_MIN_SIZE }],
  [VIRTIO_PCI_CAP_ISR_CFG, { align: VIRTIO_PCI_ISR_CFG_ALIGN, minLength: VIRTIO_PCI_ISR_CFG_MIN_SIZE }],
  [VIRTIO_PCI_CAP_DEVICE_CFG, { align: VIRTIO_PCI_DEVICE_CFG_ALIGN, minLength: VIRTIO_PCI_DEVICE_CFG_MIN_SIZE }],
]);

/** 4.1.2.1: a transitional device (and a legacy one) has PCI Revision ID 0. */
export const VIRTIO_PCI_LEGACY_REVISION = 0;
