import { commonCfg } from '../pci-support.js';
import type { CheckContext, Statement } from '../statement.js';
import { driverStatements } from './define.js';
import { goLive, minimalFeatures, openDevice, serveOne, writeFeatures, type Opened } from '../bring-up.js';
import { promptRequestUnsupported } from '../prompt-request.js';
import {
  VIRTIO_F_ANY_LAYOUT,
  VIRTIO_F_NOTIFY_ON_EMPTY,
  VIRTIO_F_SR_IOV,
  VIRTIO_F_VERSION_1,
  bit,
  featureBits,
  featureSet,
  hasFeature,
  requirementMet,
} from '../../spec/features.js';
import { deviceFeatureRequirements } from '../../spec/feature-requirements.js';
import { VIRTIO_PCI_COMMON_DF, VIRTIO_PCI_COMMON_DFSELECT } from '../../spec/virtio-pci.js';
import { PCI_CONFIG_SPACE_SIZE } from '../../spec/pci.js';
import { auditedStatement, NOT_AUDITED_YET, notOffered } from '../audited-statement.js';
import { DRIVER_REQUIREMENTS as R } from '../../spec/driver-requirements.js';

const family = 'features';
const driver = driverStatements(family);

/** Bits in the transport range (24-40, 43) the spec describes nowhere (2.2, 6). */
const UNDESCRIBED_TRANSPORT_BITS = featureSet(25, 26, 31);
/** Bits reserved for future extensions (2.2: 44 to 49). */
const FUTURE_BITS = featureSet(44, 45, 46, 47, 48, 49);
/** Legacy-interface bits (6.3: NOTIFY_ON_EMPTY, ANY_LAYOUT, UNUSED 30): no modern driver accepts them. */
const LEGACY_ONLY_BITS = featureSet(VIRTIO_F_NOTIFY_ON_EMPTY, VIRTIO_F_ANY_LAYOUT, 30);
/** device_feature_select values past bit 127 a check reads (4.1.4.3: any select may be written). */
const HIGH_SELECTS = [4, 5, 6, 7];
/** PCI Express extended capabilities start here; SR-IOV's ID (PCIe base spec). */
const PCI_EXT_CAP_START = PCI_CONFIG_SPACE_SIZE;
const PCI_EXT_CAP_ID_SRIOV = 0x10;
const PCI_EXT_CAP_LIMIT = 64;

/**
 * The smallest set holding `feature` and what it requires (2.2.1): the first bit of each group it
 * lacks, followed through; each pass adds a bit of the table or stops, so the loop is bounded.
 */
function withRequirements(deviceType: number, feature: number): bigint {
  const requirements = deviceFeatureRequirements(deviceType);
  let set = bit(feature);
  for (let pass = 0; pass <= requirements.length; pass++) {
    const unmet = requirements.filter((r) => !requirementMet(set, r));
    if (unmet.length === 0) break;
    for (const r of unmet) for (const group of r.requires) if (!group.some((n) => hasFeature(set, n))) set |= bit(group[0]!);
  }
  return set;
}

/** An offer check: `bad` returns what is wrong with the offer, or undefined. */
function offerStatement(
  slug: string,
  section: string,
  level: Statement['level'],
  text: string,
  via: readonly ('modern' | 'legacy')[],
  bad: (ctx: CheckContext, opened: Opened) => Promise<string | undefined> | string | undefined,
): Statement {
  return {
    id: `${family}/${slug}`,
    section,
    level,
    side: 'device',
    family,
    text,
    check: {
      via,
      async run(ctx: CheckContext) {
        const opened = await openDevice(ctx);
        const wrong = await bad(ctx, opened);
        ctx.require(wrong === undefined, `offer 0x${opened.offered.toString(16)}: ${wrong}`);
      },
    },
  };
}

/** An acceptance check (modern: FEATURES_OK): `sets` lists feature sets the device should keep FEATURES_OK for. */
function acceptStatement(slug: string, text: string, sets: (ctx: CheckContext, opened: Opened) => bigint[]): Statement {
  return {
    id: `${family}/${slug}`,
    section: '2.2.2',
    level: 'SHOULD',
    side: 'device',
    family,
    text,
    check: {
      via: ['modern'],
      async run(ctx: CheckContext) {
        const first = await openDevice(ctx);
        for (const set of sets(ctx, first)) {
          const opened = await openDevice(ctx);
          const kept = await writeFeatures(opened, set);
          ctx.require(kept, `FEATURES_OK cleared for the valid subset 0x${set.toString(16)} of the offer 0x${opened.offered.toString(16)}`);
        }
      },
    },
  };
}

/** The offer without what a modern driver never accepts (legacy-only bits). */
function modernOffer(opened: Opened): bigint {
  return opened.offered & ~LEGACY_ONLY_BITS;
}

/** Whether the function has an SR-IOV extended capability; undefined when the bus cannot reach extended configuration space. */
async function hasSrIov(ctx: CheckContext): Promise<boolean | undefined> {
  let offset = PCI_EXT_CAP_START;
  for (let n = 0; n < PCI_EXT_CAP_LIMIT && offset >= PCI_EXT_CAP_START; n++) {
    let header: number;
    try {
      header = await ctx.bus.configRead(ctx.fn, offset, 4);
    } catch {
      return undefined;
    }
    if (header === 0 || header === 0xffff_ffff) return false;
    if ((header & 0xffff) === PCI_EXT_CAP_ID_SRIOV) return true;
    offset = (header >>> 20) & 0xffc;
  }
  return false;
}

/** Why the audit does not see a driver-side statement of this family: the driver's own reasoning. */
const DRIVER_OWN = 'what the driver checks or decides about the offer is its own reasoning: only the features it accepts reach the device';
/** ...or: breaking it means accepting a bit our devices never offer. */
const ONLY_OFFERED =
  'every bit our devices offer is defined, so accepting another is accepting a bit not offered: the audit records that as features/only-offered';

/** Family 'features' (see Family in ../statement.ts): 2.2 feature bits, 6 reserved feature bits. */
export const featuresStatements: readonly Statement[] = [
  offerStatement(
    'no-offer-without-requirement',
    '2.2.2',
    'MUST NOT',
    'A device offers no feature without the features it requires (5.1.3.1 for net).',
    ['modern', 'legacy'],
    (ctx, opened) => {
      const unmet = deviceFeatureRequirements(ctx.deviceType).filter((r) => !requirementMet(opened.offered, r));
      return unmet.length === 0 ? undefined : `offers bit(s) ${unmet.map((r) => r.feature).join(', ')} without what they require`;
    },
  ),
  offerStatement(
    'no-undescribed-transport-bits',
    '2.2.2',
    'MUST NOT',
    'A device offers none of the transport-range bits the spec does not describe (25, 26, 31).',
    ['modern', 'legacy'],
    (_ctx, opened) => {
      const found = opened.offered & UNDESCRIBED_TRANSPORT_BITS;
      return found === 0n ? undefined : `undescribed bit(s) ${featureBits(found).join(', ')}`;
    },
  ),
  offerStatement(
    'no-future-bits',
    '2.2.2',
    'MUST NOT',
    'A device offers none of the bits reserved for future extensions (44 to 49).',
    ['modern'],
    (_ctx, opened) => {
      const found = opened.offered & FUTURE_BITS;
      return found === 0n ? undefined : `reserved bit(s) ${featureBits(found).join(', ')}`;
    },
  ),
  offerStatement(
    'no-bits-beyond-127',
    '2.2.2',
    'MUST NOT',
    'A device offers no bit from 128 up (device_feature reads 0 for selects 4 to 7).',
    ['modern'],
    async (ctx) => {
      const cfg = await commonCfg(ctx);
      for (const select of HIGH_SELECTS) {
        await cfg.write(VIRTIO_PCI_COMMON_DFSELECT, 4, select);
        const word = await cfg.read(VIRTIO_PCI_COMMON_DF, 4);
        if (word !== 0) return `device_feature reads 0x${word.toString(16)} for select ${select}`;
      }
      return undefined;
    },
  ),
  offerStatement(
    'offers-version-1',
    '6.2',
    'MUST',
    'A device offers VIRTIO_F_VERSION_1 on the modern interface.',
    ['modern'],
    (_ctx, opened) => (hasFeature(opened.offered, VIRTIO_F_VERSION_1) ? undefined : 'VIRTIO_F_VERSION_1 (32) not offered'),
  ),
  offerStatement(
    'no-sr-iov-without-capability',
    '6.2',
    'MUST NOT',
    'A device offers VIRTIO_F_SR_IOV only with a PCI SR-IOV capability.',
    ['modern'],
    async (ctx, opened) => {
      if (!hasFeature(opened.offered, VIRTIO_F_SR_IOV)) return undefined;
      const present = await hasSrIov(ctx);
      if (present === undefined) ctx.note('VIRTIO_F_SR_IOV offered; the bus cannot reach extended configuration space to look for SR-IOV');
      return present === false ? 'VIRTIO_F_SR_IOV (37) offered, no SR-IOV extended capability' : undefined;
    },
  ),
  {
    id: `${family}/transitional-offers-any-layout`,
    section: '6.3',
    level: 'MUST',
    side: 'device',
    family,
    text: 'A transitional device offers VIRTIO_F_ANY_LAYOUT.',
    check: {
      via: ['legacy'],
      async applies(ctx: CheckContext) {
        return ctx.transitional ? undefined : 'not a transitional device';
      },
      async run(ctx: CheckContext) {
        const { offered } = await openDevice(ctx);
        ctx.require(hasFeature(offered, VIRTIO_F_ANY_LAYOUT), `offer 0x${offered.toString(16)} without VIRTIO_F_ANY_LAYOUT (27)`);
      },
    },
  },
  acceptStatement('accepts-minimal-set', 'A device keeps FEATURES_OK for VIRTIO_F_VERSION_1 alone.', (_ctx, opened) => [
    minimalFeatures(opened),
  ]),
  acceptStatement('accepts-whole-offer', 'A device keeps FEATURES_OK for everything it offers on the modern interface.', (_ctx, opened) => [
    modernOffer(opened),
  ]),
  acceptStatement(
    'accepts-each-feature',
    'A device keeps FEATURES_OK for each offered feature alone (with VERSION_1 and the features it requires).',
    (ctx, opened) =>
      featureBits(modernOffer(opened) & ~bit(VIRTIO_F_VERSION_1)).map(
        (f) => minimalFeatures(opened) | (withRequirements(ctx.deviceType, f) & opened.offered),
      ),
  ),
  {
    id: `${family}/renegotiates-after-reset`,
    section: '2.2.2',
    level: 'SHOULD NOT',
    side: 'device',
    family,
    text: 'A device that accepted a feature set does not refuse the same set after a reset.',
    check: {
      via: ['modern'],
      async run(ctx: CheckContext) {
        const first = await openDevice(ctx);
        const set = modernOffer(first);
        if (!(await writeFeatures(first, set))) {
          ctx.note(`FEATURES_OK refused the first time for 0x${set.toString(16)}: nothing to renegotiate`);
          return;
        }
        for (let round = 2; round <= 3; round++) {
          const again = await openDevice(ctx);
          ctx.require(
            await writeFeatures(again, set),
            `FEATURES_OK cleared for 0x${set.toString(16)} after reset ${round - 1}, accepted before`,
          );
        }
      },
    },
  },
  {
    id: `${family}/transitional-serves-legacy-driver`,
    section: '2.2.3',
    level: 'MUST',
    side: 'device',
    family,
    text: 'A transitional device takes a driver that does not acknowledge VERSION_1 as a legacy driver and serves it through the legacy interface.',
    check: {
      via: ['legacy'],
      async applies(ctx: CheckContext) {
        return ctx.transitional ? promptRequestUnsupported(ctx.deviceType) : 'not a transitional device';
      },
      async run(ctx: CheckContext) {
        const live = await goLive(ctx, 0n);
        const { head, usedIdx } = await serveOne(ctx, live);
        ctx.require(usedIdx === 1, `used idx ${usedIdx} within ${ctx.timeoutMs} ms of a legacy driver's request`);
        const element = await live.ring.usedElement(0);
        ctx.require(element.id === head, `used element id ${element.id}, the request's head is ${head}`);
      },
    },
  },
  {
    id: `${family}/refusal-clears-features-ok`,
    section: '2.2.2',
    level: 'MUST',
    side: 'device',
    family,
    text: "A device that does not accept the driver's feature subset leaves FEATURES_OK clear when the driver sets it.",
    uncheckable:
      'which subsets a device refuses is its own choice: FEATURES_OK reading 0 is the only sign of a refusal, so a refusal that sets it cannot be told from an acceptance',
  },
  {
    id: `${family}/no-offer-unsupported`,
    section: '2.2.2',
    level: 'MUST NOT',
    side: 'device',
    family,
    text: 'A device offers no feature it could not support if accepted.',
    uncheckable:
      "whether the device supports a feature it offers is the sum of that feature's own statements; the undescribed and reserved bits are checked apart",
  },
  {
    id: `${family}/access-platform-when-translated`,
    section: '6.2',
    level: 'SHOULD',
    side: 'device',
    family,
    text: 'A device whose memory access is translated or limited by the platform offers VIRTIO_F_ACCESS_PLATFORM.',
    uncheckable: "how the platform routes the device's memory accesses (an IOMMU) is not visible through the device's registers",
  },
  {
    id: `${family}/sr-iov-offered-with-capability`,
    section: '6.2',
    level: 'SHOULD',
    side: 'device',
    family,
    text: 'A PCI device with an SR-IOV capability offers VIRTIO_F_SR_IOV.',
    uncheckable: 'SR-IOV is an extended capability: the qtest and in-process buses reach only the first 256 bytes of configuration space',
  },
  auditedStatement(family, R.featuresOnlyOffered),
  auditedStatement(family, R.featuresDependencies),
  auditedStatement(family, R.featuresVersion1),
  ...(
    [
      ['validates-offer', '2.2.1', 'MUST', 'The driver validates the feature bits the device offers.', DRIVER_OWN],
      [
        'ignores-undefined-bits',
        '2.2.1',
        'MUST NOT',
        'The driver accepts no undescribed, reserved, transport-unsupported or type-undefined bit.',
        ONLY_OFFERED,
      ],
      [
        'compatible-or-failed',
        '2.2.1',
        'SHOULD',
        'A driver missing a feature it understands falls back, or sets FAILED and stops.',
        DRIVER_OWN,
      ],
      [
        'no-failure-for-unknown',
        '2.2.1',
        'MUST NOT',
        'The driver does not fail only because the device offers a feature it does not know.',
        DRIVER_OWN,
      ],
      [
        'detects-legacy-device',
        '2.2.3',
        'MUST',
        'A transitional driver takes a device without VERSION_1 as a legacy device.',
        'only the legacy interface of our devices lacks VERSION_1, and a driver using it is audited as pci-legacy/one-interface; how it regards the device is its own state',
      ],
      [
        'accepts-access-platform',
        '6.1',
        'SHOULD',
        'The driver accepts VIRTIO_F_ACCESS_PLATFORM when offered.',
        notOffered('VIRTIO_F_ACCESS_PLATFORM'),
      ],
      ['accepts-ring-packed', '6.1', 'SHOULD', 'The driver accepts VIRTIO_F_RING_PACKED when offered.', NOT_AUDITED_YET],
      [
        'accepts-order-platform',
        '6.1',
        'SHOULD',
        'The driver accepts VIRTIO_F_ORDER_PLATFORM when offered.',
        notOffered('VIRTIO_F_ORDER_PLATFORM'),
      ],
      [
        'sr-iov-needs-capability',
        '6.1',
        'MUST NOT',
        'The driver does not negotiate VIRTIO_F_SR_IOV without an SR-IOV capability on a PCI device.',
        ONLY_OFFERED,
      ],
      [
        'sr-iov-before-vfs',
        '6.1',
        'MUST',
        'The driver negotiates VIRTIO_F_SR_IOV and checks FEATURES_OK before enabling virtual functions.',
        notOffered('VIRTIO_F_SR_IOV'),
      ],
      ['accepts-notif-config-data', '6.1', 'SHOULD', 'The driver accepts VIRTIO_F_NOTIF_CONFIG_DATA when offered.', NOT_AUDITED_YET],
      ['accepts-any-layout', '6.3', 'MUST', 'A transitional driver accepts VIRTIO_F_ANY_LAYOUT when offered.', NOT_AUDITED_YET],
      ['no-unused-bit-30', '6.3', 'SHOULD NOT', 'A driver does not negotiate bit 30 (UNUSED).', ONLY_OFFERED],
    ] as const
  ).map(([slug, section, level, text, uncheckable]) => driver(slug, section, level, text, uncheckable)),
  ...(
    [
      ['driver-iommu-setup', 'A driver that accepted VIRTIO_F_ACCESS_PLATFORM disables or programs the IOMMU for the device.', 'MUST'],
      ['driver-physical-addresses', 'Without VIRTIO_F_ACCESS_PLATFORM the driver passes physical addresses only.', 'MUST'],
      ['driver-hardware-barriers', 'With VIRTIO_F_ORDER_PLATFORM the driver uses barriers for hardware devices.', 'MUST'],
    ] as const
  ).map(([slug, text, level]): Statement => ({
    id: `${family}/${slug}`,
    section: '6.1',
    level,
    side: 'driver',
    family,
    text,
    uncheckable: 'the platform (IOMMU, CPU barriers) is outside what a device model sees of the driver',
  })),
];
