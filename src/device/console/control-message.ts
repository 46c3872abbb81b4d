/** struct virtio_console_control (5.3.6.2) as bytes both ways, with the data some events carry. */

import { RequestShapeError } from '../../errors.js';
import {
  VIRTIO_CONSOLE_CONTROL_EVENT,
  VIRTIO_CONSOLE_CONTROL_ID,
  VIRTIO_CONSOLE_CONTROL_SIZE,
  VIRTIO_CONSOLE_CONTROL_VALUE,
} from '../../spec/console.js';

export interface ConsoleControl {
  readonly id: number;
  readonly event: number;
  readonly value: number;
}

/** Encode a control message followed by `data` (a PORT_NAME's name, a RESIZE's size). */
export function encodeConsoleControl(msg: ConsoleControl, data: Uint8Array = new Uint8Array(0)): Uint8Array {
  const out = new Uint8Array(VIRTIO_CONSOLE_CONTROL_SIZE + data.byteLength);
  const dv = new DataView(out.buffer);
  dv.setUint32(VIRTIO_CONSOLE_CONTROL_ID, msg.id >>> 0, true);
  dv.setUint16(VIRTIO_CONSOLE_CONTROL_EVENT, msg.event, true);
  dv.setUint16(VIRTIO_CONSOLE_CONTROL_VALUE, msg.value, true);
  out.set(data, VIRTIO_CONSOLE_CONTROL_SIZE);
  return out;
}

/** Decode the fixed part of a control message; the rest of `bytes` is its data. */
export function decodeConsoleControl(bytes: Uint8Array): { msg: ConsoleControl; data: Uint8Array } {
  if (bytes.byteLength < VIRTIO_CONSOLE_CONTROL_SIZE) {
    throw new RequestShapeError(`console control message of ${bytes.byteLength} bytes, expected at least ${VIRTIO_CONSOLE_CONTROL_SIZE}`);
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return {
    msg: {
      id: dv.getUint32(VIRTIO_CONSOLE_CONTROL_ID, true),
      event: dv.getUint16(VIRTIO_CONSOLE_CONTROL_EVENT, true),
      value: dv.getUint16(VIRTIO_CONSOLE_CONTROL_VALUE, true),
    },
    data: bytes.subarray(VIRTIO_CONSOLE_CONTROL_SIZE),
  };
}
