/**
 * The driver's reading of struct virtio_admin_cmd_legacy_notify_info_result (2.12.1.1, driver
 * requirements): entries up to the first with flags 0 count, the rest are ignored; each counting
 * entry is validated (flags 1 or 2, a BAR the device really has, an offset 2-byte aligned with the
 * le16 inside that BAR) and one that fails is ignored with its reason, as the spec asks. The owner's
 * BARs are known from the probe; a member's BARs are not (members are not on the driver's bus), so
 * member entries are ignored with that reason. A result with no terminator breaks the device's
 * MUST and is refused whole; a result with no usable entry is an error too, since the caller asked
 * for an address and has none. Both are AdminCommandError ERR_ADMIN_RESULT.
 */

import { AdminCommandError } from '../../errors.js';
import type { PciBar } from '../../bus/bars.js';
import {
  VIRTIO_ADMIN_LEGACY_NOTIFY_INFO_BAR,
  VIRTIO_ADMIN_LEGACY_NOTIFY_INFO_ENTRIES,
  VIRTIO_ADMIN_LEGACY_NOTIFY_INFO_FLAGS,
  VIRTIO_ADMIN_LEGACY_NOTIFY_INFO_FLAGS_END,
  VIRTIO_ADMIN_LEGACY_NOTIFY_INFO_FLAGS_MEMBER_DEV,
  VIRTIO_ADMIN_LEGACY_NOTIFY_INFO_FLAGS_OWNER_DEV,
  VIRTIO_ADMIN_LEGACY_NOTIFY_INFO_OFFSET,
  VIRTIO_ADMIN_LEGACY_NOTIFY_INFO_SIZE,
} from '../../spec/admin.js';

/** Bytes a notification writes: a le16 virtqueue index. */
export const LEGACY_NOTIFY_WIDTH = 2;

/** One validated notification address of the owner device: BAR `bar`, `offset` bytes in. */
export interface LegacyNotifyAddress {
  readonly bar: number;
  readonly offset: number;
}

/** An entry the driver ignored, and why. */
export interface IgnoredNotifyEntry {
  readonly index: number;
  readonly flags: number;
  readonly bar: number;
  readonly offset: bigint;
  readonly reason: string;
}

/** What LEGACY_NOTIFY_INFO gave: the usable owner addresses (in entry order) and the entries ignored. */
export interface LegacyNotifyInfo {
  readonly addresses: readonly LegacyNotifyAddress[];
  readonly ignored: readonly IgnoredNotifyEntry[];
}

/** Why an address of `bar`/`offset` cannot take a le16 write, or undefined when it can. */
export function notifyAddressFault(bars: readonly PciBar[], bar: number, offset: bigint): string | undefined {
  const found = bars.find((b) => b.index === bar);
  if (found === undefined || found.size === 0) return `BAR ${bar} is not implemented (hardwired to zero)`;
  if (offset % BigInt(LEGACY_NOTIFY_WIDTH) !== 0n) return `offset 0x${offset.toString(16)} is not 2-byte aligned`;
  if (offset + BigInt(LEGACY_NOTIFY_WIDTH) > BigInt(found.size))
    return `offset 0x${offset.toString(16)} is outside BAR ${bar} (0x${found.size.toString(16)} bytes)`;
  return undefined;
}

/** Validate `result` (the command-specific result, zero past what the device wrote) against the owner's `bars`. */
export function parseLegacyNotifyInfo(result: Uint8Array, bars: readonly PciBar[], member: bigint): LegacyNotifyInfo {
  const view = new DataView(result.buffer, result.byteOffset, result.byteLength);
  const addresses: LegacyNotifyAddress[] = [];
  const ignored: IgnoredNotifyEntry[] = [];
  for (let index = 0; index < VIRTIO_ADMIN_LEGACY_NOTIFY_INFO_ENTRIES; index++) {
    const at = index * VIRTIO_ADMIN_LEGACY_NOTIFY_INFO_SIZE;
    const flags = view.getUint8(at + VIRTIO_ADMIN_LEGACY_NOTIFY_INFO_FLAGS);
    if (flags === VIRTIO_ADMIN_LEGACY_NOTIFY_INFO_FLAGS_END) {
      if (addresses.length > 0) return { addresses, ignored };
      const why = ignored.map((e) => `entry ${e.index}: ${e.reason}`).join('; ');
      throw new AdminCommandError(
        'ERR_ADMIN_RESULT',
        `LEGACY_NOTIFY_INFO for member ${member}: no usable address${why === '' ? '' : ` (${why})`}`,
      );
    }
    const bar = view.getUint8(at + VIRTIO_ADMIN_LEGACY_NOTIFY_INFO_BAR);
    const offset = view.getBigUint64(at + VIRTIO_ADMIN_LEGACY_NOTIFY_INFO_OFFSET, true);
    const reason =
      flags === VIRTIO_ADMIN_LEGACY_NOTIFY_INFO_FLAGS_OWNER_DEV
        ? notifyAddressFault(bars, bar, offset)
        : flags === VIRTIO_ADMIN_LEGACY_NOTIFY_INFO_FLAGS_MEMBER_DEV
          ? "a member device's BARs are not on this bus"
          : `reserved flags ${flags}`;
    if (reason === undefined) addresses.push({ bar, offset: Number(offset) });
    else ignored.push({ index, flags, bar, offset, reason });
  }
  // 2.12.1.1.6: the last entry MUST have flags 0; without it nothing in the result can be trusted.
  throw new AdminCommandError('ERR_ADMIN_RESULT', `LEGACY_NOTIFY_INFO for member ${member}: no end-of-list entry (flags 0) among the four`);
}
