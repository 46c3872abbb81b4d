/** Family 'admin', VIRTIO_ADMIN_CMD_LEGACY_NOTIFY_INFO of the SR-IOV group (spec 2.12.1.1.6). */

import {
  VIRTIO_ADMIN_CMD_LEGACY_NOTIFY_INFO,
  VIRTIO_ADMIN_GROUP_TYPE_SRIOV,
  VIRTIO_ADMIN_LEGACY_NOTIFY_INFO_BAR,
  VIRTIO_ADMIN_LEGACY_NOTIFY_INFO_ENTRIES,
  VIRTIO_ADMIN_LEGACY_NOTIFY_INFO_FLAGS,
  VIRTIO_ADMIN_LEGACY_NOTIFY_INFO_FLAGS_END,
  VIRTIO_ADMIN_LEGACY_NOTIFY_INFO_FLAGS_OWNER_DEV,
  VIRTIO_ADMIN_LEGACY_NOTIFY_INFO_OFFSET,
  VIRTIO_ADMIN_LEGACY_NOTIFY_INFO_SIZE,
  VIRTIO_ADMIN_CMD_RESULT,
  VIRTIO_ADMIN_STATUS_OK,
} from '../../spec/admin.js';
import type { CheckContext, Statement } from '../statement.js';
import { deviceStatements } from './define.js';
import { need } from '../exchange.js';
import {
  adminCommand,
  adminSession,
  describeReply,
  LEGACY_ACCESS_COMMANDS,
  legacySession,
  listQuery,
  offersAdmin,
  sendAdmin,
} from '../admin-session.js';

const device = deviceStatements('admin');
const RESULT_BYTES = VIRTIO_ADMIN_LEGACY_NOTIFY_INFO_ENTRIES * VIRTIO_ADMIN_LEGACY_NOTIFY_INFO_SIZE;

/** `applies`: the SR-IOV group reports LEGACY_NOTIFY_INFO (an optional command). */
async function needsNotifyInfo(ctx: CheckContext): Promise<string | undefined> {
  const offered = await offersAdmin(ctx);
  if (offered !== undefined) return offered;
  const list = await listQuery(await adminSession(ctx), VIRTIO_ADMIN_GROUP_TYPE_SRIOV);
  if (list === undefined) return 'LIST_QUERY fails for the SR-IOV group type: the device administers no VFs';
  return list.includes(VIRTIO_ADMIN_CMD_LEGACY_NOTIFY_INFO) ? undefined : 'the SR-IOV group does not support LEGACY_NOTIFY_INFO (optional)';
}

/** One entry of the result as read. */
interface Entry {
  readonly index: number;
  readonly flags: number;
  readonly bar: number;
  readonly offset: bigint;
}

/** LEGACY_NOTIFY_INFO for VF 1 with room for all four entries: every entry, or the check fails on a refusal. */
async function notifyInfoEntries(ctx: CheckContext): Promise<Entry[]> {
  const session = await legacySession(ctx);
  const reply = await sendAdmin(session, adminCommand(VIRTIO_ADMIN_CMD_LEGACY_NOTIFY_INFO, VIRTIO_ADMIN_GROUP_TYPE_SRIOV, 1n), [
    VIRTIO_ADMIN_CMD_RESULT + RESULT_BYTES,
  ]);
  need(ctx, reply.status === VIRTIO_ADMIN_STATUS_OK, `LEGACY_NOTIFY_INFO for VF 1: ${describeReply(reply)}`);
  const bytes = new Uint8Array(RESULT_BYTES);
  bytes.set(reply.result.subarray(0, RESULT_BYTES));
  const view = new DataView(bytes.buffer);
  return Array.from({ length: VIRTIO_ADMIN_LEGACY_NOTIFY_INFO_ENTRIES }, (_, index) => {
    const at = index * VIRTIO_ADMIN_LEGACY_NOTIFY_INFO_SIZE;
    return {
      index,
      flags: bytes[at + VIRTIO_ADMIN_LEGACY_NOTIFY_INFO_FLAGS]!,
      bar: bytes[at + VIRTIO_ADMIN_LEGACY_NOTIFY_INFO_BAR]!,
      offset: view.getBigUint64(at + VIRTIO_ADMIN_LEGACY_NOTIFY_INFO_OFFSET, true),
    };
  });
}

/** The valid entries: those before the first with flags 0. */
function validEntries(entries: readonly Entry[]): Entry[] {
  const end = entries.findIndex((e) => e.flags === VIRTIO_ADMIN_LEGACY_NOTIFY_INFO_FLAGS_END);
  return entries.slice(0, end < 0 ? entries.length : end);
}

const describe = (e: Entry): string => `entry ${e.index}: flags ${e.flags}, BAR ${e.bar}, offset 0x${e.offset.toString(16)}`;

export const adminNotifyInfoStatements: readonly Statement[] = [
  device(
    'legacy-notify-info-needs-access',
    '2.12.1.1.6',
    'MUST',
    'A device with LEGACY_NOTIFY_INFO also supports the four legacy configuration access commands.',
    {
      check: {
        applies: needsNotifyInfo,
        async run(ctx) {
          const list = (await listQuery(await adminSession(ctx), VIRTIO_ADMIN_GROUP_TYPE_SRIOV)) ?? [];
          need(
            ctx,
            LEGACY_ACCESS_COMMANDS.every((op) => list.includes(op)),
            `SR-IOV LIST_QUERY [${list.join(', ')}]`,
          );
        },
      },
    },
  ),
  device('legacy-notify-info-end', '2.12.1.1.6', 'MUST', "The last entry of LEGACY_NOTIFY_INFO's result has flags 0.", {
    check: {
      applies: needsNotifyInfo,
      async run(ctx) {
        const entries = await notifyInfoEntries(ctx);
        const last = entries[VIRTIO_ADMIN_LEGACY_NOTIFY_INFO_ENTRIES - 1]!;
        need(ctx, last.flags === VIRTIO_ADMIN_LEGACY_NOTIFY_INFO_FLAGS_END, describe(last));
      },
    },
  }),
  device('legacy-notify-info-bar', '2.12.1.1.6', 'MUST', 'A valid LEGACY_NOTIFY_INFO entry names a BAR that is not hardwired to zero.', {
    check: {
      applies: needsNotifyInfo,
      async run(ctx) {
        const entries = validEntries(await notifyInfoEntries(ctx));
        const bars = (await ctx.probe()).bars;
        // A member's BARs are in its own configuration space, which the owner's driver does not see: owner entries only.
        for (const e of entries.filter((x) => x.flags === VIRTIO_ADMIN_LEGACY_NOTIFY_INFO_FLAGS_OWNER_DEV)) {
          const bar = bars.find((b) => b.index === e.bar);
          need(
            ctx,
            bar !== undefined && bar.size > 0,
            `${describe(e)}; the owner implements BARs [${bars.map((b) => b.index).join(', ')}]`,
          );
        }
      },
    },
  }),
  device('legacy-notify-info-aligned', '2.12.1.1.6', 'MUST', 'A valid LEGACY_NOTIFY_INFO entry has a 2-byte aligned offset.', {
    check: {
      applies: needsNotifyInfo,
      async run(ctx) {
        const entries = await notifyInfoEntries(ctx);
        for (const e of validEntries(entries)) need(ctx, e.offset % 2n === 0n, describe(e));
      },
    },
  }),
  device(
    'legacy-notify-info-effect',
    '2.12.1.1.6',
    'MUST',
    'A queue index written at a LEGACY_NOTIFY_INFO address acts as LEGACY_COMMON_CFG_WRITE of Queue Notify.',
    {
      uncheckable:
        "not executable yet: it needs a member's legacy ring built in DMA memory through LEGACY_COMMON_CFG_WRITE; a unit test of the device half serves a member request through the address",
    },
  ),
  device(
    'legacy-notify-info-vf-bar0',
    '2.12.1.1.6',
    'MUST',
    'An owner supporting LEGACY_NOTIFY_INFO hardwires VF BAR0 to zero in its SR-IOV Extended Capability.',
    {
      uncheckable: 'the SR-IOV Extended Capability is in PCI Express extended configuration space, which the buses here cannot reach',
    },
  ),
];
