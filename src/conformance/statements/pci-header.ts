/**
 * Family 'pci-header' (spec 4.1.1, 4.1.2): the PCI IDs, revision and subsystem of a virtio function,
 * and the parts of the PCI specification the virtio transport leans on (the capability list).
 * The transitional rules of 4.1.2.3 are in pci-legacy.
 */

import { walkCapabilities } from '../../bus/capabilities.js';
import {
  VIRTIO_PCI_DEVICE_ID_MAX,
  VIRTIO_PCI_DEVICE_ID_MIN,
  VIRTIO_PCI_MODERN_DEVICE_ID_BASE,
  VIRTIO_PCI_TRANSITIONAL_DEVICE_IDS,
  VIRTIO_PCI_VENDOR_ID,
} from '../../spec/ids.js';
import { configSnapshot, hex } from '../pci-support.js';
import type { CheckContext, Statement } from '../statement.js';

/** Subsystem IDs below this are virtio device types, which legacy drivers match (4.1.2.1). */
const NON_TRANSITIONAL_SUBSYSTEM_MIN = 0x40;

const base = { family: 'pci-header', side: 'device' } as const;

/** The SHOULDs of 4.1.2.1 are about non-transitional devices: the ones without a transitional device ID. */
async function nonTransitional(ctx: CheckContext): Promise<string | undefined> {
  return ctx.transitional || ctx.via === 'legacy' ? 'the function is transitional or legacy' : undefined;
}

export const pciHeaderStatements: readonly Statement[] = [
  {
    ...base,
    id: 'pci-header/pci-capability-list',
    section: '4.1.1',
    level: 'MUST',
    text: 'The function meets the PCI specification; checked here: its capability list, which the virtio structures hang on, is well formed (status bit, aligned pointers past the header, no loop).',
    check: {
      async applies(ctx: CheckContext) {
        return ctx.via === 'legacy' && !ctx.transitional ? 'a legacy-only function needs no capability list' : undefined;
      },
      async run(ctx: CheckContext) {
        const walk = walkCapabilities(await configSnapshot(ctx));
        ctx.require(walk.error === undefined && walk.caps.length > 0, walk.error ?? 'no capability list (status bit 4 clear or pointer 0)');
      },
    },
  },
  {
    ...base,
    id: 'pci-header/pci-specification',
    section: '4.1.1',
    level: 'MUST',
    text: 'The function meets the requirements of the PCI (or PCIe) specification as a whole.',
    uncheckable:
      'the PCI specification as a whole is beyond a virtio checker; the parts virtio relies on (capability list, BARs, MSI-X) have their own checks',
  },
  {
    ...base,
    id: 'pci-header/vendor-id',
    section: '4.1.2.1',
    level: 'MUST',
    text: 'The PCI Vendor ID is 0x1AF4.',
    check: {
      async run(ctx: CheckContext) {
        const { vendorId } = await configSnapshot(ctx);
        ctx.require(vendorId === VIRTIO_PCI_VENDOR_ID, `vendor ID ${hex(vendorId)}`);
      },
    },
  },
  {
    ...base,
    id: 'pci-header/device-id',
    section: '4.1.2.1',
    level: 'MUST',
    text: 'The PCI Device ID is 0x1040 plus the virtio device type, or the transitional ID the spec lists for that type.',
    check: {
      async run(ctx: CheckContext) {
        const { deviceId, subsystemId } = await configSnapshot(ctx);
        const modern = VIRTIO_PCI_MODERN_DEVICE_ID_BASE + ctx.deviceType;
        const transitional = VIRTIO_PCI_TRANSITIONAL_DEVICE_IDS.get(ctx.deviceType);
        const inRange = deviceId >= VIRTIO_PCI_DEVICE_ID_MIN && deviceId <= VIRTIO_PCI_DEVICE_ID_MAX;
        ctx.require(
          inRange && (deviceId === modern || deviceId === transitional),
          `device ID ${hex(deviceId)} for device type ${ctx.deviceType} (subsystem ID ${hex(subsystemId)}); expected ${hex(modern)}${transitional === undefined ? '' : ` or ${hex(transitional)}`}`,
        );
      },
    },
  },
  {
    ...base,
    id: 'pci-header/non-transitional-device-id',
    section: '4.1.2.1',
    level: 'SHOULD',
    text: 'A non-transitional device has a PCI Device ID in 0x1040..0x107F.',
    check: {
      applies: nonTransitional,
      async run(ctx: CheckContext) {
        const { deviceId } = await configSnapshot(ctx);
        ctx.require(deviceId >= VIRTIO_PCI_MODERN_DEVICE_ID_BASE && deviceId <= VIRTIO_PCI_DEVICE_ID_MAX, `device ID ${hex(deviceId)}`);
      },
    },
  },
  {
    ...base,
    id: 'pci-header/non-transitional-revision',
    section: '4.1.2.1',
    level: 'SHOULD',
    text: 'A non-transitional device has a PCI Revision ID of 1 or more (so that legacy drivers leave it alone).',
    check: {
      applies: nonTransitional,
      async run(ctx: CheckContext) {
        const { revision } = await configSnapshot(ctx);
        ctx.require(revision >= 1, `revision ID ${revision}`);
      },
    },
  },
  {
    ...base,
    id: 'pci-header/non-transitional-subsystem-id',
    section: '4.1.2.1',
    level: 'SHOULD',
    text: 'A non-transitional device has a PCI Subsystem Device ID of 0x40 or more.',
    check: {
      applies: nonTransitional,
      async run(ctx: CheckContext) {
        const { subsystemId } = await configSnapshot(ctx);
        ctx.require(subsystemId >= NON_TRANSITIONAL_SUBSYSTEM_MIN, `subsystem device ID ${hex(subsystemId)}`);
      },
    },
  },
  // Driver side (4.1.2.2), for the audit.
  {
    ...base,
    side: 'driver',
    id: 'pci-header/driver-match-modern-id',
    section: '4.1.2.2',
    level: 'MUST',
    text: 'The driver matches vendor 0x1AF4 with device IDs 0x1040..0x107F (0x1040 plus the device type).',
    uncheckable: 'which IDs a driver binds to is decided before it touches the device; the audit sees only drivers that did bind',
  },
  {
    ...base,
    side: 'driver',
    id: 'pci-header/driver-match-transitional-id',
    section: '4.1.2.2',
    level: 'MUST',
    text: 'A driver for a type with a transitional ID also matches vendor 0x1AF4 with that transitional device ID.',
    uncheckable: 'which IDs a driver binds to is decided before it touches the device; the audit sees only drivers that did bind',
  },
  {
    ...base,
    side: 'driver',
    id: 'pci-header/driver-match-any-revision',
    section: '4.1.2.2',
    level: 'MUST',
    text: 'The driver matches whatever the PCI Revision ID is.',
    uncheckable: 'a driver that refused a revision never touches the device, so the audit cannot see it',
  },
];
