/** Family 'admin', the legacy interface commands of the SR-IOV group (spec 2.12.1.1.6). */

import {
  VIRTIO_ADMIN_CMD_LEGACY_COMMON_CFG_READ,
  VIRTIO_ADMIN_CMD_LEGACY_COMMON_CFG_WRITE,
  VIRTIO_ADMIN_CMD_LEGACY_DEV_CFG_READ,
  VIRTIO_ADMIN_GROUP_TYPE_SRIOV,
  VIRTIO_ADMIN_STATUS_OK,
} from '../../spec/admin.js';
import { VIRTIO_PCI_STATUS } from '../../spec/virtio-pci.js';
import type { CheckContext, Statement } from '../statement.js';
import { deviceStatements } from './define.js';
import { need } from '../exchange.js';
import {
  adminSession,
  describeReply,
  LEGACY_ACCESS_COMMANDS,
  legacyAccess,
  legacySession,
  listQuery,
  needsLegacyAccess,
  offersAdmin,
} from '../admin-session.js';

const device = deviceStatements('admin');

/** The round trip of VF 1's device status through the legacy common configuration commands. */
async function statusRoundTrip(ctx: CheckContext): Promise<void> {
  const session = await legacySession(ctx);
  for (const value of [1, 0]) {
    const wrote = await legacyAccess(session, VIRTIO_ADMIN_CMD_LEGACY_COMMON_CFG_WRITE, 1n, VIRTIO_PCI_STATUS, 1, value);
    need(ctx, wrote.status === VIRTIO_ADMIN_STATUS_OK, `writing VF 1's device status ${value}: ${describeReply(wrote)}`);
    const read = await legacyAccess(session, VIRTIO_ADMIN_CMD_LEGACY_COMMON_CFG_READ, 1n, VIRTIO_PCI_STATUS, 1);
    need(
      ctx,
      read.status === VIRTIO_ADMIN_STATUS_OK && read.result[0] === value,
      `VF 1's device status written ${value}, read back: ${describeReply(read)}`,
    );
  }
}

export const adminLegacyStatements: readonly Statement[] = [
  // 2.12.1.1.6: the legacy interface commands.
  device('legacy-all-or-none', '2.12.1.1.6', 'MUST', 'A device supports all four legacy configuration access commands or none of them.', {
    check: {
      async applies(ctx) {
        const offered = await offersAdmin(ctx);
        if (offered !== undefined) return offered;
        return (await listQuery(await adminSession(ctx), VIRTIO_ADMIN_GROUP_TYPE_SRIOV)) === undefined
          ? 'LIST_QUERY fails for the SR-IOV group type'
          : undefined;
      },
      async run(ctx) {
        const list = (await listQuery(await adminSession(ctx), VIRTIO_ADMIN_GROUP_TYPE_SRIOV)) ?? [];
        const have = LEGACY_ACCESS_COMMANDS.filter((op) => list.includes(op));
        need(ctx, have.length === 0 || have.length === 4, `SR-IOV LIST_QUERY [${list.join(', ')}]`);
      },
    },
  }),
  device('legacy-little-endian', '2.12.1.1.6', 'MUST', 'The legacy access commands carry data little-endian.', {
    uncheckable: "a member's registers are seen only through these same commands, so a round trip cannot tell the byte order",
  }),
  device('legacy-single-field', '2.12.1.1.6', 'MUST', 'A legacy access that is not one field inside its structure fails.', {
    check: {
      applies: needsLegacyAccess,
      async run(ctx) {
        const session = await legacySession(ctx);
        const across = await legacyAccess(session, VIRTIO_ADMIN_CMD_LEGACY_COMMON_CFG_READ, 1n, 2, 4);
        need(ctx, across.status !== VIRTIO_ADMIN_STATUS_OK, `4 bytes at 2 (host and guest features): ${describeReply(across)}`);
        const past = await legacyAccess(session, VIRTIO_ADMIN_CMD_LEGACY_DEV_CFG_READ, 1n, 0xfe, 4);
        need(ctx, past.status !== VIRTIO_ADMIN_STATUS_OK, `4 bytes at 254 of the device configuration: ${describeReply(past)}`);
      },
    },
  }),
  device(
    'legacy-common-write-effect',
    '2.12.1.1.6',
    'MUST',
    'LEGACY_COMMON_CFG_WRITE acts as a write of the legacy common configuration.',
    {
      check: { applies: needsLegacyAccess, run: statusRoundTrip },
    },
  ),
  device('legacy-common-read-effect', '2.12.1.1.6', 'MUST', 'LEGACY_COMMON_CFG_READ acts as a read of the legacy common configuration.', {
    check: { applies: needsLegacyAccess, run: statusRoundTrip },
  }),
  device(
    'legacy-dev-cfg-effect',
    '2.12.1.1.6',
    'MUST',
    'LEGACY_DEV_CFG_WRITE and _READ act as accesses of the legacy device-specific configuration.',
    {
      uncheckable:
        "a member's device configuration fields are its device type's, many read-only: no generic access has an effect known in advance",
    },
  ),
];
