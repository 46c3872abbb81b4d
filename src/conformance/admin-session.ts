/**
 * The administration virtqueue as the admin family's checks drive it: a device at DRIVER_OK with
 * VIRTIO_F_ADMIN_VQ and its first administration queue, and raw struct virtio_admin_cmd chains put
 * through it by `exchange` (any bytes, any part lengths, guard bytes after the writable part), so
 * that a check can send what our driver half never would.
 */

import { hasFeature, bit, VIRTIO_F_ADMIN_VQ } from '../spec/features.js';
import {
  decodeCommandList,
  encodeCommandList,
  VIRTIO_ADMIN_CMD_DATA,
  VIRTIO_ADMIN_CMD_GROUP_MEMBER_ID,
  VIRTIO_ADMIN_CMD_GROUP_TYPE,
  VIRTIO_ADMIN_CMD_LEGACY_COMMON_CFG_READ,
  VIRTIO_ADMIN_CMD_LEGACY_COMMON_CFG_WRITE,
  VIRTIO_ADMIN_CMD_LEGACY_DEV_CFG_READ,
  VIRTIO_ADMIN_CMD_LEGACY_DEV_CFG_WRITE,
  VIRTIO_ADMIN_CMD_LIST_QUERY,
  VIRTIO_ADMIN_CMD_LIST_USE,
  VIRTIO_ADMIN_CMD_OPCODE,
  VIRTIO_ADMIN_CMD_RESULT,
  VIRTIO_ADMIN_GROUP_TYPE_SELF,
  VIRTIO_ADMIN_GROUP_TYPE_SRIOV,
  VIRTIO_ADMIN_STATUS_EINVAL,
  VIRTIO_ADMIN_STATUS_OK,
} from '../spec/admin.js';
import type { DriverQueue } from '../driver/driver-queue.js';
import type { VirtioDriver } from '../driver/virtio-driver.js';
import { exchange, hex, need, needsOffered } from './exchange.js';
import type { CheckContext } from './statement.js';

/** The four legacy interface commands (2.12.1.1), which a device supports all or none of. */
export const LEGACY_ACCESS_COMMANDS: readonly number[] = [
  VIRTIO_ADMIN_CMD_LEGACY_COMMON_CFG_WRITE,
  VIRTIO_ADMIN_CMD_LEGACY_COMMON_CFG_READ,
  VIRTIO_ADMIN_CMD_LEGACY_DEV_CFG_WRITE,
  VIRTIO_ADMIN_CMD_LEGACY_DEV_CFG_READ,
];

/** Room for a LIST_QUERY list in the checks: opcodes 0..511. */
export const LIST_ROOM = 64;

/** A device at DRIVER_OK with its first administration queue. */
export interface AdminSession {
  readonly driver: VirtioDriver;
  readonly queue: DriverQueue<number>;
}

/** What came back for one command. */
export interface AdminReply {
  readonly status: number;
  readonly qualifier: number;
  readonly usedLen: number;
  /** command_specific_result as far as the used length goes. */
  readonly result: Uint8Array;
  /** The whole device-writable part after use (untouched bytes keep the fill). */
  readonly written: Uint8Array;
  /** Guard bytes after each device-writable buffer. */
  readonly beyond: readonly Uint8Array[];
}

/** `applies` of every admin check: the device offers VIRTIO_F_ADMIN_VQ (modern interface only: bit 41). */
export function offersAdmin(ctx: CheckContext): Promise<string | undefined> {
  return needsOffered(ctx, VIRTIO_F_ADMIN_VQ, 'VIRTIO_F_ADMIN_VQ');
}

/** Reset the device, negotiate VIRTIO_F_ADMIN_VQ, set up its first administration queue, DRIVER_OK. */
export async function adminSession(ctx: CheckContext): Promise<AdminSession> {
  const driver = await ctx.openDriver({ ring: 'split' });
  const accepted = await driver.negotiate(bit(VIRTIO_F_ADMIN_VQ));
  need(ctx, hasFeature(accepted, VIRTIO_F_ADMIN_VQ), 'VIRTIO_F_ADMIN_VQ offered but not kept in negotiation');
  const queue = await driver.setupAdminQueue<number>({ maxSize: 16 });
  await driver.driverOk();
  return { driver, queue };
}

/** struct virtio_admin_cmd's device-readable part. */
export function adminCommand(opcode: number, groupType: number, member = 0n, data: Uint8Array = new Uint8Array(0)): Uint8Array {
  const bytes = new Uint8Array(VIRTIO_ADMIN_CMD_DATA + data.length);
  const view = new DataView(bytes.buffer);
  view.setUint16(VIRTIO_ADMIN_CMD_OPCODE, opcode, true);
  view.setUint16(VIRTIO_ADMIN_CMD_GROUP_TYPE, groupType, true);
  view.setBigUint64(VIRTIO_ADMIN_CMD_GROUP_MEMBER_ID, member, true);
  bytes.set(data, VIRTIO_ADMIN_CMD_DATA);
  return bytes;
}

/** The reply as the driver reads it (2.13.2: past the used length everything is zero). */
export function readReply(usedLen: number, written: Uint8Array, beyond: readonly Uint8Array[]): AdminReply {
  const seen = new Uint8Array(Math.max(written.length, VIRTIO_ADMIN_CMD_RESULT));
  seen.set(written.subarray(0, Math.min(usedLen, written.length)));
  const view = new DataView(seen.buffer);
  return {
    status: view.getUint16(0, true),
    qualifier: view.getUint16(2, true),
    usedLen,
    result: seen.subarray(VIRTIO_ADMIN_CMD_RESULT, Math.max(VIRTIO_ADMIN_CMD_RESULT, Math.min(usedLen, written.length))),
    written,
    beyond,
  };
}

/** Put one command through the administration queue: `readable` buffers, writable buffers of `writable` bytes. */
export async function sendAdmin(
  session: AdminSession,
  readable: Uint8Array | readonly Uint8Array[],
  writable: readonly number[] = [VIRTIO_ADMIN_CMD_RESULT + LIST_ROOM],
  fill = 0xa5,
): Promise<AdminReply> {
  const out = readable instanceof Uint8Array ? [readable] : readable;
  const got = await exchange(session.driver, session.queue, out, writable, { fill });
  const all = new Uint8Array(got.written.reduce((n, w) => n + w.length, 0));
  let at = 0;
  for (const w of got.written) {
    all.set(w, at);
    at += w.length;
  }
  return readReply(got.usedLen, all, got.beyond);
}

/** "status 22 qualifier 4 (used 8)" for evidence. */
export function describeReply(reply: AdminReply): string {
  return `status ${reply.status} qualifier ${reply.qualifier} (used length ${reply.usedLen}, bytes ${hex(reply.written.subarray(0, 16))})`;
}

/** LIST_QUERY for `groupType`: the opcodes when it succeeds, undefined otherwise. */
export async function listQuery(session: AdminSession, groupType: number): Promise<number[] | undefined> {
  const reply = await sendAdmin(session, adminCommand(VIRTIO_ADMIN_CMD_LIST_QUERY, groupType));
  return reply.status === VIRTIO_ADMIN_STATUS_OK ? decodeCommandList(reply.result) : undefined;
}

/** The group types among self and SR-IOV whose LIST_QUERY succeeds, with their lists. */
export async function supportedGroups(session: AdminSession): Promise<Map<number, number[]>> {
  const groups = new Map<number, number[]>();
  for (const type of [VIRTIO_ADMIN_GROUP_TYPE_SELF, VIRTIO_ADMIN_GROUP_TYPE_SRIOV]) {
    const list = await listQuery(session, type);
    if (list !== undefined) groups.set(type, list);
  }
  return groups;
}

/** A group type LIST_QUERY succeeds for (SR-IOV first: its commands carry more), with its list; the check fails without one. */
export async function someGroup(ctx: CheckContext, session: AdminSession): Promise<[number, number[]]> {
  const groups = await supportedGroups(session);
  const found = groups.get(VIRTIO_ADMIN_GROUP_TYPE_SRIOV) ?? groups.get(VIRTIO_ADMIN_GROUP_TYPE_SELF);
  need(ctx, found !== undefined, 'LIST_QUERY succeeded neither for the self nor for the SR-IOV group type');
  return [groups.has(VIRTIO_ADMIN_GROUP_TYPE_SRIOV) ? VIRTIO_ADMIN_GROUP_TYPE_SRIOV : VIRTIO_ADMIN_GROUP_TYPE_SELF, found!];
}

/** `applies` of the checks that need the SR-IOV group's legacy interface commands. */
export async function needsLegacyAccess(ctx: CheckContext): Promise<string | undefined> {
  const offered = await offersAdmin(ctx);
  if (offered !== undefined) return offered;
  const list = await listQuery(await adminSession(ctx), VIRTIO_ADMIN_GROUP_TYPE_SRIOV);
  if (list === undefined) return 'LIST_QUERY fails for the SR-IOV group type: the device administers no VFs';
  return LEGACY_ACCESS_COMMANDS.every((op) => list.includes(op)) ? undefined : 'the SR-IOV group lacks the legacy interface commands';
}

/** An opcode of struct virtio_admin_cmd's range that `list` lacks (to send as unsupported). */
export function unsupportedOpcode(list: readonly number[]): number {
  let op = 0x7fff;
  while (list.includes(op)) op--;
  return op;
}

/** Require EINVAL with `qualifier`. */
export function needInvalid(ctx: CheckContext, reply: ReturnType<typeof readReply>, qualifier: number, what: string): void {
  need(ctx, reply.status === VIRTIO_ADMIN_STATUS_EINVAL && reply.qualifier === qualifier, `${what}: ${describeReply(reply)}`);
}

/** LIST_USE `opcodes` for `groupType`; the reply. */
export function listUse(session: AdminSession, groupType: number, opcodes: readonly number[]): ReturnType<typeof sendAdmin> {
  return sendAdmin(session, adminCommand(VIRTIO_ADMIN_CMD_LIST_USE, groupType, 0n, encodeCommandList(opcodes)));
}

/** A session whose SR-IOV group uses every command it supports. */
export async function legacySession(ctx: CheckContext): Promise<AdminSession> {
  const session = await adminSession(ctx);
  const list = (await listQuery(session, VIRTIO_ADMIN_GROUP_TYPE_SRIOV)) ?? [];
  const reply = await listUse(session, VIRTIO_ADMIN_GROUP_TYPE_SRIOV, list);
  need(
    ctx,
    reply.status === VIRTIO_ADMIN_STATUS_OK,
    `LIST_USE of the SR-IOV group's own list [${list.join(', ')}]: ${describeReply(reply)}`,
  );
  return session;
}

/** A legacy interface access to VF `member`: the reply (reads: `size` result bytes). */
export function legacyAccess(
  session: AdminSession,
  opcode: number,
  member: bigint,
  offset: number,
  size: number,
  value = 0,
): ReturnType<typeof sendAdmin> {
  if (opcode === VIRTIO_ADMIN_CMD_LEGACY_COMMON_CFG_WRITE || opcode === VIRTIO_ADMIN_CMD_LEGACY_DEV_CFG_WRITE) {
    const data = new Uint8Array(8 + size);
    data[0] = offset;
    for (let i = 0, v = value; i < size; i++, v >>>= 8) data[8 + i] = v & 0xff;
    return sendAdmin(session, adminCommand(opcode, VIRTIO_ADMIN_GROUP_TYPE_SRIOV, member, data), [8]);
  }
  return sendAdmin(session, adminCommand(opcode, VIRTIO_ADMIN_GROUP_TYPE_SRIOV, member, Uint8Array.of(offset)), [8 + size]);
}
