/**
 * The administration virtqueue, driver side (2.12.1, 2.13): group administration commands as typed
 * calls. One command is out at a time (so LIST_USE never overlaps another command, 2.12.1.6, and
 * commands are strictly ordered). The driver's rules are kept before anything reaches the device:
 * a group's commands other than LIST_QUERY and LIST_USE only after a successful LIST_USE naming
 * them, and LIST_USE only with opcodes LIST_QUERY reported (UsageError otherwise). Every answer is
 * hostile: the used length is the ring's to check, bytes past it read as zero (2.13.2), a status
 * other than OK is an {@link AdminCommandError} (a reserved one reads as EINVAL, 2.12.1.6), EAGAIN
 * is retried (a SHOULD), and a LIST_QUERY list without its own two opcodes is refused.
 *
 *   const virtio = await VirtioDriver.open(bus, fn);
 *   await virtio.negotiate(featureSet(VIRTIO_F_ADMIN_VQ));
 *   const admin = await AdminQueue.setup(virtio);
 *   await virtio.driverOk();
 *   const supported = await admin.listQuery(VIRTIO_ADMIN_GROUP_TYPE_SRIOV);
 *   await admin.listUse(VIRTIO_ADMIN_GROUP_TYPE_SRIOV, supported);
 *   const status = await admin.legacyCommonCfgRead(1n, VIRTIO_PCI_STATUS, 1);   // VF 1's device status
 *   const { addresses } = await admin.legacyNotifyInfo(1n);                       // where to notify VF 1
 *   await admin.legacyNotify(addresses[0]!, 0);                                   // VF 1's queue 0
 */

import { AdminCommandError, UsageError } from '../../errors.js';
import type { AccessSize } from '../../memory/access-size.js';
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
  VIRTIO_ADMIN_CMD_LEGACY_NOTIFY_INFO,
  VIRTIO_ADMIN_CMD_LIST_QUERY,
  VIRTIO_ADMIN_CMD_LIST_USE,
  VIRTIO_ADMIN_CMD_OPCODE,
  VIRTIO_ADMIN_CMD_RESULT,
  VIRTIO_ADMIN_CMD_STATUS,
  VIRTIO_ADMIN_CMD_STATUS_QUALIFIER,
  VIRTIO_ADMIN_GROUP_TYPE_SRIOV,
  VIRTIO_ADMIN_LEGACY_NOTIFY_INFO_ENTRIES,
  VIRTIO_ADMIN_LEGACY_NOTIFY_INFO_SIZE,
  VIRTIO_ADMIN_LEGACY_WR_DATA,
  VIRTIO_ADMIN_STATUS_EAGAIN,
  VIRTIO_ADMIN_STATUS_EINVAL,
  VIRTIO_ADMIN_STATUS_NAMES,
  VIRTIO_ADMIN_STATUS_OK,
  VIRTIO_ADMIN_STATUS_Q_INVALID_COMMAND,
  VIRTIO_ADMIN_STATUS_Q_NAMES,
} from '../../spec/admin.js';
import { LentBuffers } from '../dma-buffers.js';
import {
  LEGACY_NOTIFY_WIDTH,
  notifyAddressFault,
  parseLegacyNotifyInfo,
  type LegacyNotifyAddress,
  type LegacyNotifyInfo,
} from './legacy-notify-info.js';
import type { DriverQueue } from '../driver-queue.js';
import type { VirtioDriver } from '../virtio-driver.js';
import type { QueueOptions } from '../virtqueues.js';

/** One command as sent: struct virtio_admin_cmd's driver fields and the room given for the result. */
export interface AdminCommandRequest {
  readonly opcode: number;
  readonly groupType: number;
  /** Default 0 (commands that do not use it: 2.12.1, "set to zero by driver"). */
  readonly groupMemberId?: bigint;
  /** command_specific_data (default none). */
  readonly data?: Uint8Array;
  /** Bytes of command_specific_result to give room for (default 0). */
  readonly resultLength?: number;
}

/** What the device answered: status, status_qualifier and command_specific_result (zero past what it wrote). */
export interface AdminCommandAnswer {
  readonly status: number;
  readonly statusQualifier: number;
  readonly result: Uint8Array;
  /** The used length the device reported for the device-writable part. */
  readonly usedLength: number;
}

/** Room for a LIST_QUERY list: opcodes 0..511 (a longer list is cut by the device, 2.13). */
const LIST_QUERY_RESULT_BYTES = 64;
/** Times a command answered EAGAIN is sent again (2.13.2: the driver SHOULD retry). */
const EAGAIN_RETRIES = 3;
/** The opcodes a group has in use after reset (2.12.1). */
const INITIAL_IN_USE: readonly number[] = [VIRTIO_ADMIN_CMD_LIST_QUERY, VIRTIO_ADMIN_CMD_LIST_USE];

/** A member identifier the SR-IOV group can take (1..NumVFs, NumVFs being 16-bit). */
function checkMember(id: bigint): void {
  if (id < 1n || id > 0xffffn) throw new UsageError(`group member ${id} is not an SR-IOV VF number (1..65535)`);
}

/** See the file comment. */
export class AdminQueue {
  private readonly lent: LentBuffers;
  /** Per group type: what LIST_QUERY reported and what LIST_USE put in use. */
  private readonly queried = new Map<number, ReadonlySet<number>>();
  private readonly inUse = new Map<number, ReadonlySet<number>>();
  private sending: Promise<unknown> = Promise.resolve();

  private constructor(
    /** The driver core the queue belongs to. */
    readonly virtio: VirtioDriver,
    private readonly queue: DriverQueue<number>,
  ) {
    this.lent = new LentBuffers(virtio.bus.dma);
  }

  /** Set up the administration queue of `virtio` (VIRTIO_F_ADMIN_VQ negotiated, before DRIVER_OK). */
  static async setup(virtio: VirtioDriver, options: QueueOptions = {}): Promise<AdminQueue> {
    return new AdminQueue(virtio, await virtio.setupAdminQueue<number>(options));
  }

  /** The queue index used (admin_queue_index). */
  get index(): number {
    return this.queue.index;
  }

  /** VIRTIO_ADMIN_CMD_LIST_QUERY: the opcodes the device supports for `groupType`, ascending. */
  async listQuery(groupType: number): Promise<number[]> {
    const answer = await this.command({ opcode: VIRTIO_ADMIN_CMD_LIST_QUERY, groupType, resultLength: LIST_QUERY_RESULT_BYTES });
    const opcodes = decodeCommandList(answer.result);
    if (!INITIAL_IN_USE.every((op) => opcodes.includes(op)))
      throw new AdminCommandError(
        'ERR_ADMIN_RESULT',
        `LIST_QUERY for group type ${groupType} lacks LIST_QUERY or LIST_USE: [${opcodes.join(', ')}]`,
      );
    this.queried.set(groupType, new Set(opcodes));
    return opcodes;
  }

  /** VIRTIO_ADMIN_CMD_LIST_USE: use `opcodes` (each one LIST_QUERY reported) for `groupType`. */
  async listUse(groupType: number, opcodes: readonly number[]): Promise<void> {
    const supported = this.queried.get(groupType);
    const unknown = opcodes.filter((op) => supported?.has(op) !== true);
    if (unknown.length > 0)
      throw new UsageError(`LIST_USE for group type ${groupType}: opcodes ${unknown.join(', ')} were not reported by LIST_QUERY`);
    await this.command({ opcode: VIRTIO_ADMIN_CMD_LIST_USE, groupType, data: encodeCommandList(opcodes) });
    this.inUse.set(groupType, new Set(opcodes));
  }

  /** VIRTIO_ADMIN_CMD_LEGACY_COMMON_CFG_READ: `size` bytes at `offset` of VF `member`'s legacy common configuration. */
  async legacyCommonCfgRead(member: bigint, offset: number, size: AccessSize): Promise<number> {
    return this.legacyRead(VIRTIO_ADMIN_CMD_LEGACY_COMMON_CFG_READ, member, offset, size);
  }
  /** VIRTIO_ADMIN_CMD_LEGACY_COMMON_CFG_WRITE: write `value` (`size` bytes, little-endian) at `offset`. */
  async legacyCommonCfgWrite(member: bigint, offset: number, size: AccessSize, value: number): Promise<void> {
    await this.legacyWrite(VIRTIO_ADMIN_CMD_LEGACY_COMMON_CFG_WRITE, member, offset, size, value);
  }
  /** VIRTIO_ADMIN_CMD_LEGACY_DEV_CFG_READ: `size` bytes at `offset` of VF `member`'s device-specific configuration. */
  async legacyDevCfgRead(member: bigint, offset: number, size: AccessSize): Promise<number> {
    return this.legacyRead(VIRTIO_ADMIN_CMD_LEGACY_DEV_CFG_READ, member, offset, size);
  }
  /** VIRTIO_ADMIN_CMD_LEGACY_DEV_CFG_WRITE. */
  async legacyDevCfgWrite(member: bigint, offset: number, size: AccessSize, value: number): Promise<void> {
    await this.legacyWrite(VIRTIO_ADMIN_CMD_LEGACY_DEV_CFG_WRITE, member, offset, size, value);
  }

  /**
   * VIRTIO_ADMIN_CMD_LEGACY_NOTIFY_INFO: VF `member`'s notification addresses, validated as
   * legacy-notify-info.ts says (entries that fail are ignored and listed; AdminCommandError
   * ERR_ADMIN_RESULT when no end-of-list entry or no usable address).
   */
  async legacyNotifyInfo(member: bigint): Promise<LegacyNotifyInfo> {
    checkMember(member);
    const answer = await this.command({
      opcode: VIRTIO_ADMIN_CMD_LEGACY_NOTIFY_INFO,
      groupType: VIRTIO_ADMIN_GROUP_TYPE_SRIOV,
      groupMemberId: member,
      resultLength: VIRTIO_ADMIN_LEGACY_NOTIFY_INFO_ENTRIES * VIRTIO_ADMIN_LEGACY_NOTIFY_INFO_SIZE,
    });
    return parseLegacyNotifyInfo(answer.result, this.virtio.probe.bars, member);
  }

  /**
   * Notify virtqueue `queue` of the member whose address `address` is (from {@link legacyNotifyInfo}):
   * a le16 write there, after checking again that it lies inside the owner's BAR (UsageError if not).
   */
  async legacyNotify(address: LegacyNotifyAddress, queue: number): Promise<void> {
    if (!Number.isInteger(queue) || queue < 0 || queue > 0xffff) throw new UsageError(`virtqueue index ${queue} is not a u16`);
    if (!Number.isSafeInteger(address.offset)) throw new UsageError(`legacy notify offset ${address.offset} is not an integer`);
    const bars = this.virtio.probe.bars;
    const fault = notifyAddressFault(bars, address.bar, BigInt(address.offset));
    if (fault !== undefined) throw new UsageError(`legacy notify address: ${fault}`);
    const bar = bars.find((b) => b.index === address.bar)!;
    const at = bar.base + address.offset;
    await (bar.kind === 'io'
      ? this.virtio.bus.ioWrite(at, LEGACY_NOTIFY_WIDTH, queue)
      : this.virtio.bus.memWrite(at, LEGACY_NOTIFY_WIDTH, queue));
  }

  private async legacyRead(opcode: number, member: bigint, offset: number, size: AccessSize): Promise<number> {
    checkMember(member);
    checkOffset(offset);
    // _rd_data is the offset byte; the data read is as long as the result room (2.12.1.1).
    const answer = await this.command({
      opcode,
      groupType: VIRTIO_ADMIN_GROUP_TYPE_SRIOV,
      groupMemberId: member,
      data: Uint8Array.of(offset),
      resultLength: size,
    });
    let value = 0;
    for (let i = size - 1; i >= 0; i--) value = value * 256 + answer.result[i]!;
    return value;
  }

  private async legacyWrite(opcode: number, member: bigint, offset: number, size: AccessSize, value: number): Promise<void> {
    checkMember(member);
    checkOffset(offset);
    // _wr_data: offset, 7 reserved bytes, then the data; its length is the data's (2.12.1.1).
    const data = new Uint8Array(VIRTIO_ADMIN_LEGACY_WR_DATA + size);
    data[0] = offset;
    for (let i = 0, v = value >>> 0; i < size; i++, v >>>= 8) data[VIRTIO_ADMIN_LEGACY_WR_DATA + i] = v & 0xff;
    await this.command({ opcode, groupType: VIRTIO_ADMIN_GROUP_TYPE_SRIOV, groupMemberId: member, data });
  }

  /**
   * Send one command and check its status: AdminCommandError ERR_ADMIN_STATUS for a failure (after
   * the EAGAIN retries), UsageError for an opcode the group does not have in use.
   */
  async command(request: AdminCommandRequest): Promise<AdminCommandAnswer> {
    const inUse = this.inUse.get(request.groupType) ?? new Set(INITIAL_IN_USE);
    if (!inUse.has(request.opcode))
      throw new UsageError(`opcode ${request.opcode} is not in use for group type ${request.groupType}: LIST_USE it first (2.12.1)`);
    let answer = await this.send(request);
    for (let retry = 0; answer.status === VIRTIO_ADMIN_STATUS_EAGAIN && retry < EAGAIN_RETRIES; retry++) answer = await this.send(request);
    if (answer.status !== VIRTIO_ADMIN_STATUS_OK) throw statusError(request, answer);
    return answer;
  }

  /** Send one command as given, whatever the rules, and return the answer unchecked (for tests of devices). */
  send(request: AdminCommandRequest): Promise<AdminCommandAnswer> {
    const result = this.sending.then(() => this.sendNow(request));
    this.sending = result.catch(() => undefined);
    return result;
  }

  private async sendNow(request: AdminCommandRequest): Promise<AdminCommandAnswer> {
    const data = request.data ?? new Uint8Array(0);
    const resultLength = request.resultLength ?? 0;
    if (!Number.isSafeInteger(resultLength) || resultLength < 0) throw new UsageError(`result length ${resultLength}`);
    const out = this.lent.alloc(VIRTIO_ADMIN_CMD_DATA + data.length, 8);
    const inn = this.lent.alloc(VIRTIO_ADMIN_CMD_RESULT + resultLength, 8);
    const header = new DataView(out.bytes.buffer, out.bytes.byteOffset, out.bytes.byteLength);
    out.bytes.fill(0);
    header.setUint16(VIRTIO_ADMIN_CMD_OPCODE, request.opcode, true);
    header.setUint16(VIRTIO_ADMIN_CMD_GROUP_TYPE, request.groupType, true);
    header.setBigUint64(VIRTIO_ADMIN_CMD_GROUP_MEMBER_ID, BigInt.asUintN(64, request.groupMemberId ?? 0n), true);
    out.bytes.set(data, VIRTIO_ADMIN_CMD_DATA);
    inn.bytes.fill(0);
    this.queue.submit([{ addr: out.addr, len: out.bytes.byteLength }], [{ addr: inn.addr, len: inn.bytes.byteLength }], 0);
    await this.queue.kick();
    const [used] = await this.queue.waitUsed();
    // The ring checked the used length against the writable bytes given; past it, all reads zero.
    const len = used!.len;
    const written = new Uint8Array(inn.bytes.byteLength);
    written.set(inn.bytes.subarray(0, len));
    this.lent.free(out);
    this.lent.free(inn);
    const view = new DataView(written.buffer);
    return {
      status: view.getUint16(VIRTIO_ADMIN_CMD_STATUS, true),
      statusQualifier: view.getUint16(VIRTIO_ADMIN_CMD_STATUS_QUALIFIER, true),
      result: written.subarray(VIRTIO_ADMIN_CMD_RESULT),
      usedLength: len,
    };
  }

  /** Reset the device (through the driver core) and release every buffer still lent to it. */
  async close(): Promise<void> {
    await this.virtio.close();
    await this.sending;
    this.lent.close();
  }
}

function checkOffset(offset: number): void {
  if (!Number.isInteger(offset) || offset < 0 || offset > 0xff) throw new UsageError(`legacy offset ${offset} is not a u8`);
}

/** The error for a failed command; reserved values are named as the values they count as (2.12.1.6). */
function statusError(request: AdminCommandRequest, answer: AdminCommandAnswer): AdminCommandError {
  const status = VIRTIO_ADMIN_STATUS_NAMES.get(answer.status) ?? `${answer.status} (reserved: as EINVAL ${VIRTIO_ADMIN_STATUS_EINVAL})`;
  const qualifier =
    VIRTIO_ADMIN_STATUS_Q_NAMES[answer.statusQualifier] ??
    `${answer.statusQualifier} (reserved: as ${VIRTIO_ADMIN_STATUS_Q_NAMES[VIRTIO_ADMIN_STATUS_Q_INVALID_COMMAND]})`;
  return new AdminCommandError(
    'ERR_ADMIN_STATUS',
    `admin command ${request.opcode} (group type ${request.groupType}, member ${request.groupMemberId ?? 0n}): status ${status}, qualifier ${qualifier}`,
    answer.status,
    answer.statusQualifier,
  );
}
