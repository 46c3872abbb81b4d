/** What an emulator author chooses for a virtio-blk device (BlkDevice's constructor). */

import type { BlockBackend } from './backend.js';
import type { BlkTopology } from './blk-config.js';

export interface BlkDeviceOptions {
  /** Where the sectors live. */
  readonly backend: BlockBackend;
  /** GET_ID answer: ASCII, at most 20 bytes, NUL-padded by the device. Default "virtio-ts". */
  readonly serial?: string;
  /** Refuse writes even if the backend could do them (VIRTIO_BLK_F_RO). Default: backend.readOnly. */
  readonly readOnly?: boolean;
  /** Request queues; above 1 the device offers VIRTIO_BLK_F_MQ. Default 1. */
  readonly numQueues?: number;
  /** Maximum size of each queue (a power of two). Default 256. */
  readonly queueSize?: number;
  /** Asynchronous requests outstanding across all queues before the device stops popping. Default 64. */
  readonly maxInFlight?: number;
  /** blk_size: the disk's logical block size, a power of two >= 512. Default 512. */
  readonly blkSize?: number;
  /** size_max: largest data segment the driver may use, in bytes. Default 1 MiB. */
  readonly sizeMax?: number;
  /** Offer VIRTIO_BLK_F_TOPOLOGY with these values. */
  readonly topology?: BlkTopology;
  /**
   * Cache mode after reset (5.2.5): true = writeback. Kept when the driver negotiates CONFIG_WCE and
   * FLUSH, and shown from reset to a legacy driver, which may read it before DRIVER_OK. Default true.
   */
  readonly writeback?: boolean;
  /** max_discard_sectors / max_write_zeroes_sectors per segment. Default 8192 (4 MiB). */
  readonly maxDiscardSectors?: number;
  /** max_discard_seg / max_write_zeroes_seg. Default 16. */
  readonly maxDiscardSeg?: number;
}
