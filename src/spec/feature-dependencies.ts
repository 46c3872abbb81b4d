/**
 * Feature dependencies (2.2.1: a driver does not accept a feature without the features it
 * requires), per device type, for the features this implementation names. The network device's
 * list is 5.1.3.1; the other device types this project has define none.
 */

import { VIRTIO_ID_NET } from './ids.js';
import {
  VIRTIO_NET_F_CSUM,
  VIRTIO_NET_F_CTRL_MAC_ADDR,
  VIRTIO_NET_F_CTRL_RX,
  VIRTIO_NET_F_CTRL_RX_EXTRA,
  VIRTIO_NET_F_CTRL_VLAN,
  VIRTIO_NET_F_CTRL_VQ,
  VIRTIO_NET_F_GUEST_ANNOUNCE,
  VIRTIO_NET_F_GUEST_CSUM,
  VIRTIO_NET_F_GUEST_ECN,
  VIRTIO_NET_F_GUEST_TSO4,
  VIRTIO_NET_F_GUEST_TSO6,
  VIRTIO_NET_F_GUEST_UFO,
  VIRTIO_NET_F_HOST_ECN,
  VIRTIO_NET_F_HOST_TSO4,
  VIRTIO_NET_F_HOST_TSO6,
  VIRTIO_NET_F_HOST_UFO,
  VIRTIO_NET_F_HOST_USO,
  VIRTIO_NET_F_MQ,
  VIRTIO_NET_F_RSC_EXT,
  VIRTIO_NET_F_RSS,
} from './net.js';
import { bit, featureBits } from './features.js';

/** `feature` requires at least one of `anyOf` (most have exactly one). */
export interface FeatureDependency {
  readonly feature: number;
  readonly anyOf: readonly number[];
}

const dep = (feature: number, ...anyOf: number[]): FeatureDependency => ({ feature, anyOf });

/** 5.1.3.1, the entries for the features src/spec/net.ts names. */
const NET_DEPENDENCIES: readonly FeatureDependency[] = [
  dep(VIRTIO_NET_F_GUEST_TSO4, VIRTIO_NET_F_GUEST_CSUM),
  dep(VIRTIO_NET_F_GUEST_TSO6, VIRTIO_NET_F_GUEST_CSUM),
  dep(VIRTIO_NET_F_GUEST_ECN, VIRTIO_NET_F_GUEST_TSO4, VIRTIO_NET_F_GUEST_TSO6),
  dep(VIRTIO_NET_F_GUEST_UFO, VIRTIO_NET_F_GUEST_CSUM),
  dep(VIRTIO_NET_F_HOST_TSO4, VIRTIO_NET_F_CSUM),
  dep(VIRTIO_NET_F_HOST_TSO6, VIRTIO_NET_F_CSUM),
  dep(VIRTIO_NET_F_HOST_ECN, VIRTIO_NET_F_HOST_TSO4, VIRTIO_NET_F_HOST_TSO6),
  dep(VIRTIO_NET_F_HOST_UFO, VIRTIO_NET_F_CSUM),
  dep(VIRTIO_NET_F_HOST_USO, VIRTIO_NET_F_CSUM),
  dep(VIRTIO_NET_F_CTRL_RX, VIRTIO_NET_F_CTRL_VQ),
  dep(VIRTIO_NET_F_CTRL_VLAN, VIRTIO_NET_F_CTRL_VQ),
  dep(VIRTIO_NET_F_GUEST_ANNOUNCE, VIRTIO_NET_F_CTRL_VQ),
  dep(VIRTIO_NET_F_MQ, VIRTIO_NET_F_CTRL_VQ),
  dep(VIRTIO_NET_F_CTRL_MAC_ADDR, VIRTIO_NET_F_CTRL_VQ),
  dep(VIRTIO_NET_F_RSC_EXT, VIRTIO_NET_F_HOST_TSO4, VIRTIO_NET_F_HOST_TSO6),
  dep(VIRTIO_NET_F_RSS, VIRTIO_NET_F_CTRL_VQ),
  // Not in the 5.1.3.1 list, but 5.1.4.2 has the driver not negotiate it without CTRL_VQ.
  dep(VIRTIO_NET_F_CTRL_RX_EXTRA, VIRTIO_NET_F_CTRL_VQ),
];

/** The feature dependencies of a device type (none for types without a list). */
export function featureDependencies(deviceType: number): readonly FeatureDependency[] {
  return deviceType === VIRTIO_ID_NET ? NET_DEPENDENCIES : [];
}

/** The dependencies `features` breaks: each feature in the set none of whose requirements is in it. */
export function brokenDependencies(deviceType: number, features: bigint): FeatureDependency[] {
  return featureDependencies(deviceType).filter(
    (d) => (features & bit(d.feature)) !== 0n && d.anyOf.every((n) => (features & bit(n)) === 0n),
  );
}

/** Bits of `features`, for messages ("18 20"). */
export function featureList(features: bigint): string {
  return featureBits(features).join(' ');
}
