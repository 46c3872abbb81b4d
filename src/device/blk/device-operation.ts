/**
 * virtio-blk's device operation (spec 5.2.6): what a well-formed request does to the backend, or the
 * status the device answers without carrying it out. Requests reach here parsed and checked
 * against the disk (request.ts).
 */

import { UsageError } from '../../errors.js';
import { hasFeature } from '../../spec/features.js';
import {
  VIRTIO_BLK_F_DISCARD,
  VIRTIO_BLK_F_WRITE_ZEROES,
  VIRTIO_BLK_ID_BYTES,
  VIRTIO_BLK_S_IOERR,
  VIRTIO_BLK_S_UNSUPP,
  VIRTIO_BLK_T_DISCARD,
  VIRTIO_BLK_T_FLUSH,
  VIRTIO_BLK_T_GET_ID,
  VIRTIO_BLK_T_IN,
  VIRTIO_BLK_T_OUT,
  VIRTIO_BLK_T_WRITE_ZEROES,
} from '../../spec/blk.js';
import type { BlockBackend, BlockResult, GuestIo } from './backend.js';
import type { BlkConfig } from './blk-config.js';
import type { BlkRange, BlkRequest } from './request.js';

/** The operations of one device on its backend. */
export class BlkOperation {
  private readonly serial: Uint8Array;

  /** Throws UsageError for a serial GET_ID cannot answer. */
  constructor(
    private readonly backend: BlockBackend,
    private readonly config: BlkConfig,
    private readonly readOnly: boolean,
    serial: string,
  ) {
    this.serial = encodeSerial(serial);
  }

  /** The status for a well-formed request the device will not carry out, or undefined to go ahead. */
  refusal(request: BlkRequest, features: bigint): number | undefined {
    switch (request.type) {
      case VIRTIO_BLK_T_OUT:
        // 5.2.6.2: IOERR for a write when RO is offered, and no data written.
        return this.readOnly ? VIRTIO_BLK_S_IOERR : undefined;
      case VIRTIO_BLK_T_DISCARD:
        if (!hasFeature(features, VIRTIO_BLK_F_DISCARD)) return VIRTIO_BLK_S_UNSUPP;
        return this.readOnly ? VIRTIO_BLK_S_IOERR : undefined;
      case VIRTIO_BLK_T_WRITE_ZEROES:
        if (!hasFeature(features, VIRTIO_BLK_F_WRITE_ZEROES)) return VIRTIO_BLK_S_UNSUPP;
        return this.readOnly ? VIRTIO_BLK_S_IOERR : undefined;
      case 'unsupported':
        return VIRTIO_BLK_S_UNSUPP;
      default:
        return undefined;
    }
  }

  /** Carry out a request {@link refusal} let through; a throw or a rejection is VIRTIO_BLK_S_IOERR. */
  execute(request: BlkRequest): BlockResult {
    const backend = this.backend;
    switch (request.type) {
      case VIRTIO_BLK_T_IN:
        return request.data.length === 0 ? undefined : backend.read(request.offset, request.data);
      case VIRTIO_BLK_T_OUT:
        return request.data.length === 0 ? undefined : this.stable(backend.write(request.offset, request.data));
      case VIRTIO_BLK_T_FLUSH:
        return backend.flush();
      case VIRTIO_BLK_T_GET_ID:
        fill(request.data, this.serial);
        return undefined;
      case VIRTIO_BLK_T_DISCARD:
        return this.stable(eachRange(request.ranges, (r) => backend.discard!(r.offset, r.length)));
      case VIRTIO_BLK_T_WRITE_ZEROES:
        return this.stable(eachRange(request.ranges, (r) => backend.writeZeroes!(r.offset, r.length)));
      case 'unsupported':
        return undefined; // refused before execution
    }
  }

  /** In writethrough mode a write completes only once flushed. */
  private stable(result: BlockResult): BlockResult {
    return this.config.writethrough ? after(result, () => this.backend.flush()) : result;
  }
}

/** The 20-byte NUL-padded device ID string (5.2.6). */
function encodeSerial(serial: string): Uint8Array {
  const bytes = new Uint8Array(VIRTIO_BLK_ID_BYTES);
  if (serial.length > VIRTIO_BLK_ID_BYTES || !/^[\x20-\x7e]*$/.test(serial)) {
    throw new UsageError(`serial must be printable ASCII of at most ${VIRTIO_BLK_ID_BYTES} bytes`);
  }
  for (let i = 0; i < serial.length; i++) bytes[i] = serial.charCodeAt(i);
  return bytes;
}

/** Copy `src` across the guest buffers of `io`, then zero what is left of them. */
function fill(io: GuestIo, src: Uint8Array): void {
  let at = 0;
  for (const { addr, len } of io.spans) {
    const n = Math.min(len, src.length - at);
    io.memory.write(addr, src.subarray(at, at + n));
    io.memory.view(addr + n, len - n).fill(0);
    at += n;
  }
}

/** Run `next` after `result` (synchronously when it is synchronous). */
function after(result: BlockResult, next: () => BlockResult): BlockResult {
  return result === undefined ? next() : result.then(next);
}

/** Apply `op` to each range in order, staying synchronous while the backend is. */
function eachRange(ranges: readonly BlkRange[], op: (r: BlkRange) => BlockResult): BlockResult {
  let result: BlockResult = undefined;
  for (const r of ranges) result = after(result, () => op(r));
  return result;
}
