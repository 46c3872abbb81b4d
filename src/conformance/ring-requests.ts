/**
 * Requests the ring checks can make of a device of each type without side effects a user would
 * mind, so that one check runs against any device: a chain in, a used element out. Two kinds:
 * one the device answers by writing bytes (entropy: random bytes; block: a read of sector 0), and
 * one with buffers the device only reads (block: the request header; console: bytes for port 0;
 * net: a frame to a locally administered address, with an experimental EtherType).
 */

import {
  VIRTIO_BLK_REQ_HDR_SIZE,
  VIRTIO_BLK_REQ_SECTOR,
  VIRTIO_BLK_REQ_TYPE,
  VIRTIO_BLK_SECTOR_SIZE,
  VIRTIO_BLK_T_IN,
} from '../spec/blk.js';
import { VIRTIO_F_VERSION_1, bit, hasFeature } from '../spec/features.js';
import { VIRTIO_ID_BLOCK, VIRTIO_ID_CONSOLE, VIRTIO_ID_NET, VIRTIO_ID_RNG } from '../spec/ids.js';
import { VIRTIO_NET_F_MRG_RXBUF, VIRTIO_NET_HDR_LEGACY_SIZE, VIRTIO_NET_HDR_SIZE } from '../spec/net.js';

/** A request: the queue it goes to, its device-readable contents and device-writable sizes. */
export interface RingRequest {
  readonly queue: number;
  readonly readable: readonly Uint8Array[];
  readonly writable: readonly number[];
  /** Bytes the device writes for it, when fixed (a block read: data and status); else up to the writable size. */
  readonly writes?: number;
}

/** Bytes an entropy request asks for. */
const RNG_BYTES = 64;
/** struct virtio_net_hdr with VIRTIO_F_VERSION_1 (num_buffers included, 5.1.9), and the legacy one without. */
const NET_HDR_BYTES = VIRTIO_NET_HDR_SIZE;
const NET_HDR_LEGACY_BYTES = VIRTIO_NET_HDR_LEGACY_SIZE;
/** A minimal Ethernet frame. */
const FRAME_BYTES = 60;
/** IEEE 802 local experimental EtherType: no stack takes it for its own. */
const ETHERTYPE_EXPERIMENTAL = 0x88b5;

/** A block read of sector 0 (16-byte header, 512 bytes of data, the status byte). */
function blkRead(): RingRequest {
  const header = new Uint8Array(VIRTIO_BLK_REQ_HDR_SIZE);
  const dv = new DataView(header.buffer);
  dv.setUint32(VIRTIO_BLK_REQ_TYPE, VIRTIO_BLK_T_IN, true);
  dv.setBigUint64(VIRTIO_BLK_REQ_SECTOR, 0n, true);
  return { queue: 0, readable: [header], writable: [VIRTIO_BLK_SECTOR_SIZE, 1], writes: VIRTIO_BLK_SECTOR_SIZE + 1 };
}

/**
 * `tag` varies the readable bytes, so that two requests of a check are told apart; the header is
 * the legacy one (10 bytes, 5.1.9.1) when `features` has neither VERSION_1 nor MRG_RXBUF.
 */
function netFrame(tag: number, features: bigint): RingRequest {
  const hdrBytes =
    hasFeature(features, VIRTIO_F_VERSION_1) || hasFeature(features, VIRTIO_NET_F_MRG_RXBUF) ? NET_HDR_BYTES : NET_HDR_LEGACY_BYTES;
  const frame = new Uint8Array(FRAME_BYTES);
  frame.set([0x02, 0, 0, 0, 0, 0x01], 0); // destination: locally administered, unicast
  frame.set([0x02, 0, 0, 0, 0, 0x02], 6);
  new DataView(frame.buffer).setUint16(12, ETHERTYPE_EXPERIMENTAL);
  for (let i = 14; i < FRAME_BYTES; i++) frame[i] = (i * 7 + tag) & 0xff;
  return { queue: 1, readable: [new Uint8Array(hdrBytes), frame], writable: [] };
}

function consoleBytes(tag: number): RingRequest {
  const text = new TextEncoder().encode(`virtio-ts conformance ${tag}\n`);
  return { queue: 1, readable: [text], writable: [] };
}

/** A request the device answers by writing bytes, or undefined for a type without one. */
export function writingRequest(deviceType: number): RingRequest | undefined {
  if (deviceType === VIRTIO_ID_RNG) return { queue: 0, readable: [], writable: [RNG_BYTES] };
  if (deviceType === VIRTIO_ID_BLOCK) return blkRead();
  return undefined;
}

/**
 * A request with device-readable buffers (the device only reads them), or undefined; `features`
 * (default VERSION_1) are the ones negotiated.
 */
export function readingRequest(deviceType: number, tag = 0, features = bit(VIRTIO_F_VERSION_1)): RingRequest | undefined {
  if (deviceType === VIRTIO_ID_BLOCK) return blkRead();
  if (deviceType === VIRTIO_ID_NET) return netFrame(tag, features);
  if (deviceType === VIRTIO_ID_CONSOLE) return consoleBytes(tag);
  return undefined;
}

/** Any request the device answers (writing bytes when it can), or undefined. */
export function anyRequest(deviceType: number, tag = 0, features = bit(VIRTIO_F_VERSION_1)): RingRequest | undefined {
  return writingRequest(deviceType) ?? readingRequest(deviceType, tag, features);
}

/** Why a check has nothing to send to a device of `deviceType`. */
export function noRequest(deviceType: number, kind: string): string {
  return `this check knows no request ${kind} for device type ${deviceType}`;
}
