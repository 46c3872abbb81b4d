/**
 * The console's control receiveq and control transmitq as the device serves them (5.3.6.2,
 * VIRTIO_CONSOLE_F_MULTIPORT): the driver's messages taken in and acted on for the ports
 * (DEVICE_READY adds every port, PORT_READY gets a port its CONSOLE_PORT, PORT_NAME and PORT_OPEN,
 * PORT_OPEN opens or closes it), and the device's messages out, one per receive buffer, held while
 * the driver has none (up to a bound: beyond it a message is dropped and counted).
 */

import { RequestShapeError } from '../../errors.js';
import type { DeviceQueue } from '../../queue/types.js';
import type { SnapshotReader } from '../../snapshot/snapshot-reader.js';
import {
  VIRTIO_CONSOLE_CONSOLE_PORT,
  VIRTIO_CONSOLE_CONTROL_RECEIVEQ,
  VIRTIO_CONSOLE_CONTROL_TRANSMITQ,
  VIRTIO_CONSOLE_DEVICE_ADD,
  VIRTIO_CONSOLE_DEVICE_READY,
  VIRTIO_CONSOLE_PORT_NAME,
  VIRTIO_CONSOLE_PORT_OPEN,
  VIRTIO_CONSOLE_PORT_READY,
  VIRTIO_CONSOLE_RESIZE,
  VIRTIO_CONSOLE_RESIZE_COLS,
  VIRTIO_CONSOLE_RESIZE_ROWS,
  VIRTIO_CONSOLE_RESIZE_SIZE,
} from '../../spec/console.js';
import { gatherReadable, writeChain } from '../chain-bytes.js';
import type { ConsolePort } from './console-port.js';
import { decodeConsoleControl, encodeConsoleControl } from './control-message.js';

/** Largest control message: the header and a port name. */
const CONSOLE_MAX_CONTROL = 4096;
/** Control messages waiting for control receiveq buffers; more means the driver stopped listening. */
const CONSOLE_MAX_PENDING_CONTROL = 1024;

/** The console device as its control queues see it. */
export interface ControlQueuesHost {
  readonly ports: readonly ConsolePort[];
  /** The device is live (activated, not failed). */
  readonly active: boolean;
  /** Counters the control queues add to (the device's stats). */
  readonly stats: { badChains: number; controlDropped: number };
  /** Queue `index`, or null/undefined while it is reset or the device is not activated. */
  queue(index: number): DeviceQueue | null | undefined;
  usedBuffers(index: number): void;
  /** Audit (5.3.6.1): a device-readable buffer in a receiveq. */
  auditReadableInReceiveq(queue: number, head: number): void;
  /** The guest opened port `id`: serve the input and output that waited for it. */
  portOpened(id: number): void;
}

/** See the file comment. */
export class ControlQueues {
  /** Whether DEVICE_ADD went out for the ports since the last reset (a port exists once added, 5.3.6.2.1). */
  portsAdded = false;
  /** Messages not yet in a control receiveq buffer, oldest first. */
  private readonly out: Uint8Array[] = [];

  constructor(private readonly host: ControlQueuesHost) {}

  /** The messages not yet in the guest, oldest first (for a snapshot). */
  get pending(): readonly Uint8Array[] {
    return this.out;
  }

  /** Take every message the driver put in the control transmitq and act on it; a malformed one is counted. */
  processTransmitq(): void {
    const q = this.host.queue(VIRTIO_CONSOLE_CONTROL_TRANSMITQ);
    if (!q) return;
    let used = 0;
    for (let n = 0; n < q.size; n++) {
      const chain = q.pop();
      if (!chain) break;
      used++;
      try {
        this.handle(gatherReadable(chain, CONSOLE_MAX_CONTROL));
      } catch (err) {
        if (!(err instanceof RequestShapeError)) throw err;
        this.host.stats.badChains++;
      }
      q.pushUsed(chain.head, 0);
    }
    if (used > 0) this.host.usedBuffers(q.index);
  }

  /** Queue a message for the driver (dropped and counted beyond the bound) and send what the receiveq takes. */
  send(id: number, event: number, value: number, data?: Uint8Array): void {
    if (this.out.length >= CONSOLE_MAX_PENDING_CONTROL) {
      this.host.stats.controlDropped++;
      return;
    }
    this.out.push(encodeConsoleControl({ id, event, value }, data));
    this.flush();
  }

  /** Send RESIZE for port `id` with its struct virtio_console_resize (5.3.6.2). */
  sendResize(id: number, cols: number, rows: number): void {
    const size = new Uint8Array(VIRTIO_CONSOLE_RESIZE_SIZE);
    const dv = new DataView(size.buffer);
    dv.setUint16(VIRTIO_CONSOLE_RESIZE_COLS, cols, true);
    dv.setUint16(VIRTIO_CONSOLE_RESIZE_ROWS, rows, true);
    this.send(id, VIRTIO_CONSOLE_RESIZE, 0, size);
  }

  /** Put waiting messages in control receiveq buffers, one each; a buffer that cannot hold one is refused. */
  flush(): void {
    const q = this.host.queue(VIRTIO_CONSOLE_CONTROL_RECEIVEQ);
    if (!this.host.active || !q) return;
    let used = 0;
    for (let n = 0; n < q.size && this.out.length > 0; n++) {
      const chain = q.pop();
      if (!chain) break;
      used++;
      const msg = this.out[0]!;
      if (chain.readable !== 0 || chain.writableBytes < msg.byteLength) {
        if (chain.readable !== 0) this.host.auditReadableInReceiveq(q.index, chain.head);
        this.host.stats.badChains++;
        q.pushUsed(chain.head, 0);
        continue;
      }
      writeChain(chain, 0, msg);
      q.pushUsed(chain.head, msg.byteLength);
      this.out.shift();
    }
    if (used > 0) this.host.usedBuffers(q.index);
  }

  /** The messages of a snapshot's `controlOut`, checked (SnapshotError otherwise). */
  readPending(r: SnapshotReader): Uint8Array[] {
    return r.list('controlOut', CONSOLE_MAX_PENDING_CONTROL).map((m, i) => {
      if (m.type !== 'bytes' || m.value.byteLength > CONSOLE_MAX_CONTROL)
        throw r.rangeError('controlOut', `message ${i} is not at most ${CONSOLE_MAX_CONTROL} bytes`);
      return m.value.slice();
    });
  }

  /** Take a snapshot's state (checked by {@link readPending}). */
  restore(portsAdded: boolean, pending: readonly Uint8Array[]): void {
    this.portsAdded = portsAdded;
    this.out.length = 0;
    this.out.push(...pending);
  }

  /** Device reset: no port added, no message waiting. */
  reset(): void {
    this.portsAdded = false;
    this.out.length = 0;
  }

  private handle(bytes: Uint8Array): void {
    const { msg } = decodeConsoleControl(bytes);
    if (msg.event === VIRTIO_CONSOLE_DEVICE_READY) {
      // A second DEVICE_READY adds nothing: the device MUST NOT add a port which exists (5.3.6.2.1).
      if (msg.value !== 1 || this.portsAdded) return;
      this.portsAdded = true;
      for (const port of this.host.ports) this.send(port.id, VIRTIO_CONSOLE_DEVICE_ADD, 1);
      return;
    }
    const port = this.host.ports[msg.id];
    if (!port) throw new RequestShapeError(`control message for port ${msg.id}, which does not exist`);
    switch (msg.event) {
      case VIRTIO_CONSOLE_PORT_READY:
        if (msg.value !== 1) return;
        port.ready = true;
        if (port.isConsole) this.send(port.id, VIRTIO_CONSOLE_CONSOLE_PORT, 1);
        if (port.name !== undefined) this.send(port.id, VIRTIO_CONSOLE_PORT_NAME, 1, new TextEncoder().encode(port.name));
        if (port.hostConnected) this.send(port.id, VIRTIO_CONSOLE_PORT_OPEN, 1);
        return;
      case VIRTIO_CONSOLE_PORT_OPEN:
        port.guestOpen = msg.value === 1;
        if (port.guestOpen) this.host.portOpened(port.id);
        return;
      default:
        throw new RequestShapeError(`console control event ${msg.event} is not one a driver sends`);
    }
  }
}
