/**
 * The notification addresses VIRTIO_ADMIN_CMD_LEGACY_NOTIFY_INFO reports (2.12.1.1): a region in one
 * of the owner's memory BARs with one le16 "Queue Notify" register per member, member n (1..NumVFs)
 * at byte 2 * (n - 1). A 16-bit write of a queue index there is passed to that member's legacy
 * interface exactly as VIRTIO_ADMIN_CMD_LEGACY_COMMON_CFG_WRITE at Queue Notify passes it (2.12.1.1.6:
 * "MUST function as if"). One address per member keeps the member implicit in the address, as a
 * hypervisor maps each VF's legacy notify to its own doorbell; 2 bytes apart keeps every address
 * 2-byte aligned as the spec asks. Reads return 0; an access of another width, or misaligned, is
 * ignored (the spec defines only the 16-bit write).
 *
 * The transport places the region (it alone knows the BARs): until {@link place} the area has no
 * address and the command answers as if unsupported.
 */

import { UsageError } from '../../errors.js';
import type { AccessSize } from '../../memory/access-size.js';
import { VIRTIO_PCI_QUEUE_NOTIFY } from '../../spec/virtio-pci.js';
import type { LegacyNotifyPlacement, LegacyNotifyRegion } from '../../core/legacy-notify-region.js';
import type { LegacyInterface } from './legacy-interface.js';

/** Bytes per member address (a le16 queue index). */
export const LEGACY_NOTIFY_STRIDE = 2;
/** The region is whole 4 KiB pages, so that a hypervisor can map it on its own. */
const PAGE = 0x1000;

/** See the file comment. */
export class LegacyNotifyArea implements LegacyNotifyRegion {
  /** The region's length in bytes (whole pages). */
  readonly size: number;
  private placement: LegacyNotifyPlacement | undefined;

  /** `members[i]` is VF number i + 1, as in the SR-IOV group. */
  constructor(private readonly members: readonly LegacyInterface[]) {
    this.size = Math.max(PAGE, Math.ceil((members.length * LEGACY_NOTIFY_STRIDE) / PAGE) * PAGE);
  }

  /** Called once by the transport that maps the region (UsageError for a second placement). */
  place(placement: LegacyNotifyPlacement): void {
    if (this.placement !== undefined) throw new UsageError('a legacy notify area is placed in one owner BAR only');
    this.placement = placement;
  }

  /** Member `member`'s address as (owner BAR, offset in it), or undefined before placement. */
  addressOf(member: number): { bar: number; offset: bigint } | undefined {
    const p = this.placement;
    return p === undefined ? undefined : { bar: p.bar, offset: BigInt(p.offset + (member - 1) * LEGACY_NOTIFY_STRIDE) };
  }

  read(_offset: number, _size: AccessSize): number {
    return 0;
  }

  write(offset: number, size: AccessSize, value: number): void {
    if (size !== LEGACY_NOTIFY_STRIDE || offset % LEGACY_NOTIFY_STRIDE !== 0) return;
    const member = this.members[offset / LEGACY_NOTIFY_STRIDE];
    member?.write(VIRTIO_PCI_QUEUE_NOTIFY, LEGACY_NOTIFY_STRIDE, value & 0xffff);
  }
}
