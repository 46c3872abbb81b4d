/**
 * Family 'pci-legacy' (spec 4.1.2.3, 4.1.4.10, 4.1.4.11, 4.1.5.1.1.1): a transitional device's IDs
 * and its legacy interface: the header in I/O BAR0 and its registers, device-specific configuration
 * right after the header (moving by 4 bytes with MSI-X), read at any width.
 */

import { openDevice, featuresOk, probeQueue } from '../bring-up.js';
import { probe as probeFunction } from '../../transport/pci/probe.js';
import {
  VIRTIO_PCI_TRANSITIONAL_DEVICE_IDS,
  VIRTIO_PCI_TRANSITIONAL_ID_MAX,
  VIRTIO_PCI_TRANSITIONAL_ID_MIN,
  deviceTypeOfTransitionalId,
} from '../../spec/ids.js';
import { VIRTIO_CONFIG_S_ACKNOWLEDGE } from '../../spec/status.js';
import { VIRTIO_PCI_LEGACY_REVISION } from '../../spec/virtio-pci-probe.js';
import {
  VIRTIO_PCI_CONFIG_OFF_MSIX,
  VIRTIO_PCI_CONFIG_OFF_NO_MSIX,
  VIRTIO_PCI_GUEST_FEATURES,
  VIRTIO_PCI_HOST_FEATURES,
  VIRTIO_PCI_QUEUE_PFN,
  VIRTIO_PCI_QUEUE_SEL,
  VIRTIO_PCI_STATUS,
  VIRTIO_PCI_QUEUE_ADDR_SHIFT,
} from '../../spec/virtio-pci.js';
import type { AccessSize } from '../../memory/access-size.js';
import {
  configSnapshot,
  enableMsix,
  hex,
  legacyHeader,
  legacyOnly,
  msixOf,
  registers,
  type Registers,
  transportOf,
} from '../pci-support.js';
import type { CheckContext, Statement } from '../statement.js';
import { auditedStatement } from '../audited-statement.js';
import { DRIVER_REQUIREMENTS as R } from '../../spec/driver-requirements.js';

/** Legacy bit 30, VIRTIO_F_BAD_FEATURE: a legacy driver sets it to say it failed; never acknowledged. */
const VIRTIO_F_BAD_FEATURE = 30;
/** Bytes of device-specific configuration the layout checks compare at most. */
const CONFIG_COMPARE_BYTES = 16;

const base = { family: 'pci-legacy', side: 'device' } as const;
const driver = { family: 'pci-legacy', side: 'driver' } as const;

/** Applies to a function with a transitional device ID (a transitional or a legacy device). */
async function transitionalId(ctx: CheckContext): Promise<string | undefined> {
  const { deviceId } = await configSnapshot(ctx);
  return deviceId >= VIRTIO_PCI_TRANSITIONAL_ID_MIN && deviceId <= VIRTIO_PCI_TRANSITIONAL_ID_MAX
    ? undefined
    : `device ID ${hex(deviceId)} is not a transitional one`;
}

/** Bytes of device-specific configuration the legacy header's BAR0 holds after `offset`, at most CONFIG_COMPARE_BYTES. */
async function legacyConfigLength(ctx: CheckContext, offset: number): Promise<number> {
  const result = await ctx.probe();
  return result.kind === 'legacy' ? Math.max(0, Math.min(CONFIG_COMPARE_BYTES, result.bar0.size - offset)) : 0;
}

async function readBytes(regs: Registers, offset: number, length: number, width: AccessSize = 1): Promise<number[]> {
  const out: number[] = [];
  for (let at = 0; at + width <= length; at += width) {
    const v = await regs.read(offset + at, width);
    for (let b = 0; b < width; b++) out.push((v >>> (8 * b)) & 0xff);
  }
  return out;
}

const bytesText = (b: readonly number[]): string => b.map((x) => x.toString(16).padStart(2, '0')).join(' ');

export const pciLegacyStatements: readonly Statement[] = [
  {
    ...base,
    id: 'pci-legacy/transitional-revision-zero',
    section: '4.1.2.3',
    level: 'MUST',
    text: 'A transitional device has PCI Revision ID 0.',
    check: {
      applies: transitionalId,
      async run(ctx: CheckContext) {
        const { revision } = await configSnapshot(ctx);
        ctx.require(revision === VIRTIO_PCI_LEGACY_REVISION, `revision ID ${revision}`);
      },
    },
  },
  {
    ...base,
    id: 'pci-legacy/transitional-subsystem-id',
    section: '4.1.2.3',
    level: 'MUST',
    text: 'A transitional device has a PCI Subsystem Device ID equal to its virtio device type.',
    check: {
      applies: transitionalId,
      async run(ctx: CheckContext) {
        const { deviceId, subsystemId } = await configSnapshot(ctx);
        const type = deviceTypeOfTransitionalId(deviceId);
        ctx.require(
          type !== undefined && subsystemId === type,
          `device ID ${hex(deviceId)} (type ${type}), subsystem device ID ${hex(subsystemId)}`,
        );
      },
    },
  },
  {
    ...base,
    id: 'pci-legacy/transitional-device-id',
    section: '4.1.2.3',
    level: 'MUST',
    text: "A transitional device has its type's transitional PCI Device ID, in 0x1000..0x103F.",
    uncheckable: `from the driver side a device is transitional only by this very ID (${[...VIRTIO_PCI_TRANSITIONAL_DEVICE_IDS.values()].map(hex).join(', ')}); pci-header/device-id checks the ID matches the type`,
  },
  {
    ...base,
    id: 'pci-legacy/bar0-io',
    section: '4.1.4.10',
    level: 'MUST',
    text: 'A transitional device presents the legacy header in BAR0, an I/O BAR holding at least the header (20 bytes, 24 with MSI-X).',
    check: {
      applies: transitionalId,
      async run(ctx: CheckContext) {
        const result = await ctx.probe();
        const bar0 = result.bars.find((b) => b.index === 0);
        const header = result.msix === undefined ? VIRTIO_PCI_CONFIG_OFF_NO_MSIX : VIRTIO_PCI_CONFIG_OFF_MSIX;
        ctx.require(
          bar0 !== undefined && bar0.kind === 'io' && bar0.size >= header,
          bar0 === undefined ? 'BAR0 is not implemented' : `BAR0 is ${bar0.kind}, ${bar0.size} bytes (header ${header})`,
        );
      },
    },
  },
  {
    ...base,
    id: 'pci-legacy/header-status',
    section: '4.1.4.10',
    level: 'MUST',
    text: "The legacy header's Device Status (offset 18) reads back what the driver wrote, and 0 after a reset.",
    check: {
      via: ['legacy'],
      applies: legacyOnly,
      async run(ctx: CheckContext) {
        const h = await legacyHeader(ctx);
        await h.write(VIRTIO_PCI_STATUS, 1, 0);
        await h.write(VIRTIO_PCI_STATUS, 1, VIRTIO_CONFIG_S_ACKNOWLEDGE);
        const acked = await h.read(VIRTIO_PCI_STATUS, 1);
        await h.write(VIRTIO_PCI_STATUS, 1, 0);
        const reset = await h.read(VIRTIO_PCI_STATUS, 1);
        ctx.require(acked === VIRTIO_CONFIG_S_ACKNOWLEDGE && reset === 0, `wrote 1: read ${hex(acked)}; wrote 0: read ${hex(reset)}`);
      },
    },
  },
  {
    ...base,
    id: 'pci-legacy/header-queue-select',
    section: '4.1.4.10',
    level: 'MUST',
    text: "The legacy header's Queue Select (offset 14) reads back what the driver wrote.",
    check: {
      via: ['legacy'],
      applies: legacyOnly,
      async run(ctx: CheckContext) {
        await openDevice(ctx);
        const h = await legacyHeader(ctx);
        await h.write(VIRTIO_PCI_QUEUE_SEL, 2, 1);
        const sel = await h.read(VIRTIO_PCI_QUEUE_SEL, 2);
        ctx.require(sel === 1, `wrote 1, read ${sel}`);
      },
    },
  },
  {
    ...base,
    id: 'pci-legacy/header-queue-pfn',
    section: '4.1.4.10',
    level: 'MUST',
    text: "The legacy header's Queue Address (offset 8) reads back the page number the driver wrote for the selected queue.",
    check: {
      via: ['legacy'],
      applies: legacyOnly,
      async run(ctx: CheckContext) {
        await featuresOk(ctx);
        const q = await probeQueue(ctx, 0, false);
        try {
          const h = await legacyHeader(ctx);
          await h.write(VIRTIO_PCI_QUEUE_SEL, 2, 0);
          const pfn = (await h.read(VIRTIO_PCI_QUEUE_PFN, 4)) >>> 0;
          const want = q.descAddr / 2 ** VIRTIO_PCI_QUEUE_ADDR_SHIFT;
          ctx.require(pfn === want, `wrote PFN ${hex(want)} for queue 0, read ${hex(pfn)}`);
        } finally {
          await (await transportOf(ctx)).reset();
          q.destroy();
        }
      },
    },
  },
  {
    ...base,
    id: 'pci-legacy/header-guest-features',
    section: '4.1.4.10',
    level: 'MUST',
    text: "The legacy header's Driver Features (offset 4) reads back the offered bits the driver wrote.",
    check: {
      via: ['legacy'],
      applies: legacyOnly,
      async run(ctx: CheckContext) {
        await openDevice(ctx);
        const h = await legacyHeader(ctx);
        const offered = ((await h.read(VIRTIO_PCI_HOST_FEATURES, 4)) & ~(1 << VIRTIO_F_BAD_FEATURE)) >>> 0;
        await h.write(VIRTIO_PCI_GUEST_FEATURES, 4, offered);
        const read = (await h.read(VIRTIO_PCI_GUEST_FEATURES, 4)) >>> 0;
        ctx.require(read === offered, `wrote ${hex(offered)} (the offered bits), read ${hex(read)}`);
      },
    },
  },
  {
    ...base,
    id: 'pci-legacy/config-after-header',
    section: '4.1.4.10',
    level: 'MUST',
    text: 'Through the legacy interface with MSI-X off, device-specific configuration starts right after the header, at offset 20 (the same bytes the modern interface shows).',
    check: {
      via: ['legacy'],
      async applies(ctx: CheckContext) {
        if (!ctx.transitional) return 'only a transitional device shows its configuration through both interfaces to compare';
        return (
          (await legacyOnly(ctx)) ??
          ((await legacyConfigLength(ctx, VIRTIO_PCI_CONFIG_OFF_NO_MSIX)) === 0 ? 'no device-specific configuration' : undefined)
        );
      },
      async run(ctx: CheckContext) {
        const modern = await probeFunction(ctx.bus, ctx.fn);
        ctx.require(
          modern.kind === 'modern' && modern.layout.device !== undefined,
          'the modern interface shows no device-specific configuration',
        );
        const length = Math.min(await legacyConfigLength(ctx, VIRTIO_PCI_CONFIG_OFF_NO_MSIX), modern.layout.device.length);
        const viaModern = await readBytes(registers(ctx.bus, modern.layout.device), 0, length);
        const viaLegacy = await readBytes(await legacyHeader(ctx), VIRTIO_PCI_CONFIG_OFF_NO_MSIX, length);
        ctx.require(
          viaLegacy.join() === viaModern.join(),
          `legacy BAR0+20: ${bytesText(viaLegacy)}; modern device-cfg: ${bytesText(viaModern)}`,
        );
      },
    },
  },
  {
    ...base,
    id: 'pci-legacy/config-after-header-msix',
    section: '4.1.4.10',
    level: 'MUST',
    text: 'Through the legacy interface with MSI-X enabled, device-specific configuration moves to offset 24, after the two vector registers.',
    check: {
      via: ['legacy'],
      async applies(ctx: CheckContext) {
        const reason = await legacyOnly(ctx);
        if (reason !== undefined) return reason;
        const msix = await msixOf(ctx);
        if (typeof msix === 'string') return msix;
        return (await legacyConfigLength(ctx, VIRTIO_PCI_CONFIG_OFF_MSIX)) === 0 ? 'no device-specific configuration' : undefined;
      },
      async run(ctx: CheckContext) {
        const msix = await msixOf(ctx);
        if (typeof msix === 'string') return;
        const length = await legacyConfigLength(ctx, VIRTIO_PCI_CONFIG_OFF_MSIX);
        const h = await legacyHeader(ctx);
        await openDevice(ctx);
        const off = await readBytes(h, VIRTIO_PCI_CONFIG_OFF_NO_MSIX, length);
        const disable = await enableMsix(ctx, msix);
        let on: number[];
        try {
          on = await readBytes(h, VIRTIO_PCI_CONFIG_OFF_MSIX, length);
        } finally {
          await disable();
        }
        ctx.require(on.join() === off.join(), `MSI-X off, BAR0+20: ${bytesText(off)}; MSI-X on, BAR0+24: ${bytesText(on)}`);
      },
    },
  },
  {
    ...base,
    id: 'pci-legacy/config-any-width',
    section: '4.1.4.10',
    level: 'MUST',
    text: 'Through the legacy interface, device-specific configuration read with 1-, 2- or 4-byte accesses gives the same bytes.',
    check: {
      via: ['legacy'],
      async applies(ctx: CheckContext) {
        return (
          (await legacyOnly(ctx)) ??
          ((await legacyConfigLength(ctx, VIRTIO_PCI_CONFIG_OFF_NO_MSIX)) < 4
            ? 'less than 4 bytes of device-specific configuration'
            : undefined)
        );
      },
      async run(ctx: CheckContext) {
        const length = (await legacyConfigLength(ctx, VIRTIO_PCI_CONFIG_OFF_NO_MSIX)) & ~3;
        const h = await legacyHeader(ctx);
        await openDevice(ctx);
        const [b1, b2, b4] = [
          await readBytes(h, VIRTIO_PCI_CONFIG_OFF_NO_MSIX, length, 1),
          await readBytes(h, VIRTIO_PCI_CONFIG_OFF_NO_MSIX, length, 2),
          await readBytes(h, VIRTIO_PCI_CONFIG_OFF_NO_MSIX, length, 4),
        ];
        ctx.require(
          b1.join() === b2.join() && b2.join() === b4.join(),
          `1-byte: ${bytesText(b1)}; 2-byte: ${bytesText(b2)}; 4-byte: ${bytesText(b4)}`,
        );
      },
    },
  },
  {
    ...base,
    id: 'pci-legacy/high-features-not-acked',
    section: '4.1.4.10',
    level: 'MUST',
    text: 'Through the legacy interface, the device takes feature bits 32..63 as not acknowledged.',
    uncheckable:
      'what follows from it (legacy ring layout and headers) is device-type specific and checked by the device families through the legacy interface',
  },
  {
    ...base,
    id: 'pci-legacy/non-transitional-fail-legacy-driver',
    section: '4.1.4.11',
    level: 'SHOULD',
    text: 'Where a legacy driver for the same IDs once existed, a non-transitional device presents an I/O BAR0 and answers a zero write to its offset 18 by reading zeroes everywhere and ignoring writes.',
    uncheckable: 'whether a legacy driver for the same IDs existed on the platform is not knowable from the function',
  },
  // Driver side, for the audit.
  auditedStatement('pci-legacy', R.legacyOneInterface),
  auditedStatement('pci-legacy', R.legacyReadOnly),
  {
    ...driver,
    id: 'pci-legacy/driver-config-after-header',
    section: '4.1.4.10',
    level: 'MUST',
    text: 'Through the legacy interface, the driver accesses device-specific configuration right after the header (20, or 24 with MSI-X enabled).',
    uncheckable:
      'an access at the wrong offset is an access to another register (20..23 are the MSI-X vectors, or configuration bytes): the device cannot tell which the driver meant',
  },
  {
    ...driver,
    id: 'pci-legacy/driver-look-for-capabilities',
    section: '4.1.5.1.1.1',
    level: 'MUST',
    text: 'A transitional driver looks for the virtio capabilities first, and uses the legacy interface only when they are absent.',
    uncheckable:
      'a legacy-only driver may use BAR0 on a function with capabilities: the device cannot tell a transitional driver skipping them from a legacy driver',
  },
  {
    ...driver,
    id: 'pci-legacy/driver-non-transitional-fail',
    section: '4.1.5.1.1.1',
    level: 'MUST',
    text: 'A non-transitional driver that finds no virtio capabilities fails gracefully.',
    uncheckable: 'our devices with a legacy interface also have a transitional ID; a driver failing gracefully makes no access to record',
  },
];
