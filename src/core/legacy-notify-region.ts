/**
 * What a transport needs of an owner's legacy notification addresses (VIRTIO_ADMIN_CMD_LEGACY_NOTIFY_INFO,
 * 2.12.1.1): a register block of `size` bytes to map into one of its BARs, told where it was put so
 * that the command can report it. The device half's LegacyNotifyArea is one; the transport places it.
 */

import type { AccessSize } from '../memory/access-size.js';

/** Where the transport put the region: owner BAR number and the region's offset in it. */
export interface LegacyNotifyPlacement {
  readonly bar: number;
  readonly offset: number;
}

export interface LegacyNotifyRegion {
  /** The region's length in bytes. */
  readonly size: number;
  /** Called once by the transport that maps the region. */
  place(placement: LegacyNotifyPlacement): void;
  read(offset: number, size: AccessSize): number;
  write(offset: number, size: AccessSize, value: number): void;
}
