/** The virtio-blk driver's public types: requests, the configuration it read, request failures. */

import { DeviceFaultError } from '../../errors.js';
import type { DmaSpan } from '../driver-queue.js';

/** A request the device answered with a status other than VIRTIO_BLK_S_OK. */
export class BlkStatusError extends DeviceFaultError {
  constructor(
    /** The status byte: VIRTIO_BLK_S_IOERR, VIRTIO_BLK_S_UNSUPP, ... */
    readonly status: number,
    readonly op: BlkOp['type'],
  ) {
    super('ERR_DEVICE_STATUS', `virtio-blk ${op} failed with status ${status} (${STATUS_NAMES[status] ?? 'unknown'})`);
  }
}

const STATUS_NAMES: Record<number, string> = { 0: 'OK', 1: 'IOERR', 2: 'UNSUPP' };

/** One request of a batch. Sectors are 512-byte units; data buffers lie in the bus's DMA memory. */
export type BlkOp =
  | { readonly type: 'read'; readonly sector: number; readonly buffer: DmaSpan }
  | { readonly type: 'write'; readonly sector: number; readonly buffer: DmaSpan }
  | { readonly type: 'flush' }
  | { readonly type: 'getId'; readonly buffer: DmaSpan }
  | { readonly type: 'discard'; readonly sector: number; readonly count: number }
  | { readonly type: 'writeZeroes'; readonly sector: number; readonly count: number; readonly unmap?: boolean };

/** struct virtio_blk_config as the driver read it; optional fields are absent when their feature is. */
export interface BlkConfig {
  /** Disk size in 512-byte sectors. */
  readonly capacity: number;
  readonly readOnly: boolean;
  readonly sizeMax?: number;
  readonly segMax?: number;
  readonly blkSize?: number;
  readonly topology?: {
    readonly physicalBlockExp: number;
    readonly alignmentOffset: number;
    readonly minIoSize: number;
    readonly optIoSize: number;
  };
  readonly discard?: { readonly maxSectors: number; readonly maxSeg: number };
  readonly writeZeroes?: { readonly maxSectors: number; readonly maxSeg: number };
}
