/** Network device constants and layouts (spec 5.1 "Network Device"), named as the spec names them. */

import type { FeatureRequirement } from './features.js';

// 5.1.3 Feature bits.
export const VIRTIO_NET_F_CSUM = 0;
export const VIRTIO_NET_F_GUEST_CSUM = 1;
export const VIRTIO_NET_F_CTRL_GUEST_OFFLOADS = 2;
export const VIRTIO_NET_F_MTU = 3;
export const VIRTIO_NET_F_MAC = 5;
export const VIRTIO_NET_F_GUEST_TSO4 = 7;
export const VIRTIO_NET_F_GUEST_TSO6 = 8;
export const VIRTIO_NET_F_GUEST_ECN = 9;
export const VIRTIO_NET_F_GUEST_UFO = 10;
export const VIRTIO_NET_F_HOST_TSO4 = 11;
export const VIRTIO_NET_F_HOST_TSO6 = 12;
export const VIRTIO_NET_F_HOST_ECN = 13;
export const VIRTIO_NET_F_HOST_UFO = 14;
export const VIRTIO_NET_F_MRG_RXBUF = 15;
export const VIRTIO_NET_F_STATUS = 16;
export const VIRTIO_NET_F_CTRL_VQ = 17;
export const VIRTIO_NET_F_CTRL_RX = 18;
export const VIRTIO_NET_F_CTRL_VLAN = 19;
export const VIRTIO_NET_F_CTRL_RX_EXTRA = 20;
export const VIRTIO_NET_F_GUEST_ANNOUNCE = 21;
export const VIRTIO_NET_F_MQ = 22;
export const VIRTIO_NET_F_CTRL_MAC_ADDR = 23;
export const VIRTIO_NET_F_DEVICE_STATS = 50;
export const VIRTIO_NET_F_HASH_TUNNEL = 51;
export const VIRTIO_NET_F_VQ_NOTF_COAL = 52;
export const VIRTIO_NET_F_NOTF_COAL = 53;
export const VIRTIO_NET_F_GUEST_USO4 = 54;
export const VIRTIO_NET_F_GUEST_USO6 = 55;
export const VIRTIO_NET_F_HOST_USO = 56;
export const VIRTIO_NET_F_HASH_REPORT = 57;
export const VIRTIO_NET_F_GUEST_HDRLEN = 59;
export const VIRTIO_NET_F_RSS = 60;
export const VIRTIO_NET_F_RSC_EXT = 61;
export const VIRTIO_NET_F_STANDBY = 62;
export const VIRTIO_NET_F_SPEED_DUPLEX = 63;
export const VIRTIO_NET_F_RSS_CONTEXT = 64;
export const VIRTIO_NET_F_GUEST_UDP_TUNNEL_GSO = 65;
export const VIRTIO_NET_F_GUEST_UDP_TUNNEL_GSO_CSUM = 66;
export const VIRTIO_NET_F_HOST_UDP_TUNNEL_GSO = 67;
export const VIRTIO_NET_F_HOST_UDP_TUNNEL_GSO_CSUM = 68;
/** 5.1.3.2 Legacy: VIRTIO_NET_F_GSO (device handles packets with any GSO type). */
export const VIRTIO_NET_F_GSO = 6;

export const VIRTIO_NET_FEATURE_NAMES: ReadonlyMap<number, string> = new Map([
  [VIRTIO_NET_F_CSUM, 'CSUM'],
  [VIRTIO_NET_F_GUEST_CSUM, 'GUEST_CSUM'],
  [VIRTIO_NET_F_CTRL_GUEST_OFFLOADS, 'CTRL_GUEST_OFFLOADS'],
  [VIRTIO_NET_F_MTU, 'MTU'],
  [VIRTIO_NET_F_MAC, 'MAC'],
  [VIRTIO_NET_F_GSO, 'GSO'],
  [VIRTIO_NET_F_GUEST_TSO4, 'GUEST_TSO4'],
  [VIRTIO_NET_F_GUEST_TSO6, 'GUEST_TSO6'],
  [VIRTIO_NET_F_GUEST_ECN, 'GUEST_ECN'],
  [VIRTIO_NET_F_GUEST_UFO, 'GUEST_UFO'],
  [VIRTIO_NET_F_HOST_TSO4, 'HOST_TSO4'],
  [VIRTIO_NET_F_HOST_TSO6, 'HOST_TSO6'],
  [VIRTIO_NET_F_HOST_ECN, 'HOST_ECN'],
  [VIRTIO_NET_F_HOST_UFO, 'HOST_UFO'],
  [VIRTIO_NET_F_MRG_RXBUF, 'MRG_RXBUF'],
  [VIRTIO_NET_F_STATUS, 'STATUS'],
  [VIRTIO_NET_F_CTRL_VQ, 'CTRL_VQ'],
  [VIRTIO_NET_F_CTRL_RX, 'CTRL_RX'],
  [VIRTIO_NET_F_CTRL_VLAN, 'CTRL_VLAN'],
  [VIRTIO_NET_F_CTRL_RX_EXTRA, 'CTRL_RX_EXTRA'],
  [VIRTIO_NET_F_GUEST_ANNOUNCE, 'GUEST_ANNOUNCE'],
  [VIRTIO_NET_F_MQ, 'MQ'],
  [VIRTIO_NET_F_CTRL_MAC_ADDR, 'CTRL_MAC_ADDR'],
  [VIRTIO_NET_F_DEVICE_STATS, 'DEVICE_STATS'],
  [VIRTIO_NET_F_HASH_TUNNEL, 'HASH_TUNNEL'],
  [VIRTIO_NET_F_VQ_NOTF_COAL, 'VQ_NOTF_COAL'],
  [VIRTIO_NET_F_NOTF_COAL, 'NOTF_COAL'],
  [VIRTIO_NET_F_GUEST_USO4, 'GUEST_USO4'],
  [VIRTIO_NET_F_GUEST_USO6, 'GUEST_USO6'],
  [VIRTIO_NET_F_HOST_USO, 'HOST_USO'],
  [VIRTIO_NET_F_HASH_REPORT, 'HASH_REPORT'],
  [VIRTIO_NET_F_GUEST_HDRLEN, 'GUEST_HDRLEN'],
  [VIRTIO_NET_F_RSS, 'RSS'],
  [VIRTIO_NET_F_RSC_EXT, 'RSC_EXT'],
  [VIRTIO_NET_F_STANDBY, 'STANDBY'],
  [VIRTIO_NET_F_SPEED_DUPLEX, 'SPEED_DUPLEX'],
  [VIRTIO_NET_F_RSS_CONTEXT, 'RSS_CONTEXT'],
  [VIRTIO_NET_F_GUEST_UDP_TUNNEL_GSO, 'GUEST_UDP_TUNNEL_GSO'],
  [VIRTIO_NET_F_GUEST_UDP_TUNNEL_GSO_CSUM, 'GUEST_UDP_TUNNEL_GSO_CSUM'],
  [VIRTIO_NET_F_HOST_UDP_TUNNEL_GSO, 'HOST_UDP_TUNNEL_GSO'],
  [VIRTIO_NET_F_HOST_UDP_TUNNEL_GSO_CSUM, 'HOST_UDP_TUNNEL_GSO_CSUM'],
]);

/**
 * 5.1.3.1 Feature bit requirements: each feature with the features it needs, as groups of which every
 * group needs one member ("requires A or B" is one group of two). The two "SHOULD NOT negotiate ...
 * without VIRTIO_NET_F_CTRL_VQ" of 5.1.4.2 (CTRL_RX_EXTRA, HASH_REPORT) are kept here too.
 */
export const VIRTIO_NET_FEATURE_REQUIREMENTS: readonly FeatureRequirement[] = [
  { feature: VIRTIO_NET_F_GUEST_TSO4, requires: [[VIRTIO_NET_F_GUEST_CSUM]] },
  { feature: VIRTIO_NET_F_GUEST_TSO6, requires: [[VIRTIO_NET_F_GUEST_CSUM]] },
  { feature: VIRTIO_NET_F_GUEST_ECN, requires: [[VIRTIO_NET_F_GUEST_TSO4, VIRTIO_NET_F_GUEST_TSO6]] },
  { feature: VIRTIO_NET_F_GUEST_UFO, requires: [[VIRTIO_NET_F_GUEST_CSUM]] },
  { feature: VIRTIO_NET_F_GUEST_USO4, requires: [[VIRTIO_NET_F_GUEST_CSUM]] },
  { feature: VIRTIO_NET_F_GUEST_USO6, requires: [[VIRTIO_NET_F_GUEST_CSUM]] },
  {
    feature: VIRTIO_NET_F_GUEST_UDP_TUNNEL_GSO,
    requires: [[VIRTIO_NET_F_GUEST_TSO4], [VIRTIO_NET_F_GUEST_TSO6], [VIRTIO_NET_F_GUEST_USO4], [VIRTIO_NET_F_GUEST_USO6]],
  },
  { feature: VIRTIO_NET_F_GUEST_UDP_TUNNEL_GSO_CSUM, requires: [[VIRTIO_NET_F_GUEST_UDP_TUNNEL_GSO]] },
  { feature: VIRTIO_NET_F_HOST_TSO4, requires: [[VIRTIO_NET_F_CSUM]] },
  { feature: VIRTIO_NET_F_HOST_TSO6, requires: [[VIRTIO_NET_F_CSUM]] },
  { feature: VIRTIO_NET_F_HOST_ECN, requires: [[VIRTIO_NET_F_HOST_TSO4, VIRTIO_NET_F_HOST_TSO6]] },
  { feature: VIRTIO_NET_F_HOST_UFO, requires: [[VIRTIO_NET_F_CSUM]] },
  { feature: VIRTIO_NET_F_HOST_USO, requires: [[VIRTIO_NET_F_CSUM]] },
  {
    feature: VIRTIO_NET_F_HOST_UDP_TUNNEL_GSO,
    requires: [[VIRTIO_NET_F_HOST_TSO4], [VIRTIO_NET_F_HOST_TSO6], [VIRTIO_NET_F_HOST_USO]],
  },
  { feature: VIRTIO_NET_F_HOST_UDP_TUNNEL_GSO_CSUM, requires: [[VIRTIO_NET_F_HOST_UDP_TUNNEL_GSO]] },
  { feature: VIRTIO_NET_F_CTRL_RX, requires: [[VIRTIO_NET_F_CTRL_VQ]] },
  { feature: VIRTIO_NET_F_CTRL_VLAN, requires: [[VIRTIO_NET_F_CTRL_VQ]] },
  { feature: VIRTIO_NET_F_GUEST_ANNOUNCE, requires: [[VIRTIO_NET_F_CTRL_VQ]] },
  { feature: VIRTIO_NET_F_MQ, requires: [[VIRTIO_NET_F_CTRL_VQ]] },
  { feature: VIRTIO_NET_F_CTRL_MAC_ADDR, requires: [[VIRTIO_NET_F_CTRL_VQ]] },
  { feature: VIRTIO_NET_F_NOTF_COAL, requires: [[VIRTIO_NET_F_CTRL_VQ]] },
  { feature: VIRTIO_NET_F_RSC_EXT, requires: [[VIRTIO_NET_F_HOST_TSO4, VIRTIO_NET_F_HOST_TSO6]] },
  { feature: VIRTIO_NET_F_RSS, requires: [[VIRTIO_NET_F_CTRL_VQ]] },
  { feature: VIRTIO_NET_F_VQ_NOTF_COAL, requires: [[VIRTIO_NET_F_CTRL_VQ]] },
  { feature: VIRTIO_NET_F_HASH_TUNNEL, requires: [[VIRTIO_NET_F_CTRL_VQ], [VIRTIO_NET_F_RSS, VIRTIO_NET_F_HASH_REPORT]] },
  { feature: VIRTIO_NET_F_RSS_CONTEXT, requires: [[VIRTIO_NET_F_CTRL_VQ], [VIRTIO_NET_F_RSS]] },
  { feature: VIRTIO_NET_F_CTRL_RX_EXTRA, requires: [[VIRTIO_NET_F_CTRL_VQ]] },
  { feature: VIRTIO_NET_F_HASH_REPORT, requires: [[VIRTIO_NET_F_CTRL_VQ]] },
];

/**
 * 5.1.4 Device configuration layout:
 * struct virtio_net_config { u8 mac[6]; le16 status; le16 max_virtqueue_pairs; le16 mtu; le32 speed;
 * u8 duplex; u8 rss_max_key_size; le16 rss_max_indirection_table_length; le32 supported_hash_types; };
 */
export const VIRTIO_NET_CONFIG_MAC = 0;
export const VIRTIO_NET_CONFIG_STATUS = 6;
export const VIRTIO_NET_CONFIG_MAX_VIRTQUEUE_PAIRS = 8;
export const VIRTIO_NET_CONFIG_MTU = 10;
export const VIRTIO_NET_CONFIG_SPEED = 12;
export const VIRTIO_NET_CONFIG_DUPLEX = 16;
export const VIRTIO_NET_CONFIG_RSS_MAX_KEY_SIZE = 17;
export const VIRTIO_NET_CONFIG_RSS_MAX_INDIRECTION_TABLE_LENGTH = 18;
export const VIRTIO_NET_CONFIG_SUPPORTED_HASH_TYPES = 20;
/** Bytes of the config fields up to and including supported_hash_types. */
export const VIRTIO_NET_CONFIG_SIZE = 24;

/** 5.1.4 status bits. */
export const VIRTIO_NET_S_LINK_UP = 1;
export const VIRTIO_NET_S_ANNOUNCE = 2;

/** 5.1.4: speed unknown and duplex unknown. */
export const VIRTIO_NET_SPEED_UNKNOWN = 0xffff_ffff;
export const VIRTIO_NET_DUPLEX_UNKNOWN = 0xff;
export const VIRTIO_NET_DUPLEX_FULL = 0x01;

/**
 * 5.1.9 struct virtio_net_hdr { u8 flags; u8 gso_type; le16 hdr_len; le16 gso_size; le16 csum_start;
 * le16 csum_offset; le16 num_buffers; }. 12 bytes with VIRTIO_F_VERSION_1 or VIRTIO_NET_F_MRG_RXBUF;
 * 10 bytes (no num_buffers) for a legacy driver without VIRTIO_NET_F_MRG_RXBUF (5.1.9.1).
 */
export const VIRTIO_NET_HDR_FLAGS = 0;
export const VIRTIO_NET_HDR_GSO_TYPE = 1;
export const VIRTIO_NET_HDR_HDR_LEN = 2;
export const VIRTIO_NET_HDR_GSO_SIZE = 4;
export const VIRTIO_NET_HDR_CSUM_START = 6;
export const VIRTIO_NET_HDR_CSUM_OFFSET = 8;
export const VIRTIO_NET_HDR_NUM_BUFFERS = 10;
export const VIRTIO_NET_HDR_SIZE = 12;
export const VIRTIO_NET_HDR_LEGACY_SIZE = 10;

export const VIRTIO_NET_HDR_F_NEEDS_CSUM = 1;
export const VIRTIO_NET_HDR_F_DATA_VALID = 2;
export const VIRTIO_NET_HDR_F_RSC_INFO = 4;

export const VIRTIO_NET_HDR_GSO_NONE = 0;
export const VIRTIO_NET_HDR_GSO_TCPV4 = 1;
export const VIRTIO_NET_HDR_GSO_UDP = 3;
export const VIRTIO_NET_HDR_GSO_TCPV6 = 4;
export const VIRTIO_NET_HDR_GSO_UDP_L4 = 5;
export const VIRTIO_NET_HDR_GSO_ECN = 0x80;

/**
 * 5.1.9.5 Control virtqueue: struct virtio_net_ctrl { u8 class; u8 command; u8 command-specific-data[];
 * u8 ack; }. Class and command are in the device-readable part, ack is the one device-writable byte.
 */
export const VIRTIO_NET_CTRL_HDR_SIZE = 2;
export const VIRTIO_NET_OK = 0;
export const VIRTIO_NET_ERR = 1;

/** 5.1.9.5.1 Packet receive filtering. */
export const VIRTIO_NET_CTRL_RX = 0;
export const VIRTIO_NET_CTRL_RX_PROMISC = 0;
export const VIRTIO_NET_CTRL_RX_ALLMULTI = 1;
export const VIRTIO_NET_CTRL_RX_ALLUNI = 2;
export const VIRTIO_NET_CTRL_RX_NOMULTI = 3;
export const VIRTIO_NET_CTRL_RX_NOUNI = 4;
export const VIRTIO_NET_CTRL_RX_NOBCAST = 5;

/**
 * The feature a VIRTIO_NET_CTRL_RX command needs (5.1.9.5.1.2: PROMISC and ALLMULTI need
 * VIRTIO_NET_F_CTRL_RX, the other four VIRTIO_NET_F_CTRL_RX_EXTRA); undefined for no such command.
 */
export function netRxCommandFeature(command: number): number | undefined {
  if (command === VIRTIO_NET_CTRL_RX_PROMISC || command === VIRTIO_NET_CTRL_RX_ALLMULTI) return VIRTIO_NET_F_CTRL_RX;
  if (command >= VIRTIO_NET_CTRL_RX_ALLUNI && command <= VIRTIO_NET_CTRL_RX_NOBCAST) return VIRTIO_NET_F_CTRL_RX_EXTRA;
  return undefined;
}

/** 5.1.9.5.2 Setting MAC address filtering: struct virtio_net_ctrl_mac { le32 entries; u8 macs[entries][6]; }. */
export const VIRTIO_NET_CTRL_MAC = 1;
export const VIRTIO_NET_CTRL_MAC_TABLE_SET = 0;
export const VIRTIO_NET_CTRL_MAC_ADDR_SET = 1;

/** 5.1.9.5.3 VLAN filtering. */
export const VIRTIO_NET_CTRL_VLAN = 2;
export const VIRTIO_NET_CTRL_VLAN_ADD = 0;
export const VIRTIO_NET_CTRL_VLAN_DEL = 1;

/** 5.1.9.5.4 Gratuitous packet sending. */
export const VIRTIO_NET_CTRL_ANNOUNCE = 3;
export const VIRTIO_NET_CTRL_ANNOUNCE_ACK = 0;

/** 5.1.9.5.6 Automatic receive steering in multiqueue mode: struct virtio_net_ctrl_mq_pairs_set { le16 virtqueue_pairs; }. */
export const VIRTIO_NET_CTRL_MQ = 4;
export const VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET = 0;
export const VIRTIO_NET_CTRL_MQ_RSS_CONFIG = 1;
export const VIRTIO_NET_CTRL_MQ_HASH_CONFIG = 2;
export const VIRTIO_NET_CTRL_MQ_VQ_PAIRS_MIN = 1;
export const VIRTIO_NET_CTRL_MQ_VQ_PAIRS_MAX = 0x8000;

/** 5.1.9.5.9 Offloads state configuration: le64 offloads. */
export const VIRTIO_NET_CTRL_GUEST_OFFLOADS = 5;
export const VIRTIO_NET_CTRL_GUEST_OFFLOADS_SET = 0;

/** Bytes of a MAC address. */
export const ETH_ALEN = 6;

/** Largest frame without segmentation offload: a 65535-byte IP packet, Ethernet header and a VLAN tag. */
export const ETH_MAX_FRAME_NO_GSO = 65_535 + 14 + 4;

/** A random locally administered unicast MAC address (52:54:00 would claim QEMU's OUI). */
export function randomLocalMac(): Uint8Array {
  const mac = new Uint8Array(ETH_ALEN);
  crypto.getRandomValues(mac);
  mac[0] = (mac[0]! & 0xfe) | 0x02;
  return mac;
}

/**
 * 5.1.2 Virtqueues: receiveqN is 2(N-1), transmitqN is 2(N-1)+1, and controlq is 2N where N is
 * max_virtqueue_pairs with VIRTIO_NET_F_MQ negotiated and 1 otherwise.
 */
export function netRxQueueIndex(pair: number): number {
  return 2 * pair;
}
export function netTxQueueIndex(pair: number): number {
  return 2 * pair + 1;
}
export function netCtrlQueueIndex(pairs: number): number {
  return 2 * pairs;
}

/** The fields of struct virtio_net_hdr (5.1.9). */
export interface VirtioNetHdr {
  flags: number;
  gsoType: number;
  hdrLen: number;
  gsoSize: number;
  csumStart: number;
  csumOffset: number;
  /** Only in the 12-byte header; 1 in a 10-byte one. */
  numBuffers: number;
}

/** Header length for the negotiated features (5.1.9.1: 12 bytes with VERSION_1 or MRG_RXBUF). */
export function virtioNetHdrSize(version1: boolean, mrgRxbuf: boolean): number {
  return version1 || mrgRxbuf ? VIRTIO_NET_HDR_SIZE : VIRTIO_NET_HDR_LEGACY_SIZE;
}

/** Decode a 10- or 12-byte virtio_net_hdr from the start of `bytes` (byte reads: no DataView per header). */
export function decodeVirtioNetHdr(bytes: Uint8Array, size: number): VirtioNetHdr {
  if (bytes.length < size) throw new RangeError(`virtio_net_hdr of ${size} bytes in ${bytes.length}`);
  return {
    flags: bytes[VIRTIO_NET_HDR_FLAGS]!,
    gsoType: bytes[VIRTIO_NET_HDR_GSO_TYPE]!,
    hdrLen: le16At(bytes, VIRTIO_NET_HDR_HDR_LEN),
    gsoSize: le16At(bytes, VIRTIO_NET_HDR_GSO_SIZE),
    csumStart: le16At(bytes, VIRTIO_NET_HDR_CSUM_START),
    csumOffset: le16At(bytes, VIRTIO_NET_HDR_CSUM_OFFSET),
    numBuffers: size >= VIRTIO_NET_HDR_SIZE ? le16At(bytes, VIRTIO_NET_HDR_NUM_BUFFERS) : 1,
  };
}

function le16At(bytes: Uint8Array, at: number): number {
  return bytes[at]! | (bytes[at + 1]! << 8);
}

/** Encode a virtio_net_hdr into the first `size` (10 or 12) bytes of `out`. */
export function encodeVirtioNetHdr(hdr: VirtioNetHdr, out: Uint8Array, size: number): void {
  const dv = new DataView(out.buffer, out.byteOffset, size);
  dv.setUint8(VIRTIO_NET_HDR_FLAGS, hdr.flags);
  dv.setUint8(VIRTIO_NET_HDR_GSO_TYPE, hdr.gsoType);
  dv.setUint16(VIRTIO_NET_HDR_HDR_LEN, hdr.hdrLen, true);
  dv.setUint16(VIRTIO_NET_HDR_GSO_SIZE, hdr.gsoSize, true);
  dv.setUint16(VIRTIO_NET_HDR_CSUM_START, hdr.csumStart, true);
  dv.setUint16(VIRTIO_NET_HDR_CSUM_OFFSET, hdr.csumOffset, true);
  if (size >= VIRTIO_NET_HDR_SIZE) dv.setUint16(VIRTIO_NET_HDR_NUM_BUFFERS, hdr.numBuffers, true);
}
