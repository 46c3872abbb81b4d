/**
 * A device group as its owner device administers it (2.12): the group type, the commands it
 * supports beyond VIRTIO_ADMIN_CMD_LIST_QUERY and VIRTIO_ADMIN_CMD_LIST_USE, which member
 * identifiers are valid, and how a command for a member is carried out.
 */

import { VIRTIO_ADMIN_GROUP_TYPE_SELF, VIRTIO_ADMIN_STATUS_Q_INVALID_OPCODE } from '../../spec/admin.js';
import { adminInvalid, type AdminAnswer, type AdminCommand } from './admin-command.js';

export interface DeviceGroup {
  /** The group type identifier (VIRTIO_ADMIN_GROUP_TYPE_*). */
  readonly groupType: number;
  /** Opcodes the group supports besides LIST_QUERY and LIST_USE. */
  readonly commands: readonly number[];
  /** Whether `id` names a member now. */
  isMember(id: bigint): boolean;
  /**
   * Carry out `command`, already checked: its opcode is one of {@link commands} and in use, its
   * member valid. Answers the command-specific failures itself (VIRTIO_ADMIN_STATUS_Q_INVALID_FIELD);
   * never throws for anything the driver wrote.
   */
  execute(command: AdminCommand): AdminAnswer;
}

/** The self group (2.12, type 0x0): the owner alone, member 0, with no command beyond the list commands. */
export const SELF_GROUP: DeviceGroup = {
  groupType: VIRTIO_ADMIN_GROUP_TYPE_SELF,
  commands: [],
  isMember: (id) => id === 0n,
  // Never reached: with no command of its own, every opcode but the list commands is refused first.
  execute: () => adminInvalid(VIRTIO_ADMIN_STATUS_Q_INVALID_OPCODE),
};
