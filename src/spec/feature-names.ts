/** Feature-bit names per device type, for decoding (each device's own table lives in its spec module). */

import { VIRTIO_BLK_FEATURE_NAMES } from './blk.js';
import { VIRTIO_CONSOLE_FEATURE_NAMES } from './console.js';
import { decodeFeatures } from './features.js';
import { VIRTIO_ID_BLOCK, VIRTIO_ID_CONSOLE, VIRTIO_ID_NET } from './ids.js';
import { VIRTIO_NET_FEATURE_NAMES } from './net.js';

const DEVICE_FEATURE_NAMES: ReadonlyMap<number, ReadonlyMap<number, string>> = new Map([
  [VIRTIO_ID_NET, VIRTIO_NET_FEATURE_NAMES],
  [VIRTIO_ID_BLOCK, VIRTIO_BLK_FEATURE_NAMES],
  [VIRTIO_ID_CONSOLE, VIRTIO_CONSOLE_FEATURE_NAMES],
]);

/** "VERSION_1 EVENT_IDX BLK_SIZE ..." for a feature set of a device of `deviceType`; "(none)" when empty. */
export function decodeDeviceFeatures(deviceType: number, set: bigint): string {
  return decodeFeatures(set, DEVICE_FEATURE_NAMES.get(deviceType)) || '(none)';
}
