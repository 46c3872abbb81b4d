/** Device status field bits (spec 2.1 "Device Status Field"). */

export const VIRTIO_CONFIG_S_ACKNOWLEDGE = 1;
export const VIRTIO_CONFIG_S_DRIVER = 2;
export const VIRTIO_CONFIG_S_DRIVER_OK = 4;
export const VIRTIO_CONFIG_S_FEATURES_OK = 8;
/** 1.4, with VIRTIO_F_SUSPEND: the driver asks for suspension; shown with DRIVER_OK clear once suspended (3.4). */
export const VIRTIO_CONFIG_S_SUSPEND = 16;
export const VIRTIO_CONFIG_S_DEVICE_NEEDS_RESET = 64;
export const VIRTIO_CONFIG_S_FAILED = 128;

/** Names of the status bits, lowest bit first, for decoding. */
export const STATUS_BIT_NAMES: ReadonlyArray<readonly [number, string]> = [
  [VIRTIO_CONFIG_S_ACKNOWLEDGE, 'ACKNOWLEDGE'],
  [VIRTIO_CONFIG_S_DRIVER, 'DRIVER'],
  [VIRTIO_CONFIG_S_DRIVER_OK, 'DRIVER_OK'],
  [VIRTIO_CONFIG_S_FEATURES_OK, 'FEATURES_OK'],
  [VIRTIO_CONFIG_S_SUSPEND, 'SUSPEND'],
  [VIRTIO_CONFIG_S_DEVICE_NEEDS_RESET, 'DEVICE_NEEDS_RESET'],
  [VIRTIO_CONFIG_S_FAILED, 'FAILED'],
];

/** "ACKNOWLEDGE|DRIVER|..." for a status byte. */
export function decodeStatus(status: number): string {
  const names = STATUS_BIT_NAMES.filter(([bit]) => (status & bit) !== 0).map(([, name]) => name);
  return names.length === 0 ? '0' : names.join('|');
}
