/**
 * Family 'admin' (spec 2.12 "Device groups", 2.12.1 group administration commands and their
 * legacy interface commands 2.12.1.1, 2.13 "Administration Virtqueues"; 1.4 numbering). Every check
 * applies to a device offering VIRTIO_F_ADMIN_VQ and drives its first administration queue with raw
 * commands (conformance/admin-session.ts). VIRTIO_ADMIN_CMD_LEGACY_NOTIFY_INFO is in
 * admin-notify-info.ts; the capability, resource object and device parts commands are not in the
 * catalogue yet.
 */

import {
  VIRTIO_ADMIN_CMD_LEGACY_COMMON_CFG_READ,
  VIRTIO_ADMIN_CMD_LEGACY_DEV_CFG_READ,
  VIRTIO_ADMIN_CMD_LIST_QUERY,
  VIRTIO_ADMIN_CMD_LIST_USE,
  VIRTIO_ADMIN_GROUP_TYPE_SELF,
  VIRTIO_ADMIN_GROUP_TYPE_SRIOV,
  VIRTIO_ADMIN_STATUS_OK,
  VIRTIO_ADMIN_STATUS_Q_INVALID_FIELD,
  VIRTIO_ADMIN_STATUS_Q_INVALID_GROUP,
  VIRTIO_ADMIN_STATUS_Q_INVALID_MEMBER,
  VIRTIO_ADMIN_STATUS_Q_INVALID_OPCODE,
} from '../../spec/admin.js';
import { VIRTIO_PCI_STATUS } from '../../spec/virtio-pci.js';
import type { Statement } from '../statement.js';
import { deviceStatements } from './define.js';
import { need } from '../exchange.js';
import {
  adminCommand,
  adminSession,
  describeReply,
  legacyAccess,
  legacySession,
  listQuery,
  listUse,
  needInvalid,
  needsLegacyAccess,
  offersAdmin,
  sendAdmin,
  someGroup,
  supportedGroups,
  unsupportedOpcode,
} from '../admin-session.js';
import { adminLegacyStatements } from './admin-legacy.js';
import { adminNotifyInfoStatements } from './admin-notify-info.js';
import { adminQueueStatements } from './admin-queue.js';
import { adminDriverStatements } from './admin-driver.js';

const device = deviceStatements('admin');
const applies = offersAdmin;

export const adminStatements: readonly Statement[] = [
  // 2.12.1.5: the device requirements of the group administration commands.
  device('invalid-group', '2.12.1.5', 'MUST', 'A command for a group type the device does not support fails EINVAL with Q_INVALID_GROUP.', {
    check: {
      applies,
      async run(ctx) {
        const session = await adminSession(ctx);
        for (const type of [0xffff, 0x8000])
          needInvalid(
            ctx,
            await sendAdmin(session, adminCommand(VIRTIO_ADMIN_CMD_LIST_QUERY, type)),
            VIRTIO_ADMIN_STATUS_Q_INVALID_GROUP,
            `LIST_QUERY for group type ${type}`,
          );
      },
    },
  }),
  device('invalid-opcode', '2.12.1.5', 'MUST', 'A command with an opcode the group does not support fails EINVAL with Q_INVALID_OPCODE.', {
    check: {
      applies,
      async run(ctx) {
        const session = await adminSession(ctx);
        const [type, list] = await someGroup(ctx, session);
        const op = unsupportedOpcode(list);
        needInvalid(
          ctx,
          await sendAdmin(session, adminCommand(op, type)),
          VIRTIO_ADMIN_STATUS_Q_INVALID_OPCODE,
          `opcode ${op} for group type ${type}`,
        );
      },
    },
  }),
  device(
    'invalid-member',
    '2.12.1.5',
    'MUST',
    'A command that uses group_member_id fails EINVAL with Q_INVALID_MEMBER for a member the group lacks.',
    {
      check: {
        applies: needsLegacyAccess,
        async run(ctx) {
          const session = await legacySession(ctx);
          for (const member of [0n, 0xffff_ffff_ffff_ffffn])
            needInvalid(
              ctx,
              await legacyAccess(session, VIRTIO_ADMIN_CMD_LEGACY_COMMON_CFG_READ, member, VIRTIO_PCI_STATUS, 1),
              VIRTIO_ADMIN_STATUS_Q_INVALID_MEMBER,
              `SR-IOV member ${member}`,
            );
        },
      },
    },
  ),
  device('success-status-ok', '2.12.1.5', 'MUST', 'A command that completes successfully has status VIRTIO_ADMIN_STATUS_OK.', {
    uncheckable: 'the status is the only sign of success a driver sees: there is nothing to hold it against',
  }),
  device('failure-status-not-ok', '2.12.1.5', 'MUST', 'A command that fails has a status other than VIRTIO_ADMIN_STATUS_OK.', {
    uncheckable:
      'the status is the only sign of failure a driver sees; the commands that must fail are held to their own statements (admin/invalid-group, admin/invalid-opcode, admin/invalid-member)',
  }),
  device(
    'einval-no-side-effect',
    '2.12.1.5',
    'MUST',
    'A command answered EINVAL changes nothing: a refused LIST_USE leaves the list in use as it was.',
    {
      check: {
        applies,
        async run(ctx) {
          const session = await adminSession(ctx);
          const [type, list] = await someGroup(ctx, session);
          const op = unsupportedOpcode(list);
          // A list without LIST_QUERY: were it taken, the LIST_QUERY after it would be refused.
          const refused = await listUse(session, type, [VIRTIO_ADMIN_CMD_LIST_USE, op]);
          needInvalid(ctx, refused, VIRTIO_ADMIN_STATUS_Q_INVALID_FIELD, `LIST_USE naming unsupported opcode ${op}`);
          const after = await sendAdmin(session, adminCommand(VIRTIO_ADMIN_CMD_LIST_QUERY, type));
          need(ctx, after.status === VIRTIO_ADMIN_STATUS_OK, `LIST_QUERY after the refused LIST_USE: ${describeReply(after)}`);
        },
      },
    },
  ),
  device('failure-no-state-change', '2.12.1.5', 'SHOULD', 'A failed command changes the device state as little as possible.', {
    uncheckable: 'how much of its state a device could have kept is its own affair; the EINVAL case is admin/einval-no-side-effect',
  }),
  device(
    'group-types-independent',
    '2.12.1.5',
    'MUST',
    'The commands of one group type do not change another group type: each has its own list in use.',
    {
      check: {
        async applies(ctx) {
          const offered = await offersAdmin(ctx);
          if (offered !== undefined) return offered;
          return (await supportedGroups(await adminSession(ctx))).size === 2
            ? undefined
            : 'the device does not support both the self and the SR-IOV group types';
        },
        async run(ctx) {
          const session = await adminSession(ctx);
          const used = await listUse(session, VIRTIO_ADMIN_GROUP_TYPE_SRIOV, [VIRTIO_ADMIN_CMD_LIST_USE]);
          need(ctx, used.status === VIRTIO_ADMIN_STATUS_OK, `SR-IOV LIST_USE of LIST_USE alone: ${describeReply(used)}`);
          const self = await sendAdmin(session, adminCommand(VIRTIO_ADMIN_CMD_LIST_QUERY, VIRTIO_ADMIN_GROUP_TYPE_SELF));
          need(
            ctx,
            self.status === VIRTIO_ADMIN_STATUS_OK,
            `self group LIST_QUERY after the SR-IOV group stopped using it: ${describeReply(self)}`,
          );
        },
      },
    },
  ),
  device(
    'initial-list-after-reset',
    '2.12.1.5',
    'MUST',
    'After a reset only LIST_QUERY and LIST_USE are in use, whatever LIST_USE said before.',
    {
      check: {
        applies: needsLegacyAccess,
        async run(ctx) {
          await legacySession(ctx);
          const fresh = await adminSession(ctx); // a new driver: the device was reset
          const reply = await legacyAccess(fresh, VIRTIO_ADMIN_CMD_LEGACY_COMMON_CFG_READ, 1n, VIRTIO_PCI_STATUS, 1);
          needInvalid(ctx, reply, VIRTIO_ADMIN_STATUS_Q_INVALID_OPCODE, 'LEGACY_COMMON_CFG_READ after a reset, before LIST_USE');
        },
      },
    },
  ),
  device('list-use-sets-list', '2.12.1.5', 'MUST', 'After a successful LIST_USE the commands in use are exactly the ones it named.', {
    check: {
      applies,
      async run(ctx) {
        const session = await adminSession(ctx);
        const [type] = await someGroup(ctx, session);
        const used = await listUse(session, type, [VIRTIO_ADMIN_CMD_LIST_QUERY]);
        need(ctx, used.status === VIRTIO_ADMIN_STATUS_OK, `LIST_USE of LIST_QUERY alone: ${describeReply(used)}`);
        needInvalid(
          ctx,
          await listUse(session, type, [VIRTIO_ADMIN_CMD_LIST_QUERY, VIRTIO_ADMIN_CMD_LIST_USE]),
          VIRTIO_ADMIN_STATUS_Q_INVALID_OPCODE,
          'LIST_USE once the list in use lacks it',
        );
      },
    },
  }),
  device('unlisted-command-refused', '2.12.1.5', 'MUST', 'A supported command not in the list in use fails EINVAL with Q_INVALID_OPCODE.', {
    check: {
      applies: needsLegacyAccess,
      async run(ctx) {
        const session = await adminSession(ctx);
        const reply = await legacyAccess(session, VIRTIO_ADMIN_CMD_LEGACY_DEV_CFG_READ, 1n, 0, 1);
        needInvalid(ctx, reply, VIRTIO_ADMIN_STATUS_Q_INVALID_OPCODE, 'LEGACY_DEV_CFG_READ before any LIST_USE');
      },
    },
  }),
  device(
    'list-query-no-shrink',
    '2.12.1.5',
    'MUST NOT',
    'A command once reported by LIST_QUERY is never reported unsupported later, across resets too.',
    {
      check: {
        applies,
        async run(ctx) {
          const [type, first] = await someGroup(ctx, await adminSession(ctx));
          const later = (await listQuery(await adminSession(ctx), type)) ?? [];
          const lost = first.filter((op) => !later.includes(op));
          need(ctx, lost.length === 0, `group type ${type}: [${first.join(', ')}], after a reset [${later.join(', ')}]`);
        },
      },
    },
  ),
  device('list-use-after-reset', '2.12.1.5', 'SHOULD', 'A LIST_USE that succeeded succeeds again with the same list after a reset.', {
    check: {
      applies,
      async run(ctx) {
        const [type, list] = await someGroup(ctx, await adminSession(ctx));
        const session = await adminSession(ctx);
        const first = await listUse(session, type, list);
        need(ctx, first.status === VIRTIO_ADMIN_STATUS_OK, `LIST_USE [${list.join(', ')}]: ${describeReply(first)}`);
        const again = await listUse(await adminSession(ctx), type, list);
        need(ctx, again.status === VIRTIO_ADMIN_STATUS_OK, `the same LIST_USE after a reset: ${describeReply(again)}`);
      },
    },
  }),
  device(
    'sriov-needs-capability',
    '2.12.1.5',
    'MUST',
    'Without an SR-IOV Extended Capability with VF Enable set, SR-IOV commands fail with Q_INVALID_GROUP.',
    {
      uncheckable:
        'the SR-IOV Extended Capability lives in PCI Express extended configuration space, which the configuration mechanism of these buses (ports 0xcf8/0xcfc) does not reach',
    },
  ),
  ...adminLegacyStatements,
  ...adminNotifyInfoStatements,
  ...adminQueueStatements,
  ...adminDriverStatements,
];
