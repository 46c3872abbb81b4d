/** Console device constants and layouts (spec 5.3 "Console Device"), named as the spec names them. */

// 5.3.3 Feature bits.
export const VIRTIO_CONSOLE_F_SIZE = 0;
export const VIRTIO_CONSOLE_F_MULTIPORT = 1;
export const VIRTIO_CONSOLE_F_EMERG_WRITE = 2;

export const VIRTIO_CONSOLE_FEATURE_NAMES: ReadonlyMap<number, string> = new Map([
  [VIRTIO_CONSOLE_F_SIZE, 'SIZE'],
  [VIRTIO_CONSOLE_F_MULTIPORT, 'MULTIPORT'],
  [VIRTIO_CONSOLE_F_EMERG_WRITE, 'EMERG_WRITE'],
]);

/** 5.3.4 struct virtio_console_config { le16 cols; le16 rows; le32 max_nr_ports; le32 emerg_wr; }. */
export const VIRTIO_CONSOLE_CONFIG_COLS = 0;
export const VIRTIO_CONSOLE_CONFIG_ROWS = 2;
export const VIRTIO_CONSOLE_CONFIG_MAX_NR_PORTS = 4;
export const VIRTIO_CONSOLE_CONFIG_EMERG_WR = 8;
export const VIRTIO_CONSOLE_CONFIG_SIZE = 12;

/** 5.3.6.2 struct virtio_console_control { le32 id; le16 event; le16 value; }. */
export const VIRTIO_CONSOLE_CONTROL_ID = 0;
export const VIRTIO_CONSOLE_CONTROL_EVENT = 4;
export const VIRTIO_CONSOLE_CONTROL_VALUE = 6;
export const VIRTIO_CONSOLE_CONTROL_SIZE = 8;

/** 5.3.6.2 control events (Linux calls 1 and 2 PORT_ADD and PORT_REMOVE). */
export const VIRTIO_CONSOLE_DEVICE_READY = 0;
export const VIRTIO_CONSOLE_DEVICE_ADD = 1;
export const VIRTIO_CONSOLE_DEVICE_REMOVE = 2;
export const VIRTIO_CONSOLE_PORT_READY = 3;
export const VIRTIO_CONSOLE_CONSOLE_PORT = 4;
export const VIRTIO_CONSOLE_RESIZE = 5;
export const VIRTIO_CONSOLE_PORT_OPEN = 6;
export const VIRTIO_CONSOLE_PORT_NAME = 7;

/**
 * 5.3.6.2 RESIZE is followed by struct virtio_console_resize { le16 cols; le16 rows; }. (Linux read
 * the two swapped from 2010 until 2025; we follow the spec.)
 */
export const VIRTIO_CONSOLE_RESIZE_COLS = 0;
export const VIRTIO_CONSOLE_RESIZE_ROWS = 2;
export const VIRTIO_CONSOLE_RESIZE_SIZE = 4;

/**
 * 5.3.2 Virtqueues: receiveq(port0) 0, transmitq(port0) 1, control receiveq 2, control transmitq 3,
 * then receiveq(portN) 2(N+1), transmitq(portN) 2(N+1)+1 for N >= 1 (with VIRTIO_CONSOLE_F_MULTIPORT).
 */
export const VIRTIO_CONSOLE_CONTROL_RECEIVEQ = 2;
export const VIRTIO_CONSOLE_CONTROL_TRANSMITQ = 3;
export function consoleRxQueueIndex(port: number): number {
  return port === 0 ? 0 : 2 * (port + 1);
}
export function consoleTxQueueIndex(port: number): number {
  return consoleRxQueueIndex(port) + 1;
}
/** Number of queues for `maxNrPorts` ports with MULTIPORT (2 per port plus the control pair). */
export function consoleQueueCount(maxNrPorts: number): number {
  return 2 * (maxNrPorts + 1);
}
