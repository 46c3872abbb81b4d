/**
 * The host end of a guest's virtio-net link for tests: a NetBackend that plays one IPv4 host. It
 * answers ARP requests for its address and ICMP echo requests (the guest's busybox has ping but no
 * UDP client). Everything it saw and answered is counted, with the echo payload sizes.
 */

import type { NetBackend, NetBackendPort } from '../../src/device/net/backend.js';
import { onesComplementSum } from '../../src/device/net/checksum.js';

const ETH_HLEN = 14;
const ETHERTYPE_IPV4 = 0x0800;
const ETHERTYPE_ARP = 0x0806;
const ARP_REQUEST = 1;
const ARP_REPLY = 2;
const IPPROTO_ICMP = 1;
const ICMP_ECHO_REQUEST = 8;
const ICMP_ECHO_REPLY = 0;

export interface ResponderCounts {
  arpReplies: number;
  echoReplies: number;
  /** Frames the responder did not understand or was not addressed by. */
  ignored: number;
}

function ipv4(text: string): Uint8Array {
  return Uint8Array.from(text.split('.').map(Number));
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === b.byteLength && a.every((x, i) => x === b[i]);
}

export class NetResponder implements NetBackend {
  readonly counts: ResponderCounts = { arpReplies: 0, echoReplies: 0, ignored: 0 };
  /** ICMP message length (header and payload) of each echo request answered. */
  readonly echoLengths: number[] = [];
  /** The sequence number of each echo request answered, in order (to tell lost or repeated frames). */
  readonly echoSeqs: number[] = [];
  private port: NetBackendPort | undefined;
  private readonly ip: Uint8Array;

  constructor(
    address: string,
    readonly mac: Uint8Array,
  ) {
    this.ip = ipv4(address);
  }

  attach(port: NetBackendPort): void {
    this.port = port;
  }

  async close(): Promise<void> {}

  send(frame: Uint8Array): void {
    const dv = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
    if (frame.byteLength < ETH_HLEN) return void this.counts.ignored++;
    const type = dv.getUint16(12);
    const reply = type === ETHERTYPE_ARP ? this.arp(frame, dv) : type === ETHERTYPE_IPV4 ? this.ipv4(frame, dv) : undefined;
    if (reply === undefined) this.counts.ignored++;
    // Answer after the device's send returns, as a wire would.
    else queueMicrotask(() => this.port?.receive(reply));
  }

  private arp(frame: Uint8Array, dv: DataView): Uint8Array | undefined {
    const a = ETH_HLEN;
    if (frame.byteLength < a + 28 || dv.getUint16(a + 6) !== ARP_REQUEST || !equal(frame.subarray(a + 24, a + 28), this.ip))
      return undefined;
    const out = new Uint8Array(ETH_HLEN + 28);
    const o = new DataView(out.buffer);
    out.set(frame.subarray(6, 12), 0);
    out.set(this.mac, 6);
    o.setUint16(12, ETHERTYPE_ARP);
    out.set(frame.subarray(a, a + 6), a); // htype, ptype, hlen, plen as asked
    o.setUint16(a + 6, ARP_REPLY);
    out.set(this.mac, a + 8);
    out.set(this.ip, a + 14);
    out.set(frame.subarray(a + 8, a + 18), a + 18); // the asker's MAC and IP
    this.counts.arpReplies++;
    return out;
  }

  private ipv4(frame: Uint8Array, dv: DataView): Uint8Array | undefined {
    const i = ETH_HLEN;
    if (frame.byteLength < i + 20) return undefined;
    const ihl = (frame[i]! & 0xf) * 4;
    const total = dv.getUint16(i + 2);
    if (!equal(frame.subarray(i + 16, i + 20), this.ip) || i + total > frame.byteLength || ihl < 20) return undefined;
    const proto = frame[i + 9]!;
    const body = frame.subarray(i + ihl, i + total);
    if (proto !== IPPROTO_ICMP || body[0] !== ICMP_ECHO_REQUEST) return undefined;
    const answer = Uint8Array.from(body);
    answer[0] = ICMP_ECHO_REPLY;
    answer[2] = answer[3] = 0;
    const sum = ~onesComplementSum(answer) & 0xffff;
    answer[2] = sum >> 8;
    answer[3] = sum & 0xff;
    this.counts.echoReplies++;
    this.echoLengths.push(body.byteLength);
    this.echoSeqs.push(body.byteLength >= 8 ? (body[6]! << 8) | body[7]! : -1);
    const out = new Uint8Array(ETH_HLEN + 20 + answer.byteLength);
    const o = new DataView(out.buffer);
    out.set(frame.subarray(6, 12), 0);
    out.set(this.mac, 6);
    o.setUint16(12, ETHERTYPE_IPV4);
    o.setUint8(i, 0x45);
    o.setUint16(i + 2, 20 + answer.byteLength);
    o.setUint8(i + 8, 64); // TTL
    o.setUint8(i + 9, proto);
    out.set(this.ip, i + 12);
    out.set(frame.subarray(i + 12, i + 16), i + 16);
    o.setUint16(i + 10, ~onesComplementSum(out.subarray(i, i + 20)) & 0xffff);
    out.set(answer, i + 20);
    return out;
  }
}
