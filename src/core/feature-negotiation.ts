/**
 * Feature negotiation (2.2), the device's side, in one place: what the device offers through the
 * current interface, what the driver has accepted so far, and whether FEATURES_OK may be set for it
 * (2.2.2). When the driver may write its features (not after FEATURES_OK) is the status machine's,
 * in the device core.
 */

import type { VirtioDevice } from './virtio-device.js';
import type { InterfaceRules } from './interface-rules.js';
import { DRIVER_REQUIREMENTS as R, type DriverAuditSink } from '../spec/driver-requirements.js';
import { deviceFeatureRequirements } from '../spec/feature-requirements.js';
import {
  VIRTIO_F_EVENT_IDX,
  VIRTIO_F_IN_ORDER,
  VIRTIO_F_INDIRECT_DESC,
  VIRTIO_F_VERSION_1,
  bit,
  featureBits,
  featureSet,
  featureWord,
  hasFeature,
  requirementMet,
} from '../spec/features.js';

/**
 * Transport and ring features this implementation supports; offered on top of the device's.
 * VIRTIO_F_RING_RESET is added for devices that implement the queue reset hooks, and
 * VIRTIO_F_RING_PACKED when the device is made with `packed: true` ({@link DeviceCoreOptions}).
 * VIRTIO_F_IN_ORDER is safe for every device model: the queues rings.ts builds for it hold
 * completions back until they are in order (queue/in-order-queue.ts). Bit 35 is beyond the legacy
 * interface's 32 feature bits, so only a modern driver sees it.
 */
export const TRANSPORT_FEATURES = featureSet(VIRTIO_F_VERSION_1, VIRTIO_F_INDIRECT_DESC, VIRTIO_F_EVENT_IDX, VIRTIO_F_IN_ORDER);

/** Feature words a driver can select (bits 0..127: every bit the spec defines). Higher selects read 0. */
export const FEATURE_WORDS = 4;

/** See the file comment. */
export class FeatureNegotiation {
  /** Features offered through the current interface only (see {@link InterfaceRules.interfaceFeatures}). */
  private interfaceFeatures = 0n;
  private requiredFeatures = 0n;
  /** The features the driver has written (2.2); the negotiated ones once FEATURES_OK is set. */
  driver = 0n;

  /** `common`: the features offered through every interface, the device's plus the transport's. */
  constructor(private readonly common: bigint) {}

  /** Take the features part of an interface's rules (see DeviceCore.useRules). */
  useRules(rules: InterfaceRules): void {
    this.requiredFeatures = rules.requiredFeatures ?? bit(VIRTIO_F_VERSION_1);
    this.interfaceFeatures = rules.interfaceFeatures ?? 0n;
  }

  /** Features offered: the device's, the transport's and the current interface's. */
  get offered(): bigint {
    return this.common | this.interfaceFeatures;
  }

  /** Features offered under the interface `rules` (a snapshot's, before the core takes them). */
  offeredUnder(rules: InterfaceRules): bigint {
    return this.common | (rules.interfaceFeatures ?? 0n);
  }

  /** 32-bit word `select` of the offered features (0 beyond {@link FEATURE_WORDS}). */
  deviceWord(select: number): number {
    return select >= 0 && select < FEATURE_WORDS ? featureWord(this.offered, select) : 0;
  }
  driverWord(select: number): number {
    return select >= 0 && select < FEATURE_WORDS ? featureWord(this.driver, select) : 0;
  }

  /** 2.2.2: FEATURES_OK only for a subset of the offer with the required bits, that `device` accepts. */
  acceptable(device: VirtioDevice): boolean {
    const f = this.driver;
    if ((f & ~this.offered) !== 0n || (f & this.requiredFeatures) !== this.requiredFeatures) return false;
    try {
      return device.acceptFeatures?.(f) ?? true;
    } catch {
      return false;
    }
  }

  /**
   * Audit: the accepted features against the offer and their dependencies (2.2.1, 6.1);
   * VIRTIO_F_VERSION_1 only on an interface with FEATURES_OK (`featuresOkStep`).
   */
  audit(audit: DriverAuditSink, deviceType: number, featuresOkStep: boolean): void {
    const f = this.driver;
    const unoffered = f & ~this.offered;
    if (unoffered !== 0n) audit(R.featuresOnlyOffered, `accepted feature bits ${featureBits(unoffered).join(' ')} that were not offered`);
    for (const r of deviceFeatureRequirements(deviceType))
      if (!requirementMet(f, r))
        audit(
          R.featuresDependencies,
          `accepted feature ${r.feature} without ${r.requires.map((group) => group.join(' or ')).join(' and ')}`,
        );
    if (hasFeature(this.offered, VIRTIO_F_VERSION_1) && !hasFeature(f, VIRTIO_F_VERSION_1) && featuresOkStep)
      audit(R.featuresVersion1, `FEATURES_OK with VIRTIO_F_VERSION_1 offered but not accepted`);
  }
}
