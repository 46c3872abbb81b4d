/**
 * Received packets for the net checks of 5.1.9.3-5.1.9.4: a check cannot send packets from the
 * network side, so it transmits one broadcast frame and waits for it to come back, which needs a
 * target whose network loops frames back (QEMU with a UDP netdev sending to itself, our device on a
 * looping backend). Where none comes back the check does not apply. The exchange runs in `applies`
 * (which must know whether a frame came back) and `run` judges what arrived.
 */

import { DeviceFaultError } from '../../errors.js';
import { featureSet, hasFeature, VIRTIO_F_VERSION_1 } from '../../spec/features.js';
import {
  VIRTIO_NET_F_MRG_RXBUF,
  VIRTIO_NET_HDR_FLAGS,
  VIRTIO_NET_HDR_GSO_ECN,
  VIRTIO_NET_HDR_GSO_TCPV4,
  VIRTIO_NET_HDR_GSO_TCPV6,
  VIRTIO_NET_HDR_GSO_TYPE,
  VIRTIO_NET_HDR_GSO_UDP,
  VIRTIO_NET_HDR_GSO_UDP_L4,
  VIRTIO_NET_HDR_NUM_BUFFERS,
  virtioNetHdrSize,
} from '../../spec/net.js';
import type { DmaBuffer } from '../../memory/dma.js';
import type { Check, CheckContext, Statement } from '../statement.js';
import { deviceStatements } from './define.js';
import { exchange, hexValue, liveDevice, need, needsOffered } from '../exchange.js';

/** One packet as it arrived: its header, and each buffer it took (used len, buffer size). */
export interface ReceivedPacket {
  readonly header: Uint8Array;
  readonly headerSize: number;
  readonly buffers: readonly { readonly usedLen: number; readonly size: number }[];
  readonly mergeable: boolean;
}

/** How long a transmitted frame may take to come back, in ms. */
const LOOP_WAIT_MS = 1000;
/** The frame's EtherType: IEEE 802 local experimental. */
const ETHERTYPE = 0x88b5;

const received = new WeakMap<CheckContext, ReceivedPacket>();

/** A broadcast frame of `length` bytes, payload (i * 3 + 1) mod 256. */
function loopFrame(length: number): Uint8Array {
  const frame = Uint8Array.from({ length }, (_, i) => (i * 3 + 1) & 0xff);
  frame.fill(0xff, 0, 6);
  frame.set([0x02, 0x76, 0x74, 0x73, 0x00, 0x01], 6);
  frame[12] = ETHERTYPE >> 8;
  frame[13] = ETHERTYPE & 0xff;
  return frame;
}

/**
 * Negotiate MRG_RXBUF or not, post receive buffers (256 bytes with MRG_RXBUF, so that a 600-byte
 * frame spans three; 2048 without), transmit one frame and collect the buffers of the first packet
 * that comes back; undefined when none does.
 */
async function receiveLooped(ctx: CheckContext, mergeable: boolean): Promise<ReceivedPacket | undefined> {
  const { driver, queues } = await liveDevice(ctx, mergeable ? featureSet(VIRTIO_NET_F_MRG_RXBUF) : 0n, [0, 1]);
  const rx = queues.get(0)!;
  const dma = driver.bus.dma;
  const size = mergeable ? 256 : 2048;
  const posted = new Map<number, DmaBuffer>();
  for (let i = Math.min(8, rx.numFree); i > 0; i--) {
    const b = dma.alloc(size, 16);
    b.bytes.fill(0xa5);
    await dma.flush(b.addr, size);
    posted.set(b.addr, b);
    rx.submit([], [{ addr: b.addr, len: size }], b.addr);
  }
  await rx.kick();
  const headerSize = virtioNetHdrSize(hasFeature(driver.features, VIRTIO_F_VERSION_1), hasFeature(driver.features, VIRTIO_NET_F_MRG_RXBUF));
  await exchange(driver, queues.get(1)!, [new Uint8Array(headerSize), loopFrame(mergeable ? 600 : 100)], []);
  const buffers: { usedLen: number; size: number }[] = [];
  let header: Uint8Array | undefined;
  let expected = 1;
  while (buffers.length < expected) {
    let used;
    try {
      used = await rx.waitUsed(LOOP_WAIT_MS);
    } catch (error) {
      if (error instanceof DeviceFaultError && error.code === 'ERR_DEVICE_TIMEOUT') break;
      throw error;
    }
    for (const done of used) {
      const b = posted.get(done.token)!;
      await dma.refresh(b.addr, size);
      if (header === undefined) {
        header = b.bytes.slice(0, headerSize);
        // num_buffers (the 12-byte header's last field) says how many buffers this packet takes.
        if (mergeable && headerSize >= 12) expected = Math.max(1, Math.min(8, header[10]! | (header[11]! << 8)));
      }
      buffers.push({ usedLen: done.len, size });
    }
  }
  // The buffers stay with the device until the engine resets it (closing the driver).
  return header === undefined ? undefined : { header, headerSize, buffers, mergeable };
}

/**
 * A check on a packet that came back: applies when one did (and MRG_RXBUF is offered, for
 * `mergeable`); `judge` returns undefined when it conforms, else what is wrong.
 */
export function receivedCheck(mergeable: boolean, judge: (packet: ReceivedPacket) => string | undefined): Check {
  return {
    via: ['modern'],
    async applies(ctx) {
      if (mergeable) {
        const reason = await needsOffered(ctx, VIRTIO_NET_F_MRG_RXBUF, 'MRG_RXBUF');
        if (reason !== undefined) return reason;
      }
      const packet = await receiveLooped(ctx, mergeable);
      if (packet === undefined) return `no frame came back within ${LOOP_WAIT_MS} ms: the target's network does not loop frames back`;
      received.set(ctx, packet);
      return undefined;
    },
    async run(ctx) {
      const packet = received.get(ctx) ?? (await receiveLooped(ctx, mergeable));
      if (packet === undefined) return need(ctx, false, 'no frame came back (the check ran without its applies step)');
      const wrong = judge(packet);
      ctx.note(
        `header ${[...packet.header].map((b) => b.toString(16).padStart(2, '0')).join(' ')}, buffers ${JSON.stringify(packet.buffers)}`,
      );
      need(ctx, wrong === undefined, wrong ?? '');
    },
  };
}

/** num_buffers of a received header (1 in a 10-byte header, which has none). */
function numBuffers(p: ReceivedPacket): number {
  return p.headerSize >= 12 ? p.header[VIRTIO_NET_HDR_NUM_BUFFERS]! | (p.header[VIRTIO_NET_HDR_NUM_BUFFERS + 1]! << 8) : 1;
}

/** gso_type (without the ECN bit) of a received packet is not `gso` (no GUEST_* offload is negotiated). */
function gsoCheck(gso: number): Check {
  return receivedCheck(false, (p) => {
    const type = p.header[VIRTIO_NET_HDR_GSO_TYPE]! & ~VIRTIO_NET_HDR_GSO_ECN;
    return type !== gso ? undefined : `gso_type ${hexValue(p.header[VIRTIO_NET_HDR_GSO_TYPE]!)} without the GUEST_* offload`;
  });
}

const device = deviceStatements('net');

/** Spec 5.1.9.3-5.1.9.4 (received packets), 1.4 numbering. */
export const netReceiveStatements: readonly Statement[] = [
  device('rx-num-buffers-one', '5.1.9.4.1', 'MUST', 'Without VIRTIO_NET_F_MRG_RXBUF, num_buffers of a received packet is 1.', {
    check: receivedCheck(false, (p) => {
      const n = numBuffers(p);
      return n === 1 ? undefined : `num_buffers ${n} without MRG_RXBUF`;
    }),
  }),
  device(
    'rx-num-buffers-mrg',
    '5.1.9.4.1',
    'MUST',
    'With VIRTIO_NET_F_MRG_RXBUF, num_buffers is the number of buffers the packet is spread over.',
    {
      check: receivedCheck(true, (p) => {
        const n = numBuffers(p);
        return n === p.buffers.length ? undefined : `num_buffers ${n}, the packet came in ${p.buffers.length} buffers`;
      }),
    },
  ),
  device('rx-mrg-buffers-filled', '5.1.9.4.1', 'MUST', 'A packet spread over several buffers fills every buffer but the last completely.', {
    check: receivedCheck(true, (p) => {
      const short = p.buffers.slice(0, -1).findIndex((b) => b.usedLen !== b.size);
      return short < 0
        ? undefined
        : `buffer ${short} of ${p.buffers.length}: used len ${p.buffers[short]!.usedLen} of ${p.buffers[short]!.size}`;
    }),
  }),
  device('rx-flags-zero-without-guest-csum', '5.1.9.4.1', 'MUST', 'Without VIRTIO_NET_F_GUEST_CSUM, flags of a received header are 0.', {
    check: receivedCheck(false, (p) =>
      p.header[VIRTIO_NET_HDR_FLAGS] === 0 ? undefined : `flags ${hexValue(p.header[VIRTIO_NET_HDR_FLAGS]!)}`,
    ),
  }),
  device('rx-no-gso-tcpv4', '5.1.9.4.1', 'MUST NOT', 'Without VIRTIO_NET_F_GUEST_TSO4, gso_type is never VIRTIO_NET_HDR_GSO_TCPV4.', {
    check: gsoCheck(VIRTIO_NET_HDR_GSO_TCPV4),
  }),
  device('rx-no-gso-udp', '5.1.9.4.1', 'MUST NOT', 'Without VIRTIO_NET_F_GUEST_UFO, gso_type is never VIRTIO_NET_HDR_GSO_UDP.', {
    check: gsoCheck(VIRTIO_NET_HDR_GSO_UDP),
  }),
  device('rx-no-gso-tcpv6', '5.1.9.4.1', 'MUST NOT', 'Without VIRTIO_NET_F_GUEST_TSO6, gso_type is never VIRTIO_NET_HDR_GSO_TCPV6.', {
    check: gsoCheck(VIRTIO_NET_HDR_GSO_TCPV6),
  }),
  device(
    'rx-no-gso-udp-l4',
    '5.1.9.4.1',
    'MUST NOT',
    'Without VIRTIO_NET_F_GUEST_USO4 or USO6, gso_type is never VIRTIO_NET_HDR_GSO_UDP_L4.',
    {
      check: gsoCheck(VIRTIO_NET_HDR_GSO_UDP_L4),
    },
  ),
  device('rx-single-buffer-without-mrg', '5.1.9.3.2', 'MUST', 'Without VIRTIO_NET_F_MRG_RXBUF a received packet takes one buffer.', {
    uncheckable:
      'a packet that does not fit its one buffer is dropped, which the driver side cannot tell from a packet never sent; one that fits is covered by rx-num-buffers-one',
  }),
];
