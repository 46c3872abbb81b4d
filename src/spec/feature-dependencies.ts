/**
 * Feature bits that require others (2.2: a device MUST NOT offer, a driver MUST NOT accept, a
 * feature without the features it requires). Only the net device's section lists such
 * requirements (5.1.3.1); each entry is satisfied when every bit of one of its alternatives is
 * present ("requires A or B" is two alternatives).
 */

import { VIRTIO_ID_NET } from './ids.js';
import {
  VIRTIO_NET_F_CSUM,
  VIRTIO_NET_F_CTRL_MAC_ADDR,
  VIRTIO_NET_F_CTRL_RX,
  VIRTIO_NET_F_CTRL_VLAN,
  VIRTIO_NET_F_CTRL_VQ,
  VIRTIO_NET_F_GUEST_ANNOUNCE,
  VIRTIO_NET_F_GUEST_CSUM,
  VIRTIO_NET_F_GUEST_ECN,
  VIRTIO_NET_F_GUEST_TSO4,
  VIRTIO_NET_F_GUEST_TSO6,
  VIRTIO_NET_F_GUEST_UFO,
  VIRTIO_NET_F_HASH_REPORT,
  VIRTIO_NET_F_HOST_ECN,
  VIRTIO_NET_F_HOST_TSO4,
  VIRTIO_NET_F_HOST_TSO6,
  VIRTIO_NET_F_HOST_UFO,
  VIRTIO_NET_F_HOST_USO,
  VIRTIO_NET_F_MQ,
  VIRTIO_NET_F_RSC_EXT,
  VIRTIO_NET_F_RSS,
} from './net.js';
import { featureSet } from './features.js';

// 5.1.3: net feature bits the requirements name that nothing else in virtio-ts uses yet.
export const VIRTIO_NET_F_HASH_TUNNEL = 51;
export const VIRTIO_NET_F_VQ_NOTF_COAL = 52;
export const VIRTIO_NET_F_NOTF_COAL = 53;
export const VIRTIO_NET_F_GUEST_USO4 = 54;
export const VIRTIO_NET_F_GUEST_USO6 = 55;
export const VIRTIO_NET_F_RSS_CONTEXT = 64;
export const VIRTIO_NET_F_GUEST_UDP_TUNNEL_GSO = 65;
export const VIRTIO_NET_F_GUEST_UDP_TUNNEL_GSO_CSUM = 66;
export const VIRTIO_NET_F_HOST_UDP_TUNNEL_GSO = 67;
export const VIRTIO_NET_F_HOST_UDP_TUNNEL_GSO_CSUM = 68;

/** One requirement: `feature` needs every bit of at least one of `alternatives`. */
export interface FeatureRequirement {
  readonly feature: number;
  readonly alternatives: readonly bigint[];
}

const needs = (feature: number, ...alternatives: (readonly number[])[]): FeatureRequirement => ({
  feature,
  alternatives: alternatives.map((bits) => featureSet(...bits)),
});

/** 5.1.3.1 Feature bit requirements, in the spec's order. */
const NET_REQUIREMENTS: readonly FeatureRequirement[] = [
  needs(VIRTIO_NET_F_GUEST_TSO4, [VIRTIO_NET_F_GUEST_CSUM]),
  needs(VIRTIO_NET_F_GUEST_TSO6, [VIRTIO_NET_F_GUEST_CSUM]),
  needs(VIRTIO_NET_F_GUEST_ECN, [VIRTIO_NET_F_GUEST_TSO4], [VIRTIO_NET_F_GUEST_TSO6]),
  needs(VIRTIO_NET_F_GUEST_UFO, [VIRTIO_NET_F_GUEST_CSUM]),
  needs(VIRTIO_NET_F_GUEST_USO4, [VIRTIO_NET_F_GUEST_CSUM]),
  needs(VIRTIO_NET_F_GUEST_USO6, [VIRTIO_NET_F_GUEST_CSUM]),
  needs(VIRTIO_NET_F_GUEST_UDP_TUNNEL_GSO, [
    VIRTIO_NET_F_GUEST_TSO4,
    VIRTIO_NET_F_GUEST_TSO6,
    VIRTIO_NET_F_GUEST_USO4,
    VIRTIO_NET_F_GUEST_USO6,
  ]),
  needs(VIRTIO_NET_F_GUEST_UDP_TUNNEL_GSO_CSUM, [VIRTIO_NET_F_GUEST_UDP_TUNNEL_GSO]),
  needs(VIRTIO_NET_F_HOST_TSO4, [VIRTIO_NET_F_CSUM]),
  needs(VIRTIO_NET_F_HOST_TSO6, [VIRTIO_NET_F_CSUM]),
  needs(VIRTIO_NET_F_HOST_ECN, [VIRTIO_NET_F_HOST_TSO4], [VIRTIO_NET_F_HOST_TSO6]),
  needs(VIRTIO_NET_F_HOST_UFO, [VIRTIO_NET_F_CSUM]),
  needs(VIRTIO_NET_F_HOST_USO, [VIRTIO_NET_F_CSUM]),
  needs(VIRTIO_NET_F_HOST_UDP_TUNNEL_GSO, [VIRTIO_NET_F_HOST_TSO4, VIRTIO_NET_F_HOST_TSO6, VIRTIO_NET_F_HOST_USO]),
  needs(VIRTIO_NET_F_HOST_UDP_TUNNEL_GSO_CSUM, [VIRTIO_NET_F_HOST_UDP_TUNNEL_GSO]),
  needs(VIRTIO_NET_F_CTRL_RX, [VIRTIO_NET_F_CTRL_VQ]),
  needs(VIRTIO_NET_F_CTRL_VLAN, [VIRTIO_NET_F_CTRL_VQ]),
  needs(VIRTIO_NET_F_GUEST_ANNOUNCE, [VIRTIO_NET_F_CTRL_VQ]),
  needs(VIRTIO_NET_F_MQ, [VIRTIO_NET_F_CTRL_VQ]),
  needs(VIRTIO_NET_F_CTRL_MAC_ADDR, [VIRTIO_NET_F_CTRL_VQ]),
  needs(VIRTIO_NET_F_NOTF_COAL, [VIRTIO_NET_F_CTRL_VQ]),
  needs(VIRTIO_NET_F_RSC_EXT, [VIRTIO_NET_F_HOST_TSO4], [VIRTIO_NET_F_HOST_TSO6]),
  needs(VIRTIO_NET_F_RSS, [VIRTIO_NET_F_CTRL_VQ]),
  needs(VIRTIO_NET_F_VQ_NOTF_COAL, [VIRTIO_NET_F_CTRL_VQ]),
  needs(VIRTIO_NET_F_HASH_TUNNEL, [VIRTIO_NET_F_CTRL_VQ, VIRTIO_NET_F_RSS], [VIRTIO_NET_F_CTRL_VQ, VIRTIO_NET_F_HASH_REPORT]),
  needs(VIRTIO_NET_F_RSS_CONTEXT, [VIRTIO_NET_F_CTRL_VQ, VIRTIO_NET_F_RSS]),
];

/** The requirements among the feature bits of device type `deviceType` (none for the types whose sections list none). */
export function featureRequirements(deviceType: number): readonly FeatureRequirement[] {
  return deviceType === VIRTIO_ID_NET ? NET_REQUIREMENTS : [];
}

/** The requirements of `deviceType` that `features` breaks: a feature present without any of its alternatives. */
export function unmetRequirements(deviceType: number, features: bigint): FeatureRequirement[] {
  return featureRequirements(deviceType).filter(
    (r) => ((features >> BigInt(r.feature)) & 1n) === 1n && !r.alternatives.some((alt) => (features & alt) === alt),
  );
}

/**
 * The smallest set holding `feature` and what it requires (the first alternative of each
 * requirement, followed through), for accepting one feature alone.
 */
export function withRequirements(deviceType: number, feature: number): bigint {
  let set = 1n << BigInt(feature);
  for (let pass = 0; pass < 8; pass++) {
    const unmet = unmetRequirements(deviceType, set);
    if (unmet.length === 0) break;
    for (const r of unmet) set |= r.alternatives[0]!;
  }
  return set;
}
