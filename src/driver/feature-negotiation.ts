/**
 * Feature negotiation (2.2, 3.1.1 steps 4-6), the driver's side, in one place: which of the
 * features a device offers the driver accepts, from what a device driver wants and requires, the
 * interface the probe chose and the ring format asked for. Writing them and FEATURES_OK is the
 * driver core's (virtio-driver.ts); the device's side is core/feature-negotiation.ts.
 */

import { DeviceFaultError } from '../errors.js';
import type { RingFormat } from '../queue/ring-format.js';
import {
  featureSet,
  hasFeature,
  VIRTIO_F_ADMIN_VQ,
  VIRTIO_F_ANY_LAYOUT,
  VIRTIO_F_EVENT_IDX,
  VIRTIO_F_IN_ORDER,
  VIRTIO_F_INDIRECT_DESC,
  VIRTIO_F_NOTIFICATION_DATA,
  VIRTIO_F_NOTIF_CONFIG_DATA,
  VIRTIO_F_RING_PACKED,
  VIRTIO_F_RING_RESET,
  VIRTIO_F_SUSPEND,
  VIRTIO_F_VERSION_1,
  VIRTIO_TRANSPORT_F_END,
  VIRTIO_TRANSPORT_F_START,
  withoutUnmetRequirements,
} from '../spec/features.js';
import { deviceFeatureRequirements } from '../spec/feature-requirements.js';

/**
 * Transport and ring features this core implements; device drivers add their device-specific bits.
 * VIRTIO_F_RING_PACKED is accepted or not by the {@link VirtioDriverOptions.ring} option alone.
 */
export const DRIVER_CORE_FEATURES: bigint = featureSet(
  VIRTIO_F_VERSION_1,
  VIRTIO_F_INDIRECT_DESC,
  VIRTIO_F_EVENT_IDX,
  VIRTIO_F_NOTIFICATION_DATA,
  VIRTIO_F_NOTIF_CONFIG_DATA,
  VIRTIO_F_RING_RESET,
  VIRTIO_F_RING_PACKED,
  VIRTIO_F_IN_ORDER,
  VIRTIO_F_ADMIN_VQ,
  VIRTIO_F_SUSPEND,
);

/**
 * Accepted on the modern interface whenever offered, whatever a device driver asks for: VERSION_1
 * (a MUST, 6), NOTIF_CONFIG_DATA (a SHOULD, 6), and the three that change nothing for a device
 * driver: notification data is written by the transport, and a queue reset or a suspension
 * happens only when asked for.
 */
const MODERN_ACCEPTED = featureSet(
  VIRTIO_F_VERSION_1,
  VIRTIO_F_NOTIFICATION_DATA,
  VIRTIO_F_NOTIF_CONFIG_DATA,
  VIRTIO_F_RING_RESET,
  VIRTIO_F_SUSPEND,
);

/**
 * Accepted on the legacy interface whenever offered: VIRTIO_F_ANY_LAYOUT (6.3: a MUST for a
 * transitional driver). Device drivers learn from {@link VirtioDriver.features} whether they may
 * frame freely or must follow their device's legacy framing rules (e.g. net's 5.1.9.8).
 */
const LEGACY_ACCEPTED = featureSet(VIRTIO_F_ANY_LAYOUT);

const RING_PACKED = featureSet(VIRTIO_F_RING_PACKED);

/**
 * Which virtqueue format the driver takes: 'auto' the packed ring (2.8) when the device offers it,
 * as Linux does, else the split ring (2.7); 'split' never the packed ring; 'packed' the packed ring
 * or an error (a device that does not offer it, or the legacy interface, which cannot carry it).
 */
export type RingChoice = 'auto' | RingFormat['name'];

/** Every bit in the transport range (spec 6: 24..41): only those in DRIVER_CORE_FEATURES may be accepted. */
const TRANSPORT_FEATURE_MASK = ((1n << BigInt(VIRTIO_TRANSPORT_F_END + 1)) - 1n) & ~((1n << BigInt(VIRTIO_TRANSPORT_F_START)) - 1n);

/** What a negotiation starts from. */
export interface FeatureOffer {
  /** Virtio device type (spec 5): its feature dependencies (2.2.1) apply. */
  readonly deviceType: number;
  /** Every feature bit the device offers. */
  readonly offered: bigint;
  /** Whether the driver uses the modern interface (else the legacy one). */
  readonly modern: boolean;
  readonly ring: RingChoice;
}

/**
 * The features to accept of `offer` among `wanted` (see VirtioDriver.negotiate), or the
 * DeviceFaultError ERR_DEVICE_FEATURES that ends the negotiation: a modern device without
 * VERSION_1, the packed ring asked for and not offered, a `required` bit not offered.
 */
export function acceptedFeatures(offer: FeatureOffer, wanted: bigint, required: bigint): bigint | DeviceFaultError {
  const modern = offer.modern;
  if (modern && !hasFeature(offer.offered, VIRTIO_F_VERSION_1))
    return new DeviceFaultError('ERR_DEVICE_FEATURES', 'device on the modern interface does not offer VERSION_1');
  let accept = (wanted & ~TRANSPORT_FEATURE_MASK) | (wanted & DRIVER_CORE_FEATURES);
  accept = offer.ring === 'split' ? accept & ~RING_PACKED : accept | RING_PACKED;
  accept = modern ? accept | MODERN_ACCEPTED : (accept & 0xffff_ffffn & ~featureSet(VIRTIO_F_VERSION_1)) | LEGACY_ACCEPTED;
  const accepted = withoutUnmetRequirements(offer.offered & accept, deviceFeatureRequirements(offer.deviceType));
  if (offer.ring === 'packed' && !hasFeature(accepted, VIRTIO_F_RING_PACKED))
    return new DeviceFaultError(
      'ERR_DEVICE_FEATURES',
      modern
        ? 'ring packed: the device does not offer VIRTIO_F_RING_PACKED'
        : 'ring packed: the legacy interface cannot negotiate VIRTIO_F_RING_PACKED',
    );
  const missing = required & ~accepted;
  if (missing !== 0n)
    return new DeviceFaultError(
      'ERR_DEVICE_FEATURES',
      `required features not offered, or offered without the features they require: 0x${missing.toString(16)}`,
    );
  return accepted;
}
