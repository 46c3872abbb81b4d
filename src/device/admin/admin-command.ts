/**
 * struct virtio_admin_cmd as the device reads and answers it (2.12.1, 2.13). The device-readable
 * part is read up to what the device can use and zero-filled past what the driver gave; the
 * device-writable part is filled up to the driver's buffer, the rest discarded (2.13.1: shorter
 * and longer parts are never an error in themselves). Reserved fields are ignored (2.12.1: "any
 * unused device-readable fields are set to zero by the driver and ignored by the device").
 */

import {
  VIRTIO_ADMIN_CMD_DATA,
  VIRTIO_ADMIN_CMD_GROUP_MEMBER_ID,
  VIRTIO_ADMIN_CMD_GROUP_TYPE,
  VIRTIO_ADMIN_CMD_OPCODE,
  VIRTIO_ADMIN_CMD_RESULT,
  VIRTIO_ADMIN_CMD_STATUS,
  VIRTIO_ADMIN_CMD_STATUS_QUALIFIER,
  VIRTIO_ADMIN_STATUS_EINVAL,
  VIRTIO_ADMIN_STATUS_OK,
  VIRTIO_ADMIN_STATUS_Q_OK,
} from '../../spec/admin.js';
import type { DescriptorChain } from '../../queue/types.js';
import { readChain, writeChain } from '../chain-bytes.js';

/**
 * The most command_specific_data the device reads: a struct virtio_admin_cmd_list for every opcode
 * of struct virtio_admin_cmd (0..0x7fff) is 4096 bytes, the longest data any command here takes.
 * Anything beyond is ignored, as the spec asks of data past the expected length.
 */
export const ADMIN_CMD_DATA_MAX = 0x8000 / 8;

/** A command as read from the device-readable part. */
export interface AdminCommand {
  readonly opcode: number;
  readonly groupType: number;
  readonly groupMemberId: bigint;
  /** command_specific_data as the driver gave it (at most {@link ADMIN_CMD_DATA_MAX} bytes). */
  readonly data: Uint8Array;
  /** Room for command_specific_result: the writable part's length past status..reserved2. */
  readonly resultRoom: number;
}

/** What the device answers: status, status_qualifier, and command_specific_result on success. */
export interface AdminAnswer {
  readonly status: number;
  readonly qualifier: number;
  readonly result?: Uint8Array;
}

/** A successful completion with `result`. */
export function adminOk(result?: Uint8Array): AdminAnswer {
  return result === undefined
    ? { status: VIRTIO_ADMIN_STATUS_OK, qualifier: VIRTIO_ADMIN_STATUS_Q_OK }
    : { status: VIRTIO_ADMIN_STATUS_OK, qualifier: VIRTIO_ADMIN_STATUS_Q_OK, result };
}

/** VIRTIO_ADMIN_STATUS_EINVAL with `qualifier` (2.12.1.5: the command has no side effect). */
export function adminInvalid(qualifier: number): AdminAnswer {
  return { status: VIRTIO_ADMIN_STATUS_EINVAL, qualifier };
}

/** Read the command of `chain` (bounded by {@link ADMIN_CMD_DATA_MAX}; missing bytes read as zero). */
export function readAdminCommand(chain: DescriptorChain): AdminCommand {
  const header = new Uint8Array(VIRTIO_ADMIN_CMD_DATA);
  const bytes = Math.min(chain.readableBytes, VIRTIO_ADMIN_CMD_DATA + ADMIN_CMD_DATA_MAX);
  const headerBytes = Math.min(bytes, VIRTIO_ADMIN_CMD_DATA);
  readChain(chain, 0, header.subarray(0, headerBytes));
  const data = new Uint8Array(bytes - headerBytes);
  readChain(chain, headerBytes, data);
  const view = new DataView(header.buffer);
  return {
    opcode: view.getUint16(VIRTIO_ADMIN_CMD_OPCODE, true),
    groupType: view.getUint16(VIRTIO_ADMIN_CMD_GROUP_TYPE, true),
    groupMemberId: view.getBigUint64(VIRTIO_ADMIN_CMD_GROUP_MEMBER_ID, true),
    data,
    resultRoom: Math.max(0, chain.writableBytes - VIRTIO_ADMIN_CMD_RESULT),
  };
}

/**
 * Write `answer` into the device-writable part of `chain`: status, status_qualifier, reserved2
 * (zero) and the result, cut at the driver's buffer. Returns the bytes written (the used length).
 */
export function writeAdminAnswer(chain: DescriptorChain, answer: AdminAnswer): number {
  const result = answer.result ?? new Uint8Array(0);
  const out = new Uint8Array(VIRTIO_ADMIN_CMD_RESULT + result.length);
  const view = new DataView(out.buffer);
  view.setUint16(VIRTIO_ADMIN_CMD_STATUS, answer.status, true);
  view.setUint16(VIRTIO_ADMIN_CMD_STATUS_QUALIFIER, answer.qualifier, true);
  out.set(result, VIRTIO_ADMIN_CMD_RESULT);
  const len = Math.min(out.length, chain.writableBytes);
  writeChain(chain, 0, out.subarray(0, len));
  return len;
}
