// The page's network peer: ARP replies for its address, ICMP echo replies with valid checksums,
// everything else (and every malformed or truncated frame) ignored and counted.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { onesComplementSum } from '../../../src/device/net/checksum.js';
import { PingResponder } from '../../../src/device/net/ping-responder.js';
import { BROADCAST, ethFrame, mac } from '../../helpers/net-frames.js';

const GUEST_MAC = mac(0x52, 0x54, 0, 0x12, 0x34, 0x56);
const GUEST_IP = [10, 0, 86, 2];
const RESPONDER_IP = [10, 0, 86, 1];

/** A responder attached to a port that records what it receives (replies arrive after a microtask). */
function responder(): { r: PingResponder; received: Uint8Array[]; link: boolean[] } {
  const received: Uint8Array[] = [];
  const link: boolean[] = [];
  const r = new PingResponder({ ip: '10.0.86.1' });
  r.attach({
    receive: (f) => received.push(f),
    receiveBatch: (frames) => void received.push(...frames),
    place: (f) => received.push(f),
    notify: () => {},
    setLinkUp: (up) => link.push(up),
  });
  return { r, received, link };
}
const settle = () => new Promise((resolve) => setTimeout(resolve, 0));

function arpRequest(targetIp: number[]): Uint8Array {
  const arp = Uint8Array.of(0, 1, 8, 0, 6, 4, 0, 1, ...GUEST_MAC, ...GUEST_IP, 0, 0, 0, 0, 0, 0, ...targetIp);
  return ethFrame(BROADCAST, GUEST_MAC, arp, 0x0806);
}

function echoRequest(dstIp: number[], payload: number[]): Uint8Array {
  const icmp = Uint8Array.of(8, 0, 0, 0, 0x12, 0x34, 0, 7, ...payload);
  const c = ~onesComplementSum(icmp) & 0xffff;
  icmp[2] = c >> 8;
  icmp[3] = c & 0xff;
  const total = 20 + icmp.byteLength;
  const ip = Uint8Array.of(0x45, 0, total >> 8, total & 0xff, 0xab, 0xcd, 0x40, 0, 64, 1, 0, 0, ...GUEST_IP, ...dstIp);
  const ic = ~onesComplementSum(ip) & 0xffff;
  ip[10] = ic >> 8;
  ip[11] = ic & 0xff;
  const packet = new Uint8Array(total);
  packet.set(ip, 0);
  packet.set(icmp, 20);
  return ethFrame(mac(2, 0x76, 0x74, 0, 0, 1), GUEST_MAC, packet, 0x0800);
}

test('ping responder: link up on attach; an ARP request for its address gets a reply naming its MAC', async () => {
  const { r, received, link } = responder();
  assert.deepEqual(link, [true]);
  r.send(arpRequest(RESPONDER_IP));
  await settle();
  assert.equal(received.length, 1);
  const reply = received[0]!;
  assert.deepEqual([...reply.subarray(0, 6)], [...GUEST_MAC], 'to the asker');
  assert.deepEqual([...reply.subarray(6, 12)], [...r.mac]);
  assert.deepEqual([...reply.subarray(12, 22)], [0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 2], 'ARP reply for IPv4 over Ethernet');
  assert.deepEqual([...reply.subarray(22, 28)], [...r.mac], 'sender MAC');
  assert.deepEqual([...reply.subarray(28, 32)], RESPONDER_IP, 'sender IP');
  assert.deepEqual([...reply.subarray(32, 38)], [...GUEST_MAC], 'target MAC');
  assert.deepEqual([...reply.subarray(38, 42)], GUEST_IP, 'target IP');
  assert.deepEqual(r.stats, { arpReplies: 1, echoReplies: 0, ignored: 0 });
});

test('ping responder: an echo request gets an echo reply with the payload and valid checksums', async () => {
  const { r, received } = responder();
  const payload = Array.from({ length: 57 }, (_, i) => i); // odd length: the checksum's last byte is padded
  r.send(echoRequest(RESPONDER_IP, payload));
  await settle();
  assert.equal(received.length, 1);
  const reply = received[0]!;
  const ip = reply.subarray(14, 34);
  const icmp = reply.subarray(34);
  assert.deepEqual([...reply.subarray(0, 6)], [...GUEST_MAC]);
  assert.deepEqual([...ip.subarray(12, 16)], RESPONDER_IP, 'from the responder');
  assert.deepEqual([...ip.subarray(16, 20)], GUEST_IP, 'to the guest');
  assert.equal(onesComplementSum(ip), 0xffff, 'IPv4 header checksum');
  assert.deepEqual([...icmp.subarray(0, 2)], [0, 0], 'echo reply');
  assert.deepEqual([...icmp.subarray(4, 8)], [0x12, 0x34, 0, 7], 'identifier and sequence kept');
  assert.deepEqual([...icmp.subarray(8)], payload);
  assert.equal(onesComplementSum(icmp), 0xffff, 'ICMP checksum');
  assert.equal(r.stats.echoReplies, 1);
});

test('ping responder: other addresses, other protocols, fragments and truncated frames are ignored', async () => {
  const { r, received } = responder();
  const echo = echoRequest(RESPONDER_IP, [1, 2, 3, 4]);
  const fragment = echo.slice();
  fragment[20] = 0x20; // more fragments
  const udp = echo.slice();
  udp[23] = 17;
  const frames = [
    arpRequest([10, 0, 86, 9]),
    echoRequest([10, 0, 86, 9], [1, 2, 3]),
    fragment,
    udp,
    echo.subarray(0, echo.byteLength - 1), // total length past the frame's end
    arpRequest(RESPONDER_IP).subarray(0, 41),
    echo.subarray(0, 13),
    ethFrame(BROADCAST, GUEST_MAC, 40),
  ];
  for (const f of frames) r.send(f);
  await settle();
  assert.equal(received.length, 0);
  assert.deepEqual(r.stats, { arpReplies: 0, echoReplies: 0, ignored: frames.length });
});

test('ping responder: no reply is delivered after close, and a bad address is refused', async () => {
  const { r, received } = responder();
  r.send(arpRequest(RESPONDER_IP));
  await r.close();
  await settle();
  assert.equal(received.length, 0);
  assert.throws(() => new PingResponder({ ip: '10.0.300.1' }), { code: 'ERR_USAGE' });
  assert.throws(() => new PingResponder({ ip: '10.0.86' }), { code: 'ERR_USAGE' });
});
