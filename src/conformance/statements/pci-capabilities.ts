/**
 * Family 'pci-capabilities' (spec 4.1.3.1, 4.1.4, 4.1.4.6 - 4.1.4.8, and 2.10 for what a shared
 * memory capability points to): the virtio vendor capabilities themselves (cap_len, the
 * device-specific configuration's, shared memory and vendor data capabilities). The common,
 * notify, ISR and PCI-cfg structures' own rules are in their families.
 */

import { PCI_CONFIG_SPACE_SIZE } from '../../spec/pci.js';
import {
  VIRTIO_ID_9P,
  VIRTIO_ID_BALLOON,
  VIRTIO_ID_BLOCK,
  VIRTIO_ID_CONSOLE,
  VIRTIO_ID_CRYPTO,
  VIRTIO_ID_FS,
  VIRTIO_ID_GPU,
  VIRTIO_ID_INPUT,
  VIRTIO_ID_IOMMU,
  VIRTIO_ID_MEM,
  VIRTIO_ID_NET,
  VIRTIO_ID_PMEM,
  VIRTIO_ID_SCSI,
  VIRTIO_ID_SOUND,
  VIRTIO_ID_VSOCK,
  VIRTIO_PCI_VENDOR_ID,
} from '../../spec/ids.js';
import { VIRTIO_PCI_DEVICE_CFG_ALIGN } from '../../spec/virtio-pci-probe.js';
import {
  VIRTIO_PCI_CAP64_SIZE,
  VIRTIO_PCI_CAP_COMMON_CFG,
  VIRTIO_PCI_CAP_DEVICE_CFG,
  VIRTIO_PCI_CAP_ISR_CFG,
  VIRTIO_PCI_CAP_NAMES,
  VIRTIO_PCI_CAP_NOTIFY_CFG,
  VIRTIO_PCI_CAP_PCI_CFG,
  VIRTIO_PCI_CAP_SHARED_MEMORY_CFG,
  VIRTIO_PCI_CAP_SIZE,
  VIRTIO_PCI_CAP_VENDOR_CFG,
  VIRTIO_PCI_CFG_CAP_SIZE,
  VIRTIO_PCI_NOTIFY_CAP_SIZE,
  VIRTIO_PCI_VNDR_DATA_HEADER_SIZE,
  VIRTIO_PCI_VNDR_DATA_SIZE_MULTIPLE,
  VIRTIO_PCI_VNDR_DATA_VENDOR_ID,
} from '../../spec/virtio-pci.js';
import { capsOfType, configSnapshot, hex, modernOnly, virtioCaps } from '../pci-support.js';
import { sizeBars } from '../../bus/bars.js';
import { readCap64 } from '../../transport/pci/shared-memory-driver.js';
import type { CheckContext, Statement } from '../statement.js';
import { NOT_AUDITED_YET, auditedStatement } from '../audited-statement.js';
import { DRIVER_REQUIREMENTS } from '../../spec/driver-requirements.js';

/** The smallest cap_len of each cfg_type: its structure, extra fields included (4.1.4.2). */
const MIN_CAP_LEN: ReadonlyMap<number, number> = new Map([
  [VIRTIO_PCI_CAP_COMMON_CFG, VIRTIO_PCI_CAP_SIZE],
  [VIRTIO_PCI_CAP_NOTIFY_CFG, VIRTIO_PCI_NOTIFY_CAP_SIZE],
  [VIRTIO_PCI_CAP_ISR_CFG, VIRTIO_PCI_CAP_SIZE],
  [VIRTIO_PCI_CAP_DEVICE_CFG, VIRTIO_PCI_CAP_SIZE],
  [VIRTIO_PCI_CAP_PCI_CFG, VIRTIO_PCI_CFG_CAP_SIZE],
  [VIRTIO_PCI_CAP_SHARED_MEMORY_CFG, VIRTIO_PCI_CAP64_SIZE],
  [VIRTIO_PCI_CAP_VENDOR_CFG, VIRTIO_PCI_VNDR_DATA_HEADER_SIZE],
]);

/** Device types whose chapter (5.x) defines a device-specific configuration layout. */
const TYPES_WITH_CONFIG: ReadonlySet<number> = new Set([
  VIRTIO_ID_NET,
  VIRTIO_ID_BLOCK,
  VIRTIO_ID_CONSOLE,
  VIRTIO_ID_BALLOON,
  VIRTIO_ID_SCSI,
  VIRTIO_ID_9P,
  VIRTIO_ID_GPU,
  VIRTIO_ID_INPUT,
  VIRTIO_ID_VSOCK,
  VIRTIO_ID_CRYPTO,
  VIRTIO_ID_IOMMU,
  VIRTIO_ID_MEM,
  VIRTIO_ID_SOUND,
  VIRTIO_ID_FS,
  VIRTIO_ID_PMEM,
]);

const base = { family: 'pci-capabilities', side: 'device' } as const;
const driver = { family: 'pci-capabilities', side: 'driver' } as const;

/** Applies when the function has capabilities of `cfgType` (a device need not have shared memory or vendor data). */
function whenPresent(cfgType: number) {
  return async (ctx: CheckContext): Promise<string | undefined> =>
    (await modernOnly(ctx)) ??
    ((await capsOfType(ctx, cfgType)).length === 0 ? `the function has no ${VIRTIO_PCI_CAP_NAMES.get(cfgType)} capability` : undefined);
}

export const pciCapabilitiesStatements: readonly Statement[] = [
  {
    ...base,
    id: 'pci-capabilities/cap-len-covers-structure',
    section: '4.1.4.2',
    level: 'MUST',
    text: "Each virtio capability's cap_len covers its whole structure, extra fields included (and stays inside configuration space).",
    check: {
      applies: modernOnly,
      async run(ctx: CheckContext) {
        const bad = virtioCaps(await configSnapshot(ctx)).filter((c) => {
          const min = MIN_CAP_LEN.get(c.cfgType);
          return (min !== undefined && c.capLen < min) || c.capOffset + c.capLen > PCI_CONFIG_SPACE_SIZE;
        });
        ctx.require(
          bad.length === 0,
          bad
            .map((c) => `cfg_type ${c.cfgType} at ${hex(c.capOffset)}: cap_len ${c.capLen} (needs ${MIN_CAP_LEN.get(c.cfgType)})`)
            .join('; '),
        );
      },
    },
  },
  {
    ...base,
    id: 'pci-capabilities/preferred-first',
    section: '4.1.4.2',
    level: 'SHOULD',
    text: 'Several structures of one type are listed from the most to the least optimal.',
    uncheckable:
      "which of two structures is more optimal for a platform is the device maker's judgement, not something a driver can measure",
  },
  {
    ...base,
    id: 'pci-capabilities/device-cfg-present',
    section: '4.1.4.6',
    level: 'MUST',
    text: 'A device type with a device-specific configuration has at least one VIRTIO_PCI_CAP_DEVICE_CFG capability.',
    check: {
      async applies(ctx: CheckContext) {
        return (
          (await modernOnly(ctx)) ??
          (TYPES_WITH_CONFIG.has(ctx.deviceType) ? undefined : `device type ${ctx.deviceType} has no device-specific configuration`)
        );
      },
      async run(ctx: CheckContext) {
        const caps = await capsOfType(ctx, VIRTIO_PCI_CAP_DEVICE_CFG);
        ctx.require(caps.length > 0, `no device-cfg capability for device type ${ctx.deviceType}`);
      },
    },
  },
  {
    ...base,
    id: 'pci-capabilities/device-cfg-offset-aligned',
    section: '4.1.4.6.1',
    level: 'MUST',
    text: "The device-specific configuration's offset is 4-byte aligned.",
    check: {
      applies: whenPresent(VIRTIO_PCI_CAP_DEVICE_CFG),
      async run(ctx: CheckContext) {
        const bad = (await capsOfType(ctx, VIRTIO_PCI_CAP_DEVICE_CFG)).filter((c) => c.offset % VIRTIO_PCI_DEVICE_CFG_ALIGN !== 0);
        ctx.require(bad.length === 0, bad.map((c) => `device-cfg cap at ${hex(c.capOffset)}: offset ${hex(c.offset)}`).join('; '));
      },
    },
  },
  {
    ...base,
    id: 'pci-capabilities/shared-memory-no-control',
    section: '2.10.2',
    level: 'MUST NOT',
    text: 'No shared memory region is one that controls the operation of the device or streams data.',
    uncheckable:
      "what a region is used for is the device type's design: nothing a driver can read says whether a region controls the device or carries a stream",
  },
  {
    ...base,
    id: 'pci-capabilities/shared-memory-within-bar',
    section: '4.1.4.7.1',
    level: 'MUST',
    text: 'A shared memory region (64-bit offset and length) lies inside the BAR its capability names.',
    check: {
      applies: whenPresent(VIRTIO_PCI_CAP_SHARED_MEMORY_CFG),
      async run(ctx: CheckContext) {
        const cfg = await configSnapshot(ctx);
        // The BARs' sizes, not the probe's result: the probe itself refuses a region outside its BAR.
        const bars = await sizeBars(ctx.bus, ctx.fn);
        for (const c of virtioCaps(cfg).filter((v) => v.cfgType === VIRTIO_PCI_CAP_SHARED_MEMORY_CFG)) {
          const { offset, length } = readCap64(cfg, c);
          const bar = bars.find((b) => b.index === c.bar);
          ctx.require(
            bar !== undefined && offset + length <= BigInt(bar.size),
            `shared memory cap at ${hex(c.capOffset)} (id ${c.id}): [0x${offset.toString(16)}, +0x${length.toString(16)}) in BAR${c.bar} ${bar === undefined ? '(not implemented)' : `of size ${hex(bar.size)}`}`,
          );
        }
      },
    },
  },
  {
    ...base,
    id: 'pci-capabilities/shared-memory-id-unique',
    section: '4.1.4.7.1',
    level: 'MUST',
    text: 'No two shared memory capabilities of a device share an id.',
    check: {
      applies: whenPresent(VIRTIO_PCI_CAP_SHARED_MEMORY_CFG),
      async run(ctx: CheckContext) {
        const ids = (await capsOfType(ctx, VIRTIO_PCI_CAP_SHARED_MEMORY_CFG)).map((c) => c.id);
        ctx.require(new Set(ids).size === ids.length, `shared memory ids ${ids.join(', ')}`);
      },
    },
  },
  {
    ...base,
    id: 'pci-capabilities/vendor-data-not-virtio-vendor',
    section: '4.1.4.8.1',
    level: 'MUST NOT',
    text: "A vendor data capability's vendor_id is not 0x1AF4.",
    check: {
      applies: whenPresent(VIRTIO_PCI_CAP_VENDOR_CFG),
      async run(ctx: CheckContext) {
        const cfg = await configSnapshot(ctx);
        const ids = virtioCaps(cfg)
          .filter((c) => c.cfgType === VIRTIO_PCI_CAP_VENDOR_CFG)
          .map((c) => cfg.read16(c.capOffset + VIRTIO_PCI_VNDR_DATA_VENDOR_ID));
        ctx.require(!ids.includes(VIRTIO_PCI_VENDOR_ID), `vendor data vendor_ids ${ids.map(hex).join(', ')}`);
      },
    },
  },
  {
    ...base,
    id: 'pci-capabilities/vendor-data-size',
    section: '4.1.4.8.1',
    level: 'MUST',
    text: 'A vendor data capability is a multiple of 4 bytes long.',
    check: {
      applies: whenPresent(VIRTIO_PCI_CAP_VENDOR_CFG),
      async run(ctx: CheckContext) {
        const bad = (await capsOfType(ctx, VIRTIO_PCI_CAP_VENDOR_CFG)).filter(
          (c) => c.capLen % VIRTIO_PCI_VNDR_DATA_SIZE_MULTIPLE !== 0 || c.capLen < VIRTIO_PCI_VNDR_DATA_HEADER_SIZE,
        );
        ctx.require(bad.length === 0, bad.map((c) => `vendor data cap at ${hex(c.capOffset)}: cap_len ${c.capLen}`).join('; '));
      },
    },
  },
  {
    ...base,
    id: 'pci-capabilities/vendor-data-read-no-side-effect',
    section: '4.1.4.8.1',
    level: 'MUST NOT',
    text: 'Reading a vendor data capability has no side effect (here: reading it again gives the same bytes).',
    check: {
      applies: whenPresent(VIRTIO_PCI_CAP_VENDOR_CFG),
      async run(ctx: CheckContext) {
        const caps = await capsOfType(ctx, VIRTIO_PCI_CAP_VENDOR_CFG);
        const first = await configSnapshot(ctx);
        const second = await configSnapshot(ctx);
        for (const c of caps) {
          const a = [...first.bytes.subarray(c.capOffset, c.capOffset + c.capLen)];
          const b = [...second.bytes.subarray(c.capOffset, c.capOffset + c.capLen)];
          ctx.require(
            a.join() === b.join(),
            `vendor data cap at ${hex(c.capOffset)} read ${a.map(hex).join(' ')}, then ${b.map(hex).join(' ')}`,
          );
        }
      },
    },
  },
  // Driver side (4.1.3.1, 4.1.4.1, 4.1.4.8.2), for the audit.
  {
    ...driver,
    id: 'pci-capabilities/driver-access-width',
    section: '4.1.3.1',
    level: 'MUST',
    text: 'The driver accesses 8-bit fields with 8-bit accesses, 16-bit fields with aligned 16-bit ones, 32- and 64-bit fields with aligned 32-bit ones.',
    uncheckable: NOT_AUDITED_YET,
  },
  {
    ...driver,
    id: 'pci-capabilities/driver-ignore-reserved-cfg-type',
    section: '4.1.4.1',
    level: 'MUST',
    text: 'The driver ignores a vendor capability with a reserved cfg_type.',
    uncheckable: 'ignoring is the absence of an access; our devices present no reserved cfg_type to test it on',
  },
  {
    ...driver,
    id: 'pci-capabilities/driver-first-instance',
    section: '4.1.4.1',
    level: 'SHOULD',
    text: 'The driver uses the first capability of each structure type it can support.',
    uncheckable: 'each of our devices has one capability of each type: there is no later one a driver could wrongly prefer',
  },
  {
    ...driver,
    id: 'pci-capabilities/driver-accept-long-cap-len',
    section: '4.1.4.1',
    level: 'MUST',
    text: 'The driver accepts a cap_len larger than the structure it knows.',
    uncheckable: 'a driver that refuses a long cap_len simply does not bind; the audit cannot see a refusal',
  },
  {
    ...driver,
    id: 'pci-capabilities/driver-ignore-reserved-bar',
    section: '4.1.4.1',
    level: 'MUST',
    text: 'The driver ignores a vendor capability whose bar is a reserved value.',
    uncheckable: 'ignoring is the absence of an access; our devices present no reserved bar to test it on',
  },
  {
    ...driver,
    id: 'pci-capabilities/driver-map-only-needed',
    section: '4.1.4.1',
    level: 'SHOULD',
    text: 'The driver maps only as much of a structure as it needs to operate the device.',
    uncheckable: 'mapping is invisible to the device',
  },
  {
    ...driver,
    id: 'pci-capabilities/driver-handle-large-length',
    section: '4.1.4.1',
    level: 'MUST',
    text: 'The driver copes with an unexpectedly large structure length.',
    uncheckable: 'a driver that refuses a large length does not bind; the audit cannot see a refusal',
  },
  auditedStatement('pci-capabilities', DRIVER_REQUIREMENTS.pciNoCapWrites),
  {
    ...driver,
    id: 'pci-capabilities/driver-vendor-data-debug-only',
    section: '4.1.4.8.2',
    level: 'SHOULD NOT',
    text: 'The driver uses vendor data capabilities only for debugging and reporting.',
    uncheckable: 'what a driver does with data it read is invisible to the device',
  },
  {
    ...driver,
    id: 'pci-capabilities/driver-vendor-data-qualify',
    section: '4.1.4.8.2',
    level: 'MUST',
    text: "The driver checks a vendor data capability's vendor_id before interpreting it or writing to it.",
    uncheckable: 'interpretation is invisible to the device; writes are covered by driver-no-cap-writes',
  },
];
