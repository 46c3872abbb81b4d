/**
 * The host end of a guest benchmark's network link (bench/guest-net.bench.ts): one IPv4 host that
 * takes the guest's UDP datagrams and checks every byte, and builds the datagrams it sends the guest,
 * with real IPv4 and UDP checksums (so the guest kernel verifies every payload byte). Datagrams follow
 * scripts/guest/vt-udp.c: datagram n carries n (32-bit little-endian), then byte i = (n + i) & 0xff.
 * The guest knows the host's MAC from a static neighbour entry, so there is no ARP.
 */

import { onesComplementSum } from '../src/device/net/checksum.js';

const ETH_HLEN = 14;
const IP_HLEN = 20;
const UDP_HLEN = 8;
const ETHERTYPE_IPV4 = 0x0800;
const IPPROTO_UDP = 17;
/** The guest's receiver and the host's listener. */
export const UDP_PORT = 5001;
const HOST_PORT = 5002;
/** Largest payload (a 1514-byte frame). */
const MAX_PAYLOAD = 1472;

/** pattern[k] = k & 0xff: datagram n's payload from byte 4 is pattern[(n & 0xff) + 4 ...]. */
const PATTERN = Uint8Array.from({ length: MAX_PAYLOAD + 256 }, (_, k) => k & 0xff);

function ipBytes(text: string): Uint8Array {
  return Uint8Array.from(text.split('.').map(Number));
}

/** MAC "02:00:00:00:00:0f" as bytes. */
export function macBytes(text: string): Uint8Array {
  return Uint8Array.from(text.split(':').map((h) => parseInt(h, 16)));
}

/** Counters of what arrived from the guest. */
export interface Arrivals {
  datagrams: number;
  bytes: number;
  /** Datagrams whose length, sequence or payload bytes were wrong. */
  bad: number;
  /** Sequence numbers skipped (datagrams the guest sent that never arrived). */
  lost: number;
  /** Frames that were not UDP datagrams to us (the guest's IPv6 autoconfiguration and the like). */
  other: number;
  firstMs: number;
  lastMs: number;
}

export class UdpHostEnd {
  readonly mac = Uint8Array.of(0x02, 0, 0, 0, 0, 0x02);
  private readonly ip: Uint8Array;
  private readonly ipWord: number;
  private readonly guestIp: Uint8Array;
  private next = 0;
  arrivals: Arrivals = UdpHostEnd.empty();

  constructor(
    readonly hostAddress: string,
    readonly guestAddress: string,
  ) {
    this.ip = ipBytes(hostAddress);
    this.ipWord = new DataView(this.ip.buffer).getUint32(0);
    this.guestIp = ipBytes(guestAddress);
  }

  private static empty(): Arrivals {
    return { datagrams: 0, bytes: 0, bad: 0, lost: 0, other: 0, firstMs: 0, lastMs: 0 };
  }

  /** Start counting afresh (a new run: the guest's numbering starts at 0 again). */
  reset(): void {
    this.arrivals = UdpHostEnd.empty();
    this.next = 0;
  }

  /** A frame from the guest. */
  fromGuest(frame: Uint8Array): void {
    const a = this.arrivals;
    const dv = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
    const ip = ETH_HLEN;
    if (
      frame.byteLength < ip + IP_HLEN + UDP_HLEN ||
      dv.getUint16(12) !== ETHERTYPE_IPV4 ||
      frame[ip + 9] !== IPPROTO_UDP ||
      dv.getUint32(ip + 16) !== this.ipWord
    ) {
      a.other++;
      return;
    }
    const udp = ip + (frame[ip]! & 0xf) * 4;
    if (dv.getUint16(udp + 2) !== UDP_PORT) return void a.other++;
    const payload = frame.subarray(udp + UDP_HLEN, udp + dv.getUint16(udp + 4));
    const now = performance.now();
    if (a.datagrams++ === 0) a.firstMs = now;
    a.lastMs = now;
    a.bytes += payload.byteLength;
    if (payload.byteLength < 4 || udp + dv.getUint16(udp + 4) > frame.byteLength) return void a.bad++;
    const seq = dv.getUint32(udp + UDP_HLEN, true);
    const from = (seq & 0xff) + 4;
    if (Buffer.compare(payload.subarray(4), PATTERN.subarray(from, from + payload.byteLength - 4)) !== 0) a.bad++;
    if (seq >= this.next) {
      a.lost += seq - this.next;
      this.next = seq + 1;
    } else {
      a.bad++;
    }
  }

  /** Datagram `seq` of `size` payload bytes to the guest's MAC, as one Ethernet frame. */
  toGuest(guestMac: Uint8Array, seq: number, size: number): Uint8Array {
    const udpLen = UDP_HLEN + size;
    const frame = new Uint8Array(ETH_HLEN + IP_HLEN + udpLen);
    const dv = new DataView(frame.buffer);
    frame.set(guestMac, 0);
    frame.set(this.mac, 6);
    dv.setUint16(12, ETHERTYPE_IPV4);
    const ip = ETH_HLEN;
    frame[ip] = 0x45;
    dv.setUint16(ip + 2, IP_HLEN + udpLen);
    dv.setUint16(ip + 6, 0x4000); // don't fragment
    frame[ip + 8] = 64;
    frame[ip + 9] = IPPROTO_UDP;
    frame.set(this.ip, ip + 12);
    frame.set(this.guestIp, ip + 16);
    dv.setUint16(ip + 10, ~onesComplementSum(frame.subarray(ip, ip + IP_HLEN)) & 0xffff);
    const udp = ip + IP_HLEN;
    dv.setUint16(udp, HOST_PORT);
    dv.setUint16(udp + 2, UDP_PORT);
    dv.setUint16(udp + 4, udpLen);
    dv.setUint32(udp + UDP_HLEN, seq, true);
    const from = (seq & 0xff) + 4;
    frame.set(PATTERN.subarray(from, from + size - 4), udp + UDP_HLEN + 4);
    // RFC 768: the sum covers a pseudo-header (addresses, protocol, UDP length) and the datagram.
    const pseudo = new Uint8Array(12);
    pseudo.set(this.ip, 0);
    pseudo.set(this.guestIp, 4);
    pseudo[9] = IPPROTO_UDP;
    new DataView(pseudo.buffer).setUint16(10, udpLen);
    let sum = onesComplementSum(pseudo) + onesComplementSum(frame.subarray(udp));
    sum = (sum & 0xffff) + (sum >>> 16);
    const csum = ~sum & 0xffff;
    dv.setUint16(udp + 6, csum === 0 ? 0xffff : csum);
    return frame;
  }
}
