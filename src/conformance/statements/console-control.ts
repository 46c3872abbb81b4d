/**
 * The console's control queues (5.3.6.2) driven by hand for the console checks: receive buffers
 * posted on the control receiveq, control messages sent on the control transmitq, and the device's
 * messages collected until it falls quiet. Every buffer is one descriptor, as the legacy framing
 * rules without VIRTIO_F_ANY_LAYOUT require (5.3.6.4).
 */

import { DeviceFaultError } from '../../errors.js';
import { featureSet } from '../../spec/features.js';
import {
  VIRTIO_CONSOLE_CONFIG_MAX_NR_PORTS,
  VIRTIO_CONSOLE_CONTROL_EVENT,
  VIRTIO_CONSOLE_CONTROL_ID,
  VIRTIO_CONSOLE_CONTROL_RECEIVEQ,
  VIRTIO_CONSOLE_CONTROL_SIZE,
  VIRTIO_CONSOLE_CONTROL_TRANSMITQ,
  VIRTIO_CONSOLE_CONTROL_VALUE,
  VIRTIO_CONSOLE_F_MULTIPORT,
} from '../../spec/console.js';
import type { DmaBuffer } from '../../memory/dma.js';
import type { CheckContext } from '../statement.js';
import { exchange, liveDevice, type LiveDevice } from '../exchange.js';

/** One control message as the device sent it. */
export interface ControlMessage {
  readonly id: number;
  readonly event: number;
  readonly value: number;
}

/** A multiport console at DRIVER_OK with its control queues, and max_nr_ports. */
export interface ConsoleControl extends LiveDevice {
  readonly maxNrPorts: number;
  /** Receive buffers the device still holds: freed by {@link closeControl}, after the reset. */
  readonly lent: DmaBuffer[];
}

/** Receive buffers posted at a time, each big enough for a message with a port name. */
const RX_BUFFERS = 16;
const RX_BYTES = 128;

/** How long the device may stay silent before its messages are taken as complete, in ms. */
const QUIET_MS = 300;

/** Bring the console at `ctx` to DRIVER_OK with MULTIPORT, port 0's queues and the control queues set up. */
export async function consoleControl(ctx: CheckContext): Promise<ConsoleControl> {
  const live = await liveDevice(ctx, featureSet(VIRTIO_CONSOLE_F_MULTIPORT), [
    0,
    1,
    VIRTIO_CONSOLE_CONTROL_RECEIVEQ,
    VIRTIO_CONSOLE_CONTROL_TRANSMITQ,
  ]);
  const maxNrPorts = await live.driver.readConfig(VIRTIO_CONSOLE_CONFIG_MAX_NR_PORTS, 4);
  return { ...live, maxNrPorts, lent: [] };
}

/** Reset the device (closing the driver), then free the receive buffers it held. */
export async function closeControl(target: ConsoleControl): Promise<void> {
  await target.driver.close();
  for (const b of target.lent.splice(0)) target.driver.bus.dma.free(b);
}

/** Send control message (`id`, `event`, `value`) on the control transmitq and wait until it is used. */
export async function sendControl(target: LiveDevice, id: number, event: number, value: number): Promise<void> {
  const message = new Uint8Array(VIRTIO_CONSOLE_CONTROL_SIZE);
  const view = new DataView(message.buffer);
  view.setUint32(VIRTIO_CONSOLE_CONTROL_ID, id, true);
  view.setUint16(VIRTIO_CONSOLE_CONTROL_EVENT, event, true);
  view.setUint16(VIRTIO_CONSOLE_CONTROL_VALUE, value, true);
  await exchange(target.driver, target.queues.get(VIRTIO_CONSOLE_CONTROL_TRANSMITQ)!, [message], []);
}

/**
 * Post receive buffers, run `trigger` (which sends the driver's messages), and collect the device's
 * control messages until none comes for 300 ms (at most 16).
 */
export async function collectControl(target: ConsoleControl, trigger: () => Promise<void>): Promise<ControlMessage[]> {
  const dma = target.driver.bus.dma;
  const queue = target.queues.get(VIRTIO_CONSOLE_CONTROL_RECEIVEQ)!;
  // Buffers of an earlier round the device has not used yet are still posted: they may come back now.
  const posted = new Map<number, DmaBuffer>(target.lent.splice(0).map((b) => [b.addr, b]));
  const count = Math.min(RX_BUFFERS, queue.numFree);
  for (let i = 0; i < count; i++) {
    const b = dma.alloc(RX_BYTES, 16);
    posted.set(b.addr, b);
    queue.submit([], [{ addr: b.addr, len: RX_BYTES }], b.addr);
  }
  await queue.kick();
  await trigger();
  const messages: ControlMessage[] = [];
  for (let got = 0, total = posted.size; got < total;) {
    let used;
    try {
      used = await queue.waitUsed(QUIET_MS);
    } catch (error) {
      if (error instanceof DeviceFaultError && error.code === 'ERR_DEVICE_TIMEOUT') break;
      throw error;
    }
    for (const done of used) {
      got++;
      const b = posted.get(done.token);
      if (b === undefined) continue;
      posted.delete(done.token);
      await dma.refresh(b.addr, RX_BYTES);
      if (done.len >= VIRTIO_CONSOLE_CONTROL_SIZE) {
        const view = new DataView(b.bytes.buffer, b.bytes.byteOffset);
        messages.push({
          id: view.getUint32(VIRTIO_CONSOLE_CONTROL_ID, true),
          event: view.getUint16(VIRTIO_CONSOLE_CONTROL_EVENT, true),
          value: view.getUint16(VIRTIO_CONSOLE_CONTROL_VALUE, true),
        });
      }
      dma.free(b);
    }
  }
  // The buffers the device did not use stay with it until it is reset.
  target.lent.push(...posted.values());
  return messages;
}

/** Messages in words, for evidence. */
export function describeMessages(messages: readonly ControlMessage[]): string {
  return messages.map((m) => `(id ${m.id}, event ${m.event}, value ${m.value})`).join(' ') || 'none';
}
