/** The virtio-blk feature bits a device offers (spec 5.2.3), from its options and its backend. */

import { bit } from '../../spec/features.js';
import {
  VIRTIO_BLK_F_BLK_SIZE,
  VIRTIO_BLK_F_CONFIG_WCE,
  VIRTIO_BLK_F_DISCARD,
  VIRTIO_BLK_F_FLUSH,
  VIRTIO_BLK_F_MQ,
  VIRTIO_BLK_F_RO,
  VIRTIO_BLK_F_SEG_MAX,
  VIRTIO_BLK_F_SIZE_MAX,
  VIRTIO_BLK_F_TOPOLOGY,
  VIRTIO_BLK_F_WRITE_ZEROES,
} from '../../spec/blk.js';
import type { BlockBackend } from './backend.js';

/** The device-specific features offered: DISCARD and WRITE_ZEROES only when the backend has them and the disk is writable. */
export function offeredFeatures(backend: BlockBackend, readOnly: boolean, numQueues: number, topology: boolean): bigint {
  let features = bit(VIRTIO_BLK_F_SIZE_MAX) | bit(VIRTIO_BLK_F_SEG_MAX) | bit(VIRTIO_BLK_F_BLK_SIZE);
  // 5.2.5: FLUSH SHOULD always be offered and MUST be with CONFIG_WCE.
  features |= bit(VIRTIO_BLK_F_FLUSH) | bit(VIRTIO_BLK_F_CONFIG_WCE);
  if (readOnly) features |= bit(VIRTIO_BLK_F_RO);
  if (numQueues > 1) features |= bit(VIRTIO_BLK_F_MQ);
  if (topology) features |= bit(VIRTIO_BLK_F_TOPOLOGY);
  if (!readOnly && backend.discard) features |= bit(VIRTIO_BLK_F_DISCARD);
  if (!readOnly && backend.writeZeroes) features |= bit(VIRTIO_BLK_F_WRITE_ZEROES);
  return features;
}
