/**
 * The administration virtqueue, device side (2.13): each chain is one struct virtio_admin_cmd,
 * answered in the order queued with a status and status_qualifier (2.12.1.2). Validation follows
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
import {
  decodeCommandList,
  encodeCommandList,
  VIRTIO_ADMIN_CMD_LIST_QUERY,
  VIRTIO_ADMIN_CMD_LIST_USE,
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
  /** Commands answered since creation, for diagnostics and tests. */
  commandsAnswered = 0;

  constructor(options: AdminVirtqueueOptions = {}) {
    this.queueMaxSize = options.queueMaxSize ?? 64;
    checkQueueMaxSize('queueMaxSize', this.queueMaxSize);
    for (const group of [SELF_GROUP, ...(options.groups ?? [])]) {
      if (this.groups.has(group.groupType)) throw new UsageError(`two groups of type ${group.groupType}: an owner has one group per type`);
      const supported = new Set([...LIST_COMMANDS, ...group.commands]);
      this.groups.set(group.groupType, { group, supported, inUse: new Set(LIST_COMMANDS) });
    }
  }

  serve(queue: DeviceQueue): boolean {
    let pushed = false;
    // Bounded: each pass takes one available chain; the ring holds at most its size.
    for (let chain = queue.pop(); chain; chain = queue.pop()) {
      const answer = this.execute(readAdminCommand(chain));
      queue.pushUsed(chain.head, writeAdminAnswer(chain, answer));
      this.commandsAnswered++;
      pushed = true;
    }
    return pushed;
  }

  reset(): void {
    for (const state of this.groups.values()) state.inUse = new Set(LIST_COMMANDS);
  }

  /** The answer to `command` (exported for the property tests: any command gets a status). */
  execute(command: AdminCommand): AdminAnswer {
    const state = this.groups.get(command.groupType);
    if (state === undefined) return adminInvalid(VIRTIO_ADMIN_STATUS_Q_INVALID_GROUP);
    const { opcode } = command;
    if (!state.supported.has(opcode) || !state.inUse.has(opcode)) return adminInvalid(VIRTIO_ADMIN_STATUS_Q_INVALID_OPCODE);
    switch (opcode) {
      case VIRTIO_ADMIN_CMD_LIST_QUERY:
        return adminOk(encodeCommandList(state.supported));
      case VIRTIO_ADMIN_CMD_LIST_USE: {
        const wanted = decodeCommandList(command.data);
        // 2.12.1: a list the device does not support is refused whole, and nothing changes.
        if (wanted.some((op) => !state.supported.has(op))) return adminInvalid(VIRTIO_ADMIN_STATUS_Q_INVALID_FIELD);
        state.inUse = new Set(wanted);
        return adminOk();
      }
      default:
        if (!state.group.isMember(command.groupMemberId)) return adminInvalid(VIRTIO_ADMIN_STATUS_Q_INVALID_MEMBER);
        return state.group.execute(command);
    }
  }
}
