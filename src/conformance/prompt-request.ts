/**
 * A request each device type serves at once, without a peer or any set-up beyond its queue: what
 * the checks use to see whether a device consumes buffers (and notifies) at a given moment. The
 * buffers are zeroed in DMA memory, which makes every request valid: a blk read of sector 0
 * (5.2.6), a net frame of zeros on transmitq (5.1.6), console output on port 0 (5.3.6), entropy (5.4.6).
 */

import type { DmaMemory, DmaSpan } from '../memory/dma.js';
import { VIRTIO_ID_BLOCK, VIRTIO_ID_CONSOLE, VIRTIO_ID_NET, VIRTIO_ID_RNG } from '../spec/ids.js';
import { VIRTIO_BLK_REQ_HDR_SIZE, VIRTIO_BLK_REQ_STATUS_SIZE, VIRTIO_BLK_SECTOR_SIZE } from '../spec/blk.js';
import { VIRTIO_NET_F_MRG_RXBUF, VIRTIO_NET_HDR_LEGACY_SIZE, VIRTIO_NET_HDR_SIZE } from '../spec/net.js';
import { VIRTIO_F_VERSION_1, hasFeature } from '../spec/features.js';

/** Where a prompt request goes and its buffers (device-readable `out`, device-writable `inn`). */
export interface PromptRequest {
  readonly queue: number;
  readonly out: readonly DmaSpan[];
  readonly inn: readonly DmaSpan[];
}

/** A minimum Ethernet frame without its FCS. */
const NET_FRAME = 60;
const ENTROPY_BYTES = 16;
const CONSOLE_BYTES = 8;
/** transmitq of port 0 (5.1.2, 5.3.2). */
const TRANSMITQ = 1;

/** The device types {@link promptRequest} knows; a reason for the others. */
export function promptRequestUnsupported(deviceType: number): string | undefined {
  return [VIRTIO_ID_NET, VIRTIO_ID_BLOCK, VIRTIO_ID_CONSOLE, VIRTIO_ID_RNG].includes(deviceType)
    ? undefined
    : `no request is known that a device of type ${deviceType} serves on its own`;
}

/**
 * The request for `deviceType` with `features` negotiated (they decide the net header's size),
 * its zeroed buffers allocated in `dma` and flushed. Undefined for a type {@link promptRequestUnsupported} names.
 */
export async function promptRequest(dma: DmaMemory, deviceType: number, features: bigint): Promise<PromptRequest | undefined> {
  const zeroed = async (len: number): Promise<DmaSpan> => {
    const buffer = dma.alloc(len, 16);
    buffer.bytes.fill(0);
    await dma.flush(buffer.addr, len);
    return { addr: buffer.addr, len };
  };
  switch (deviceType) {
    case VIRTIO_ID_RNG:
      return { queue: 0, out: [], inn: [await zeroed(ENTROPY_BYTES)] };
    case VIRTIO_ID_BLOCK:
      return {
        queue: 0,
        out: [await zeroed(VIRTIO_BLK_REQ_HDR_SIZE)],
        inn: [await zeroed(VIRTIO_BLK_SECTOR_SIZE), await zeroed(VIRTIO_BLK_REQ_STATUS_SIZE)],
      };
    case VIRTIO_ID_NET: {
      // Header and frame in separate descriptors: the one layout every device takes (5.1.9.8 legacy framing).
      const long = hasFeature(features, VIRTIO_F_VERSION_1) || hasFeature(features, VIRTIO_NET_F_MRG_RXBUF);
      return {
        queue: TRANSMITQ,
        out: [await zeroed(long ? VIRTIO_NET_HDR_SIZE : VIRTIO_NET_HDR_LEGACY_SIZE), await zeroed(NET_FRAME)],
        inn: [],
      };
    }
    case VIRTIO_ID_CONSOLE:
      return { queue: TRANSMITQ, out: [await zeroed(CONSOLE_BYTES)], inn: [] };
    default:
      return undefined;
  }
}
