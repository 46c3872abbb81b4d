/**
 * The control virtqueue of virtio-net (5.1.9.5) driven by hand for the net checks: a live device
 * with the control features, and one command at a time with its ack byte. Class, command and data go
 * in separate descriptors and the ack in its own, which also satisfies the legacy framing rules
 * without VIRTIO_F_ANY_LAYOUT (5.1.9.8).
 */

import { featureSet } from '../../spec/features.js';
import {
  VIRTIO_NET_F_CTRL_MAC_ADDR,
  VIRTIO_NET_F_CTRL_RX,
  VIRTIO_NET_F_CTRL_RX_EXTRA,
  VIRTIO_NET_F_CTRL_VQ,
  VIRTIO_NET_F_GUEST_ANNOUNCE,
  VIRTIO_NET_F_MAC,
  VIRTIO_NET_F_STATUS,
  VIRTIO_NET_OK,
  VIRTIO_NET_ERR,
} from '../../spec/net.js';
import type { CheckContext } from '../statement.js';
import { exchange, liveDevice, type LiveDevice } from '../exchange.js';

/** The control features a check negotiates when offered (not MQ: the control queue is then queue 2). */
export const NET_CTRL_FEATURES = featureSet(
  VIRTIO_NET_F_MAC,
  VIRTIO_NET_F_STATUS,
  VIRTIO_NET_F_CTRL_VQ,
  VIRTIO_NET_F_CTRL_RX,
  VIRTIO_NET_F_CTRL_RX_EXTRA,
  VIRTIO_NET_F_GUEST_ANNOUNCE,
  VIRTIO_NET_F_CTRL_MAC_ADDR,
);

/** Without MQ: receiveq1, transmitq1, controlq. */
const CONTROL_QUEUE = 2;

/** The ack byte before the device writes it. */
const UNWRITTEN = 0xa5;

/** An ack in words, for evidence. */
export function ackName(ack: number): string {
  return ack === VIRTIO_NET_OK
    ? '0 (OK)'
    : ack === VIRTIO_NET_ERR
      ? '1 (ERR)'
      : ack === UNWRITTEN
        ? 'not written'
        : `${ack} (not an ack value)`;
}

/** Bring the net device at `ctx` to DRIVER_OK with the offered control features, its three queues set up. */
export function netControlTarget(ctx: CheckContext): Promise<LiveDevice> {
  return liveDevice(ctx, NET_CTRL_FEATURES, [0, 1, CONTROL_QUEUE]);
}

/** Send command (`cls`, `cmd`) with `data`; the ack byte the device wrote. */
export async function netCommand(target: LiveDevice, cls: number, cmd: number, data: Uint8Array): Promise<number> {
  const out = data.length > 0 ? [Uint8Array.of(cls, cmd), data] : [Uint8Array.of(cls, cmd)];
  const done = await exchange(target.driver, target.queues.get(CONTROL_QUEUE)!, out, [1], { fill: UNWRITTEN });
  return done.written[0]![0]!;
}
