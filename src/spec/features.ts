/**
 * Reserved (transport/ring) feature bits, spec 6 "Reserved Feature Bits", and the legacy ones
 * (spec 6.3). Device-specific bits live beside each device's spec module. Bits are numbers; feature
 * sets are bigint so that bits above 63 (feature select windows) work.
 */

export const VIRTIO_F_NOTIFY_ON_EMPTY = 24; // legacy only
export const VIRTIO_F_ANY_LAYOUT = 27; // legacy only
export const VIRTIO_F_INDIRECT_DESC = 28;
export const VIRTIO_F_EVENT_IDX = 29;
export const VIRTIO_F_VERSION_1 = 32;
export const VIRTIO_F_ACCESS_PLATFORM = 33;
export const VIRTIO_F_RING_PACKED = 34;
export const VIRTIO_F_IN_ORDER = 35;
export const VIRTIO_F_ORDER_PLATFORM = 36;
export const VIRTIO_F_SR_IOV = 37;
export const VIRTIO_F_NOTIFICATION_DATA = 38;
export const VIRTIO_F_NOTIF_CONFIG_DATA = 39;
export const VIRTIO_F_RING_RESET = 40;
export const VIRTIO_F_ADMIN_VQ = 41;
/** 1.4: the driver may suspend the device through the SUSPEND status bit (3.4 Device Suspend). */
export const VIRTIO_F_SUSPEND = 43;

/** Spec 6: bits 24..41 are reserved for the transport and ring; device types use 0..23 and 50..127. */
export const VIRTIO_TRANSPORT_F_START = 24;
export const VIRTIO_TRANSPORT_F_END = 41;

export const TRANSPORT_FEATURE_NAMES: ReadonlyMap<number, string> = new Map([
  [VIRTIO_F_NOTIFY_ON_EMPTY, 'NOTIFY_ON_EMPTY'],
  [VIRTIO_F_ANY_LAYOUT, 'ANY_LAYOUT'],
  [VIRTIO_F_INDIRECT_DESC, 'INDIRECT_DESC'],
  [VIRTIO_F_EVENT_IDX, 'EVENT_IDX'],
  [VIRTIO_F_VERSION_1, 'VERSION_1'],
  [VIRTIO_F_ACCESS_PLATFORM, 'ACCESS_PLATFORM'],
  [VIRTIO_F_RING_PACKED, 'RING_PACKED'],
  [VIRTIO_F_IN_ORDER, 'IN_ORDER'],
  [VIRTIO_F_ORDER_PLATFORM, 'ORDER_PLATFORM'],
  [VIRTIO_F_SR_IOV, 'SR_IOV'],
  [VIRTIO_F_NOTIFICATION_DATA, 'NOTIFICATION_DATA'],
  [VIRTIO_F_NOTIF_CONFIG_DATA, 'NOTIF_CONFIG_DATA'],
  [VIRTIO_F_RING_RESET, 'RING_RESET'],
  [VIRTIO_F_ADMIN_VQ, 'ADMIN_VQ'],
  [VIRTIO_F_SUSPEND, 'SUSPEND'],
]);

/** The feature set with exactly this bit. */
export function bit(n: number): bigint {
  return 1n << BigInt(n);
}

/** A feature set made of these bits. */
export function featureSet(...bits: number[]): bigint {
  let set = 0n;
  for (const n of bits) set |= bit(n);
  return set;
}

/** Whether the set has this bit. */
export function hasFeature(set: bigint, n: number): boolean {
  return ((set >> BigInt(n)) & 1n) === 1n;
}

/** The bit numbers in a feature set, ascending. */
export function featureBits(set: bigint): number[] {
  const bits: number[] = [];
  for (let n = 0; set >> BigInt(n) !== 0n; n++) if (hasFeature(set, n)) bits.push(n);
  return bits;
}

/** The 32-bit word `select` of a feature set (feature select windows, spec 4.1.4.3). */
export function featureWord(set: bigint, select: number): number {
  return Number((set >> BigInt(32 * select)) & 0xffff_ffffn);
}

/** The set with 32-bit word `select` replaced by `value`. */
export function withFeatureWord(set: bigint, select: number, value: number): bigint {
  const shift = BigInt(32 * select);
  return (set & ~(0xffff_ffffn << shift)) | (BigInt(value >>> 0) << shift);
}

/** "VERSION_1 EVENT_IDX 5 ..." using device-specific names where given. */
export function decodeFeatures(set: bigint, deviceNames: ReadonlyMap<number, string> = new Map()): string {
  return featureBits(set)
    .map((n) => deviceNames.get(n) ?? TRANSPORT_FEATURE_NAMES.get(n) ?? `bit${n}`)
    .join(' ');
}

/**
 * One feature and what it requires (2.2.1): every group of `requires` needs at least one of its
 * bits ("requires A and B" is two groups of one, "requires A or B" one group of two).
 */
export interface FeatureRequirement {
  readonly feature: number;
  readonly requires: readonly (readonly number[])[];
}

/** Whether `set` holds what `requirement` asks of its feature (true when the set lacks the feature). */
export function requirementMet(set: bigint, requirement: FeatureRequirement): boolean {
  return !hasFeature(set, requirement.feature) || requirement.requires.every((group) => group.some((n) => hasFeature(set, n)));
}

/**
 * `set` without every feature whose requirements it does not meet, repeated until nothing changes
 * (dropping one feature can break another's requirement). Each pass drops at least one feature of
 * the table or stops, so at most `requirements.length + 1` passes run.
 */
export function withoutUnmetRequirements(set: bigint, requirements: readonly FeatureRequirement[]): bigint {
  for (let pass = 0; pass <= requirements.length; pass++) {
    const unmet = requirements.filter((r) => !requirementMet(set, r));
    if (unmet.length === 0) break;
    for (const r of unmet) set &= ~bit(r.feature);
  }
  return set;
}
