/**
 * A control-virtqueue command parsed from its chain (5.1.9.5): class and command, their data, and the
 * ack byte the device answers in. Parsing checks the shape only; which commands the negotiated
 * features allow is the device's business.
 */

import { RequestShapeError } from '../../errors.js';
import type { DescriptorChain } from '../../queue/types.js';
import {
  ETH_ALEN,
  VIRTIO_NET_CTRL_ANNOUNCE,
  VIRTIO_NET_CTRL_ANNOUNCE_ACK,
  VIRTIO_NET_CTRL_HDR_SIZE,
  VIRTIO_NET_CTRL_MAC,
  VIRTIO_NET_CTRL_MAC_ADDR_SET,
  VIRTIO_NET_CTRL_MAC_TABLE_SET,
  VIRTIO_NET_CTRL_MQ,
  VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET,
  VIRTIO_NET_CTRL_RX,
  VIRTIO_NET_CTRL_RX_NOBCAST,
} from '../../spec/net.js';
import { gatherReadable } from '../chain-bytes.js';

/** Largest command accepted: a class, a command and two MAC tables of 4096 entries. */
export const NET_CTRL_MAX_BYTES = VIRTIO_NET_CTRL_HDR_SIZE + 2 * (4 + 4096 * ETH_ALEN);

export type NetCtrlRequest =
  /** VIRTIO_NET_CTRL_RX: one of PROMISC..NOBCAST turned on or off. */
  | { readonly kind: 'rx-mode'; readonly command: number; readonly on: boolean }
  | { readonly kind: 'mac-table'; readonly unicast: readonly Uint8Array[]; readonly multicast: readonly Uint8Array[] }
  | { readonly kind: 'mac-addr'; readonly mac: Uint8Array }
  | { readonly kind: 'announce-ack' }
  | { readonly kind: 'mq-pairs'; readonly pairs: number }
  /** A class/command this device does not implement: answered VIRTIO_NET_ERR. */
  | { readonly kind: 'unsupported'; readonly class: number; readonly command: number };

/** Parse the command in `chain`. Throws RequestShapeError for a malformed one. */
export function parseNetCtrlRequest(chain: DescriptorChain): NetCtrlRequest {
  if (chain.writableBytes < 1) throw new RequestShapeError(`control chain ${chain.head} has no writable ack byte`);
  const bytes = gatherReadable(chain, NET_CTRL_MAX_BYTES);
  if (bytes.byteLength < VIRTIO_NET_CTRL_HDR_SIZE)
    throw new RequestShapeError(`control chain ${chain.head} is shorter than class + command`);
  const cls = bytes[0]!;
  const command = bytes[1]!;
  const data = bytes.subarray(VIRTIO_NET_CTRL_HDR_SIZE);
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const need = (n: number): void => {
    if (data.byteLength !== n)
      throw new RequestShapeError(`control class ${cls} command ${command}: ${data.byteLength} data bytes, expected ${n}`);
  };
  switch (cls) {
    case VIRTIO_NET_CTRL_RX:
      if (command > VIRTIO_NET_CTRL_RX_NOBCAST) break;
      need(1);
      return { kind: 'rx-mode', command, on: data[0] !== 0 };
    case VIRTIO_NET_CTRL_MAC:
      if (command === VIRTIO_NET_CTRL_MAC_ADDR_SET) {
        need(ETH_ALEN);
        return { kind: 'mac-addr', mac: data.slice() };
      }
      if (command === VIRTIO_NET_CTRL_MAC_TABLE_SET) {
        const unicast = parseMacTable(dv, 0);
        const multicast = parseMacTable(dv, unicast.end);
        need(multicast.end);
        return { kind: 'mac-table', unicast: unicast.macs, multicast: multicast.macs };
      }
      break;
    case VIRTIO_NET_CTRL_ANNOUNCE:
      if (command !== VIRTIO_NET_CTRL_ANNOUNCE_ACK) break;
      need(0);
      return { kind: 'announce-ack' };
    case VIRTIO_NET_CTRL_MQ:
      if (command !== VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET) break;
      need(2);
      return { kind: 'mq-pairs', pairs: dv.getUint16(0, true) };
  }
  return { kind: 'unsupported', class: cls, command };
}

/** struct virtio_net_ctrl_mac { le32 entries; u8 macs[entries][ETH_ALEN]; } at `offset`. */
function parseMacTable(dv: DataView, offset: number): { macs: Uint8Array[]; end: number } {
  if (offset + 4 > dv.byteLength) throw new RequestShapeError('MAC table truncated before its entries count');
  const entries = dv.getUint32(offset, true);
  const start = offset + 4;
  // entries comes from the guest: bound it by the bytes actually present before multiplying.
  if (entries > (dv.byteLength - start) / ETH_ALEN) throw new RequestShapeError(`MAC table of ${entries} entries exceeds the command`);
  const macs: Uint8Array[] = [];
  for (let i = 0; i < entries; i++) {
    macs.push(new Uint8Array(dv.buffer, dv.byteOffset + start + i * ETH_ALEN, ETH_ALEN).slice());
  }
  return { macs, end: start + entries * ETH_ALEN };
}
