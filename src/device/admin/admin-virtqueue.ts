/**
 * The administration virtqueue, device side (2.13): each chain is one struct virtio_admin_cmd,
 * answered in the order queued with a status and status_qualifier (2.12.1.5). Validation follows
 * the device requirements' order: group_type (VIRTIO_ADMIN_STATUS_Q_INVALID_GROUP), then opcode,
 * unknown, unsupported or not in the list the driver uses (Q_INVALID_OPCODE), then group_member_id
 * where the command uses it (Q_INVALID_MEMBER); the group answers command-specific faults. After a
 * reset each group's list in use is LIST_QUERY and LIST_USE alone. A refused command changes
 * nothing. A chain the ring cannot give throws (QueueFaultError: the core sets DEVICE_NEEDS_RESET).
 *
 *   const admin = new AdminVirtqueue({ groups: [new SriovGroup(members)] });
 *   new VirtioPciFunction(device, host, { adminQueue: admin });   // offers VIRTIO_F_ADMIN_VQ
 */

import { UsageError } from '../../errors.js';
import type { AdminQueueHandler } from '../../core/admin-queue-handler.js';
import { checkQueueMaxSize } from '../../queue/ring-format.js';
import type { DeviceQueue } from '../../queue/types.js';
import { DRIVER_REQUIREMENTS as R, type DriverAuditSink } from '../../spec/driver-requirements.js';
import {
  decodeCommandList,
  encodeCommandList,
  VIRTIO_ADMIN_CMD_LIST_QUERY,
  VIRTIO_ADMIN_CMD_LIST_USE,
  VIRTIO_ADMIN_GROUP_TYPE_SRIOV,
  VIRTIO_ADMIN_STATUS_Q_INVALID_FIELD,
  VIRTIO_ADMIN_STATUS_Q_INVALID_GROUP,
  VIRTIO_ADMIN_STATUS_Q_INVALID_MEMBER,
  VIRTIO_ADMIN_STATUS_Q_INVALID_OPCODE,
} from '../../spec/admin.js';
import { adminInvalid, adminOk, readAdminCommand, writeAdminAnswer, type AdminAnswer, type AdminCommand } from './admin-command.js';
import { SELF_GROUP, type DeviceGroup } from './device-group.js';

/** The two commands every group starts with in use (2.12.1). */
const LIST_COMMANDS: readonly number[] = [VIRTIO_ADMIN_CMD_LIST_QUERY, VIRTIO_ADMIN_CMD_LIST_USE];

export interface AdminVirtqueueOptions {
  /** Groups besides the self group, which every owner here administers (default none). */
  readonly groups?: readonly DeviceGroup[];
  /** Maximum size of the administration queue (a power of two; default 64). */
  readonly queueMaxSize?: number;
}

/** One group as administered: what it supports and what the driver uses. */
interface GroupState {
  readonly group: DeviceGroup;
  readonly supported: ReadonlySet<number>;
  inUse: ReadonlySet<number>;
}

/** See the file comment. */
export class AdminVirtqueue implements AdminQueueHandler {
  readonly queueMaxSize: number;
  private readonly groups = new Map<number, GroupState>();
  private answered = 0;

  constructor(options: AdminVirtqueueOptions = {}) {
    this.queueMaxSize = options.queueMaxSize ?? 64;
    checkQueueMaxSize('queueMaxSize', this.queueMaxSize);
    for (const group of [SELF_GROUP, ...(options.groups ?? [])]) {
      if (this.groups.has(group.groupType)) throw new UsageError(`two groups of type ${group.groupType}: an owner has one group per type`);
      const supported = new Set([...LIST_COMMANDS, ...group.commands]);
      this.groups.set(group.groupType, { group, supported, inUse: new Set(LIST_COMMANDS) });
    }
  }

  serve(queue: DeviceQueue, audit?: DriverAuditSink): boolean {
    let before = 0;
    // Bounded: each pass takes one available chain; the ring holds at most its size.
    for (let chain = queue.pop(); chain; chain = queue.pop(), before++) {
      const command = readAdminCommand(chain);
      // Chains made available together: the earlier ones were outstanding when this one came.
      if (audit !== undefined && command.opcode === VIRTIO_ADMIN_CMD_LIST_USE && before > 0)
        audit(R.adminListUseAlone, `LIST_USE (group type ${command.groupType}) queued behind ${before} command(s) not yet completed`);
      const answer = this.execute(command, audit);
      queue.pushUsed(chain.head, writeAdminAnswer(chain, answer));
      this.answered++;
    }
    return before > 0;
  }

  /** Commands answered since creation (a reset does not clear it), for diagnostics. */
  get commandsAnswered(): number {
    return this.answered;
  }

  reset(): void {
    for (const state of this.groups.values()) state.inUse = new Set(LIST_COMMANDS);
  }

  /** The answer to `command`; the driver statements it breaks go to `audit`. */
  execute(command: AdminCommand, audit?: DriverAuditSink): AdminAnswer {
    const state = this.groups.get(command.groupType);
    if (state === undefined) return adminInvalid(VIRTIO_ADMIN_STATUS_Q_INVALID_GROUP);
    const { opcode } = command;
    if (!state.supported.has(opcode)) return adminInvalid(VIRTIO_ADMIN_STATUS_Q_INVALID_OPCODE);
    if (!state.inUse.has(opcode)) {
      audit?.(R.adminListUseFirst, `opcode ${opcode} for group type ${command.groupType} without a LIST_USE naming it`);
      return adminInvalid(VIRTIO_ADMIN_STATUS_Q_INVALID_OPCODE);
    }
    switch (opcode) {
      case VIRTIO_ADMIN_CMD_LIST_QUERY:
        return adminOk(encodeCommandList(state.supported));
      case VIRTIO_ADMIN_CMD_LIST_USE: {
        const wanted = decodeCommandList(command.data);
        // 2.12.1: a list the device does not support is refused whole, and nothing changes.
        const unsupported = wanted.filter((op) => !state.supported.has(op));
        if (unsupported.length > 0) {
          audit?.(
            R.adminListUseQueried,
            `LIST_USE for group type ${command.groupType} names unsupported opcodes ${unsupported.join(', ')}`,
          );
          return adminInvalid(VIRTIO_ADMIN_STATUS_Q_INVALID_FIELD);
        }
        state.inUse = new Set(wanted);
        return adminOk();
      }
      default:
        if (!state.group.isMember(command.groupMemberId)) {
          if (command.groupType === VIRTIO_ADMIN_GROUP_TYPE_SRIOV)
            audit?.(R.adminSriovMember, `member ${command.groupMemberId} is no VF of the group`);
          return adminInvalid(VIRTIO_ADMIN_STATUS_Q_INVALID_MEMBER);
        }
        return state.group.execute(command);
    }
  }
}
