/**
 * The SR-IOV group type (2.12, type 0x1) with the legacy interface commands (2.12.1.1):
 * VIRTIO_ADMIN_CMD_LEGACY_COMMON_CFG_WRITE/READ and LEGACY_DEV_CFG_WRITE/READ (all four or none,
 * as 2.12.1.1.6 asks), for members 1..NumVFs, each a {@link LegacyInterface}.
 *
 * What is modelled: the spec's group exists while the owner's SR-IOV Extended Capability has VF
 * Enable set, with NumVFs members. Our PCI functions have a conventional 256-byte configuration
 * space, which has no room for extended capabilities, so here the group is the embedder's word:
 * constructing it with N members stands for VF Enable set and NumVFs = N (VF Migration Capable
 * clear). An owner without this group answers every SR-IOV command Q_INVALID_GROUP, as 2.12.1.5
 * asks of a device without the capability. VIRTIO_ADMIN_CMD_LEGACY_NOTIFY_INFO (optional) is
 * supported when the group is given a {@link LegacyNotifyArea} (the owner-device addresses of
 * legacy-notify-area.ts): its result is one owner entry (flags 1) and the end entry (flags 0, the
 * rest zero). Without an area LIST_QUERY does not report it and it is refused Q_INVALID_OPCODE.
 * Command-specific data is ignored (the command uses none; 2.12.1: unused fields are ignored).
 *
 * "A single field" (2.12.1.1.6): in the common configuration an access of 1, 2 or 4 bytes inside
 * one register of the legacy header; in the device configuration (whose field layout is the device
 * type's) a naturally aligned access of 1, 2 or 4 bytes inside it, as a legacy driver's I/O access
 * would be. Anything else fails with Q_INVALID_FIELD and touches nothing. Data is little-endian.
 */

import type { AccessSize } from '../../memory/access-size.js';
import {
  VIRTIO_ADMIN_CMD_LEGACY_COMMON_CFG_READ,
  VIRTIO_ADMIN_CMD_LEGACY_COMMON_CFG_WRITE,
  VIRTIO_ADMIN_CMD_LEGACY_DEV_CFG_READ,
  VIRTIO_ADMIN_CMD_LEGACY_DEV_CFG_WRITE,
  VIRTIO_ADMIN_CMD_LEGACY_NOTIFY_INFO,
  VIRTIO_ADMIN_GROUP_TYPE_SRIOV,
  VIRTIO_ADMIN_LEGACY_NOTIFY_INFO_BAR,
  VIRTIO_ADMIN_LEGACY_NOTIFY_INFO_ENTRIES,
  VIRTIO_ADMIN_LEGACY_NOTIFY_INFO_FLAGS,
  VIRTIO_ADMIN_LEGACY_NOTIFY_INFO_FLAGS_OWNER_DEV,
  VIRTIO_ADMIN_LEGACY_NOTIFY_INFO_OFFSET,
  VIRTIO_ADMIN_LEGACY_NOTIFY_INFO_SIZE,
  VIRTIO_ADMIN_LEGACY_WR_DATA,
  VIRTIO_ADMIN_LEGACY_WR_OFFSET,
  VIRTIO_ADMIN_STATUS_Q_INVALID_FIELD,
  VIRTIO_ADMIN_STATUS_Q_INVALID_OPCODE,
} from '../../spec/admin.js';
import {
  VIRTIO_MSI_CONFIG_VECTOR,
  VIRTIO_MSI_QUEUE_VECTOR,
  VIRTIO_PCI_GUEST_FEATURES,
  VIRTIO_PCI_HOST_FEATURES,
  VIRTIO_PCI_ISR,
  VIRTIO_PCI_QUEUE_NOTIFY,
  VIRTIO_PCI_QUEUE_NUM,
  VIRTIO_PCI_QUEUE_PFN,
  VIRTIO_PCI_QUEUE_SEL,
  VIRTIO_PCI_STATUS,
} from '../../spec/virtio-pci.js';
import { UsageError } from '../../errors.js';
import { adminInvalid, adminOk, type AdminAnswer, type AdminCommand } from './admin-command.js';
import type { DeviceGroup } from './device-group.js';
import type { LegacyInterface } from './legacy-interface.js';
import type { LegacyNotifyArea } from './legacy-notify-area.js';

/** The registers of the legacy header (4.1.4.10) as [offset, length]; the MSI-X pair only while it is there. */
const LEGACY_HEADER_FIELDS: readonly (readonly [number, number])[] = [
  [VIRTIO_PCI_HOST_FEATURES, 4],
  [VIRTIO_PCI_GUEST_FEATURES, 4],
  [VIRTIO_PCI_QUEUE_PFN, 4],
  [VIRTIO_PCI_QUEUE_NUM, 2],
  [VIRTIO_PCI_QUEUE_SEL, 2],
  [VIRTIO_PCI_QUEUE_NOTIFY, 2],
  [VIRTIO_PCI_STATUS, 1],
  [VIRTIO_PCI_ISR, 1],
  [VIRTIO_MSI_CONFIG_VECTOR, 2],
  [VIRTIO_MSI_QUEUE_VECTOR, 2],
];

/** The largest SR-IOV NumVFs (a 16-bit register). */
const MAX_VFS = 0xffff;

function isAccessSize(n: number): n is AccessSize {
  return n === 1 || n === 2 || n === 4;
}

/** See the file comment. */
export class SriovGroup implements DeviceGroup {
  readonly groupType = VIRTIO_ADMIN_GROUP_TYPE_SRIOV;
  readonly commands: readonly number[];

  /** `members[i]` is VF number i + 1; `notifyArea` (over the same members) adds LEGACY_NOTIFY_INFO. */
  constructor(
    private readonly members: readonly LegacyInterface[],
    private readonly notifyArea?: LegacyNotifyArea,
  ) {
    // VF Enable with NumVFs 0 makes no group to administer: leave the group out instead.
    if (members.length < 1 || members.length > MAX_VFS)
      throw new UsageError(`an SR-IOV group has 1..${MAX_VFS} virtual functions, got ${members.length}`);
    // 2.12.1.1.6: NOTIFY_INFO only together with the four access commands, which are always here.
    this.commands = [
      VIRTIO_ADMIN_CMD_LEGACY_COMMON_CFG_WRITE,
      VIRTIO_ADMIN_CMD_LEGACY_COMMON_CFG_READ,
      VIRTIO_ADMIN_CMD_LEGACY_DEV_CFG_WRITE,
      VIRTIO_ADMIN_CMD_LEGACY_DEV_CFG_READ,
      ...(notifyArea === undefined ? [] : [VIRTIO_ADMIN_CMD_LEGACY_NOTIFY_INFO]),
    ];
  }

  isMember(id: bigint): boolean {
    return id >= 1n && id <= BigInt(this.members.length);
  }

  execute(command: AdminCommand): AdminAnswer {
    const member = this.members[Number(command.groupMemberId) - 1]!;
    const data = command.data;
    // _rd_data is the offset byte alone, _wr_data the offset, 7 reserved bytes (ignored) and the data.
    const offset = data[VIRTIO_ADMIN_LEGACY_WR_OFFSET] ?? 0;
    const written = data.subarray(VIRTIO_ADMIN_LEGACY_WR_DATA);
    switch (command.opcode) {
      case VIRTIO_ADMIN_CMD_LEGACY_COMMON_CFG_WRITE:
        return this.write(member, this.commonField(member, offset, written.length), written);
      case VIRTIO_ADMIN_CMD_LEGACY_COMMON_CFG_READ:
        return this.read(member, this.commonField(member, offset, command.resultRoom));
      case VIRTIO_ADMIN_CMD_LEGACY_DEV_CFG_WRITE:
        return this.write(member, this.deviceField(member, offset, written.length), written);
      case VIRTIO_ADMIN_CMD_LEGACY_DEV_CFG_READ:
        return this.read(member, this.deviceField(member, offset, command.resultRoom));
      case VIRTIO_ADMIN_CMD_LEGACY_NOTIFY_INFO:
        return this.notifyInfo(Number(command.groupMemberId));
      default:
        return adminInvalid(VIRTIO_ADMIN_STATUS_Q_INVALID_OPCODE);
    }
  }

  /** The BAR0 offset of a common configuration access inside one header register, or undefined. */
  private commonField(member: LegacyInterface, offset: number, length: number): [number, AccessSize] | undefined {
    if (!isAccessSize(length) || offset + length > member.deviceConfigOffset) return undefined;
    const inOne = LEGACY_HEADER_FIELDS.some(([at, len]) => offset >= at && offset + length <= at + len);
    return inOne ? [offset, length] : undefined;
  }

  /** The BAR0 offset of a naturally aligned device configuration access inside it, or undefined. */
  private deviceField(member: LegacyInterface, offset: number, length: number): [number, AccessSize] | undefined {
    if (!isAccessSize(length) || offset % length !== 0 || offset + length > member.deviceConfigSize) return undefined;
    return [member.deviceConfigOffset + offset, length];
  }

  /**
   * struct virtio_admin_cmd_legacy_notify_info_result: the member's owner-device address, then
   * zeroes (flags 0 ends the list). The answer is cut at the driver's buffer like any result (2.13.1).
   */
  private notifyInfo(member: number): AdminAnswer {
    const address = this.notifyArea?.addressOf(member);
    // An area no transport placed has no address to give: as if the command were unsupported.
    if (address === undefined) return adminInvalid(VIRTIO_ADMIN_STATUS_Q_INVALID_OPCODE);
    const out = new Uint8Array(VIRTIO_ADMIN_LEGACY_NOTIFY_INFO_ENTRIES * VIRTIO_ADMIN_LEGACY_NOTIFY_INFO_SIZE);
    const view = new DataView(out.buffer);
    out[VIRTIO_ADMIN_LEGACY_NOTIFY_INFO_FLAGS] = VIRTIO_ADMIN_LEGACY_NOTIFY_INFO_FLAGS_OWNER_DEV;
    out[VIRTIO_ADMIN_LEGACY_NOTIFY_INFO_BAR] = address.bar;
    view.setBigUint64(VIRTIO_ADMIN_LEGACY_NOTIFY_INFO_OFFSET, address.offset, true);
    return adminOk(out);
  }

  private write(member: LegacyInterface, field: [number, AccessSize] | undefined, bytes: Uint8Array): AdminAnswer {
    if (field === undefined) return adminInvalid(VIRTIO_ADMIN_STATUS_Q_INVALID_FIELD);
    let value = 0;
    for (let i = field[1] - 1; i >= 0; i--) value = value * 256 + bytes[i]!;
    member.write(field[0], field[1], value);
    return adminOk();
  }

  private read(member: LegacyInterface, field: [number, AccessSize] | undefined): AdminAnswer {
    if (field === undefined) return adminInvalid(VIRTIO_ADMIN_STATUS_Q_INVALID_FIELD);
    const value = member.read(field[0], field[1]);
    const out = new Uint8Array(field[1]);
    for (let i = 0, v = value; i < field[1]; i++, v = Math.floor(v / 256)) out[i] = v & 0xff;
    return adminOk(out);
  }
}
