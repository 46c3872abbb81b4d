/**
 * Feature dependencies per device type (spec 2.2.1: the driver MUST NOT accept a feature which
 * requires another feature which was not accepted; the device MUST NOT offer one). Each device
 * type's table lives in its spec module (net: 5.1.3.1); the reserved bits (6) have none, and neither
 * do blk, console and entropy.
 */

import type { FeatureRequirement } from './features.js';
import { VIRTIO_ID_NET } from './ids.js';
import { VIRTIO_NET_FEATURE_REQUIREMENTS } from './net.js';

const DEVICE_FEATURE_REQUIREMENTS: ReadonlyMap<number, readonly FeatureRequirement[]> = new Map([
  [VIRTIO_ID_NET, VIRTIO_NET_FEATURE_REQUIREMENTS],
]);

/** The feature requirements of a device of `deviceType` (none for a type without a table). */
export function deviceFeatureRequirements(deviceType: number): readonly FeatureRequirement[] {
  return DEVICE_FEATURE_REQUIREMENTS.get(deviceType) ?? [];
}
