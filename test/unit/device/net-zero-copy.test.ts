/**
 * The zero-copy backend contract (src/device/net/backend.ts): send() lends the frame for the call
 * only, the receive side copies straight into the guest's buffer, and neither lets a guest that
 * rewrites its buffers meanwhile move a device write outside the chain it was given.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { onesComplementSum } from '../../../src/device/net/checksum.js';
import type { NetBackend, NetBackendPort } from '../../../src/device/net/backend.js';
import { createMemoryNetPair } from '../../../src/device/net/memory-pair.js';
import { VirtioNetDevice } from '../../../src/device/net/net-device.js';
import { RamDma } from '../../../src/bus/ram-dma.js';
import { ArrayGuestMemory } from '../../../src/memory/guest-memory.js';
import { deviceRing, driverRing } from '../../../src/queue/rings.js';
import { featureSet, VIRTIO_F_VERSION_1 } from '../../../src/spec/features.js';
import * as N from '../../../src/spec/net.js';
import { VIRTQ_DESC_LEN, VIRTQ_DESC_SIZE } from '../../../src/spec/ring.js';
import { activateOnRing } from '../../helpers/device-harness.js';
import { concat, ethFrame, mac } from '../../helpers/net-frames.js';

const OWN = mac(0x02, 0, 0, 0, 0, 0x01);
const PEER = mac(0x02, 0, 0, 0, 0, 0x02);
const TX = N.netTxQueueIndex(0);
const V1 = featureSet(VIRTIO_F_VERSION_1);
const HDR = N.VIRTIO_NET_HDR_SIZE;

/** A backend that keeps the frame it is lent (against the contract) beside a copy of it. */
class KeepingBackend implements NetBackend {
  readonly kept: Uint8Array[] = [];
  readonly copies: Uint8Array[] = [];
  attach(): void {}
  send(frame: Uint8Array): void {
    this.kept.push(frame);
    this.copies.push(frame.slice());
  }
  async close(): Promise<void> {}
}

function txDevice(features = V1) {
  const backend = new KeepingBackend();
  const dev = new VirtioNetDevice({ backend, mac: OWN });
  const h = activateOnRing('split', dev, features);
  return { backend, dev, h, q: h.q(TX) };
}

function header(flags = 0, csumStart = 0, csumOffset = 0): Uint8Array {
  const out = new Uint8Array(HDR);
  out[N.VIRTIO_NET_HDR_FLAGS] = flags;
  out[N.VIRTIO_NET_HDR_CSUM_START] = csumStart & 0xff;
  out[N.VIRTIO_NET_HDR_CSUM_START + 1] = csumStart >> 8;
  out[N.VIRTIO_NET_HDR_CSUM_OFFSET] = csumOffset & 0xff;
  out[N.VIRTIO_NET_HDR_CSUM_OFFSET + 1] = csumOffset >> 8;
  return out;
}

describe('virtio-net transmit: the frame is lent for the send() call only', () => {
  it('a frame in one buffer is a view of it: a backend that keeps it sees the guest reuse the buffer, its copy does not', () => {
    const { backend, dev, q } = txDevice();
    const frame = ethFrame(PEER, OWN, 100);
    const head = q.addChain({ readable: [concat(header(), frame)] });
    dev.queueNotify(TX);
    assert.deepEqual(q.readUsed(), [{ id: head, len: 0 }]);
    // The chain is used: the guest may write its buffer again.
    const at = q.buffers(head).readable[0]!.addr;
    q.memory.write(at + HDR, new Uint8Array(frame.length).fill(0x5a));
    assert.deepEqual(backend.copies[0], frame, 'the backend that copied kept the frame');
    assert.ok(
      backend.kept[0]!.every((b) => b === 0x5a),
      'the lent view shows what the guest wrote after the call',
    );
  });

  it('a frame split over buffers comes from the reader`s scratch, which the next frame reuses', () => {
    const { backend, dev, q } = txDevice();
    const first = ethFrame(PEER, OWN, 200);
    const second = ethFrame(PEER, OWN, 200, 0x88b6);
    // The header split over two buffers, the frame over four.
    const split = (f: Uint8Array) => [
      header().subarray(0, 5),
      header().subarray(5),
      f.subarray(0, 1),
      f.subarray(1, 60),
      f.subarray(60, 61),
      f.subarray(61),
    ];
    q.addChain({ readable: split(first) });
    q.addChain({ readable: split(second) });
    dev.queueNotify(TX);
    assert.equal(q.readUsed().length, 2);
    assert.deepEqual(backend.copies, [first, second], 'each frame reached the backend whole, in order');
    assert.deepEqual(backend.kept[0], second, 'the first frame kept past its call now holds the second');
    assert.equal(dev.stats.txErrors, 0);
  });

  it('NEEDS_CSUM: the checksum is completed in the device`s copy, never in the guest`s device-readable buffer', () => {
    const { backend, dev, q } = txDevice(V1 | featureSet(N.VIRTIO_NET_F_CSUM));
    // A UDP-like payload: checksum field at offset 6 of the part from csum_start (14) on.
    const frame = ethFrame(PEER, OWN, 64, 0x0800);
    frame[14 + 6] = 0;
    frame[14 + 7] = 0;
    const sent = concat(header(N.VIRTIO_NET_HDR_F_NEEDS_CSUM, 14, 6), frame);
    const head = q.addChain({ readable: [sent] });
    const at = q.buffers(head).readable[0]!.addr;
    dev.queueNotify(TX);
    assert.deepEqual(q.memory.view(at, sent.length), sent, 'the guest buffer is exactly as the driver wrote it');
    const out = backend.copies[0]!;
    assert.equal(onesComplementSum(out.subarray(14)), 0xffff, 'the frame the backend got has a valid checksum');
    assert.notEqual(backend.kept[0]!.buffer, q.memory.view(at, 1).buffer, 'a NEEDS_CSUM frame is not lent from guest memory');
  });
});

/** Two devices cabled by the memory pair on ONE guest memory (a guest with two NICs looped together). */
function loopedPair(hook: (memory: ArrayGuestMemory) => void) {
  const SIZE = 16;
  const RAM = 1 << 20;
  const features = featureSet(VIRTIO_F_VERSION_1, N.VIRTIO_NET_F_MRG_RXBUF);
  const memory = new ArrayGuestMemory(RAM);
  const dma = new RamDma(memory, 0, RAM);
  const [endA, endB] = createMemoryNetPair();
  // A's end calls the hook (the guest acting) inside send(), before the frame crosses.
  const hooked: NetBackend = {
    attach: (port: NetBackendPort) => endA.attach(port),
    send: (frame) => {
      hook(memory);
      endA.send(frame);
    },
    close: () => endA.close(),
  };
  const devices = [hooked, endB].map((backend, n) => {
    const device = new VirtioNetDevice({ backend, queueSize: SIZE, mac: mac(0x02, 0, 0, 0, 0, n + 1) });
    const rings = [0, 1].map((index) => driverRing<number>({ index, size: SIZE, dma, features, layout: 'separate' }));
    const queues = rings.map((r) => deviceRing({ index: r.index, size: SIZE, memory, areas: r.areas, features }));
    const resets: Error[] = [];
    const notified: number[] = [];
    device.attach({ memory, configChanged: () => {}, usedBuffers: (i) => void notified.push(i), needsReset: (e) => void resets.push(e) });
    device.activate({ features, queues });
    return { device, rx: rings[0]!, tx: rings[1]!, resets, notified };
  });
  return { memory, dma, a: devices[0]!, b: devices[1]!, size: SIZE };
}

/**
 * A frame of 414 bytes from A to B, B's four 128-byte receive buffers overlapping A's transmit
 * buffer; `guest` runs inside A's send() (before the frame crosses) and returns what it changed
 * only through the rings' used areas and B's receive buffers may differ from the image it leaves.
 */
async function overlappingSend(guest: (m: ArrayGuestMemory, rx: { desc: number; buffers: number }) => void) {
  const frame = ethFrame(mac(0x02, 0, 0, 0, 0, 2), mac(0x02, 0, 0, 0, 0, 1), 400);
  let expected = new Uint8Array(0);
  let rx = { desc: 0, buffers: 0 };
  const { memory, dma, a, b, size } = loopedPair((m) => {
    guest(m, rx);
    expected = m.bytes.slice();
  });
  const tx = dma.alloc(HDR + frame.length, 16);
  tx.bytes.set(frame, HDR);
  rx = { desc: b.rx.areas.desc, buffers: tx.addr + 4 };
  for (let k = 0; k < 4; k++) b.rx.add([], [{ addr: rx.buffers + k * 128, len: 128 }], k);
  b.rx.publishSync();
  a.tx.add([{ addr: tx.addr, len: HDR + frame.length }], [], 0);
  a.tx.publishSync();
  a.device.queueNotify(1);
  await Promise.resolve();
  assert.deepEqual(a.tx.reapSync().length, 1, 'the transmit chain was used');
  const allowed = (addr: number) =>
    (addr >= rx.buffers && addr < rx.buffers + 4 * 128) ||
    [a.rx, a.tx, b.rx, b.tx].some((r) => addr >= r.areas.device && addr < r.areas.device + 8 * size + 6);
  const after = memory.bytes;
  let outside = 0;
  for (let addr = 0; addr < after.length; addr++) if (after[addr] !== expected[addr] && !allowed(addr)) outside++;
  return { a, b, frame, outside, used: b.rx.reapSync() };
}

describe('virtio-net through the memory pair: a guest rewriting its buffers mid-call', () => {
  it('rewriting the frame being lent, into receive buffers that overlap it: the device writes only within the receive chain', async () => {
    const { a, b, frame, outside, used } = await overlappingSend((m, rx) => m.write(rx.buffers, new Uint8Array(64).fill(0xaa)));
    assert.deepEqual([a.resets, b.resets], [[], []]);
    assert.equal(outside, 0, 'bytes changed outside the receive buffers and used rings');
    assert.equal(used.length, 4, 'the frame took the four buffers it needed');
    assert.equal(
      used.reduce((n, u) => n + u.len, 0),
      HDR + frame.length,
    );
  });

  it('growing the posted receive descriptors to hostile lengths: the receiving device stops, nothing is written', async () => {
    const { a, b, outside, used } = await overlappingSend((m, rx) => {
      for (let d = 0; d < 16; d++) m.write32(rx.desc + d * VIRTQ_DESC_SIZE + VIRTQ_DESC_LEN, 0xffff_0000);
    });
    assert.deepEqual(a.resets, []);
    assert.equal(b.resets.length, 1, 'the receiving device reported the guest fault');
    assert.equal(outside, 0);
    assert.deepEqual(used, []);
  });

  it('the memory pair places each frame within send() and notifies the receiver once per burst, after the sender returns', async () => {
    const { dma, a, b } = loopedPair(() => {});
    const frames = [0, 1, 2].map((k) => ethFrame(mac(0x02, 0, 0, 0, 0, 2), mac(0x02, 0, 0, 0, 0, 1), 50 + k));
    for (const f of frames) {
      const buf = dma.alloc(HDR + f.length, 16);
      buf.bytes.set(f, HDR);
      a.tx.add([{ addr: buf.addr, len: HDR + f.length }], [], 0);
    }
    const rxBufs = frames.map(() => dma.alloc(256, 16));
    rxBufs.forEach((buf, k) => b.rx.add([], [{ addr: buf.addr, len: 256 }], k));
    a.tx.publishSync();
    b.rx.publishSync();
    a.device.queueNotify(1);
    // Placed already (the used ring holds them), but the receiving driver is not told inside A's notify.
    assert.deepEqual(b.notified, [], "no notification of B inside A's transmit");
    await Promise.resolve();
    assert.deepEqual(b.notified, [0], 'one notification for the burst');
    const got = b.rx.reapSync();
    assert.deepEqual(
      got.map((u) => u.len),
      frames.map((f) => HDR + f.length),
    );
    got.forEach((u, k) => assert.deepEqual(rxBufs[u.token]!.bytes.subarray(HDR, u.len), frames[k]));
  });
});
