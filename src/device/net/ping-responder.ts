/**
 * A network peer small enough to live in a web page: a virtio-net backend that answers ARP requests
 * for its IPv4 address (RFC 826) and ICMP echo requests to it (RFC 792), so that `ping` from the
 * guest works with nothing behind the device. Every other frame is counted and dropped. The guest
 * controls every byte it sends: lengths are checked before each field is read, fragments and
 * malformed headers are ignored.
 */

import { UsageError } from '../../errors.js';
import type { NetBackend, NetBackendPort } from './backend.js';
import { onesComplementSum } from './checksum.js';

const ETH_HEADER = 14;
const ETHERTYPE_IPV4 = 0x0800;
const ETHERTYPE_ARP = 0x0806;
/** ARP for IPv4 over Ethernet: htype 1, ptype 0x0800, hlen 6, plen 4, then the operation. */
const ARP_LENGTH = 28;
const ARP_REQUEST = 1;
const ARP_REPLY = 2;
const IP_PROTO_ICMP = 1;
const ICMP_ECHO_REPLY = 0;
const ICMP_ECHO_REQUEST = 8;
const ICMP_HEADER = 8;
/** The TTL of the replies (the common default). */
const REPLY_TTL = 64;
/** More-fragments flag and fragment offset of the IPv4 flags/offset word. */
const IP_FRAGMENT_MASK = 0x3fff;

/** What the responder did with the frames the guest sent. */
export interface PingResponderStats {
  arpReplies: number;
  echoReplies: number;
  /** Frames that were neither an ARP request for its address nor an echo request to it. */
  ignored: number;
}

export interface PingResponderOptions {
  /** Its IPv4 address, dotted (e.g. "10.0.86.1"). */
  readonly ip: string;
  /** Its MAC address (default 02:76:74:00:00:01, locally administered). */
  readonly mac?: Uint8Array;
}

/** Parses a dotted IPv4 address; UsageError when it is not one. */
function parseIpv4(text: string): Uint8Array {
  const parts = text.split('.');
  const bytes = parts.map((p) => (/^\d{1,3}$/.test(p) ? Number(p) : NaN));
  if (bytes.length !== 4 || bytes.some((b) => !(b <= 255))) throw new UsageError(`${text}: not a dotted IPv4 address`);
  return Uint8Array.from(bytes);
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === b.byteLength && a.every((v, i) => v === b[i]);
}

/** Writes the ones' complement checksum of `bytes` (its field zeroed first) at `field`, big-endian. */
function setChecksum(bytes: Uint8Array, field: number): void {
  bytes[field] = 0;
  bytes[field + 1] = 0;
  const csum = ~onesComplementSum(bytes) & 0xffff;
  bytes[field] = csum >>> 8;
  bytes[field + 1] = csum & 0xff;
}

export class PingResponder implements NetBackend {
  readonly ip: Uint8Array;
  readonly mac: Uint8Array;
  readonly stats: PingResponderStats = { arpReplies: 0, echoReplies: 0, ignored: 0 };
  private port: NetBackendPort | undefined;
  private closed = false;

  constructor(options: PingResponderOptions) {
    this.ip = parseIpv4(options.ip);
    this.mac = Uint8Array.from(options.mac ?? [0x02, 0x76, 0x74, 0x00, 0x00, 0x01]);
    if (this.mac.byteLength !== 6) throw new UsageError(`a MAC address has 6 bytes, not ${this.mac.byteLength}`);
  }

  attach(port: NetBackendPort): void {
    this.port = port;
    port.setLinkUp(true);
  }

  send(frame: Uint8Array): void {
    // The reply is built here, in fresh memory: `frame` is only lent for this call.
    const reply = this.answer(frame);
    if (reply === undefined) {
      this.stats.ignored++;
      return;
    }
    // Delivered after the guest's notify returns, not inside it (the device is mid-transmit).
    queueMicrotask(() => {
      if (!this.closed) this.port?.receive(reply);
    });
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  /** The reply to `frame`, if it is a request this responder answers. */
  private answer(frame: Uint8Array): Uint8Array | undefined {
    if (frame.byteLength < ETH_HEADER) return undefined;
    const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
    const type = view.getUint16(12);
    if (type === ETHERTYPE_ARP) return this.arpReply(frame, view);
    if (type === ETHERTYPE_IPV4) return this.echoReply(frame, view);
    return undefined;
  }

  private arpReply(frame: Uint8Array, view: DataView): Uint8Array | undefined {
    const a = ETH_HEADER;
    if (frame.byteLength < a + ARP_LENGTH) return undefined;
    const ipv4OverEthernet =
      view.getUint16(a) === 1 && view.getUint16(a + 2) === ETHERTYPE_IPV4 && frame[a + 4] === 6 && frame[a + 5] === 4;
    if (!ipv4OverEthernet || view.getUint16(a + 6) !== ARP_REQUEST) return undefined;
    if (!equalBytes(frame.subarray(a + 24, a + 28), this.ip)) return undefined;
    const senderMac = frame.slice(a + 8, a + 14);
    const senderIp = frame.slice(a + 14, a + 18);
    const reply = new Uint8Array(a + ARP_LENGTH);
    reply.set(senderMac, 0);
    reply.set(this.mac, 6);
    reply.set(frame.subarray(12, a + 6), 12); // ethertype and the ARP header's fixed part
    reply[a + 7] = ARP_REPLY;
    reply.set(this.mac, a + 8);
    reply.set(this.ip, a + 14);
    reply.set(senderMac, a + 18);
    reply.set(senderIp, a + 24);
    this.stats.arpReplies++;
    return reply;
  }

  private echoReply(frame: Uint8Array, view: DataView): Uint8Array | undefined {
    const ip = ETH_HEADER;
    if (frame.byteLength < ip + 20) return undefined;
    const ihl = (frame[ip]! & 0x0f) * 4;
    const total = view.getUint16(ip + 2);
    const wellFormed = frame[ip]! >>> 4 === 4 && ihl >= 20 && total >= ihl + ICMP_HEADER && ip + total <= frame.byteLength;
    if (!wellFormed || (view.getUint16(ip + 6) & IP_FRAGMENT_MASK) !== 0 || frame[ip + 9] !== IP_PROTO_ICMP) return undefined;
    if (!equalBytes(frame.subarray(ip + 16, ip + 20), this.ip) || frame[ip + ihl] !== ICMP_ECHO_REQUEST) return undefined;
    const reply = frame.slice(0, ip + total);
    reply.set(frame.subarray(6, 12), 0);
    reply.set(this.mac, 6);
    reply.set(this.ip, ip + 12);
    reply.set(frame.subarray(ip + 12, ip + 16), ip + 16);
    reply[ip + 8] = REPLY_TTL;
    setChecksum(reply.subarray(ip, ip + ihl), 10);
    reply[ip + ihl] = ICMP_ECHO_REPLY;
    setChecksum(reply.subarray(ip + ihl), 2);
    this.stats.echoReplies++;
    return reply;
  }
}
