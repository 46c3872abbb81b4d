import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { onesComplementSum } from '../../../src/device/net/checksum.js';
import { VirtioNetDevice } from '../../../src/device/net/net-device.js';
import { featureSet, hasFeature, VIRTIO_F_VERSION_1 } from '../../../src/spec/features.js';
import * as N from '../../../src/spec/net.js';
import { activateOnRing } from '../../helpers/device-harness.js';
import { RING_FORMATS, type RingName } from '../../helpers/ring-formats.js';
import { MockQueue } from '../../../src/testing/mock-queue.js';
import { BROADCAST, concat, ethFrame, mac, RecordingNetBackend } from '../../helpers/net-frames.js';

const OWN = mac(0x02, 0, 0, 0, 0, 0x01);
const OTHER = mac(0x02, 0, 0, 0, 0, 0x99);
const PEER = mac(0x02, 0, 0, 0, 0, 0x02);
const RX = N.netRxQueueIndex(0);
const TX = N.netTxQueueIndex(0);
const CTRL = N.netCtrlQueueIndex(1);
const V1 = featureSet(VIRTIO_F_VERSION_1);
const CTRL_FEATURES = V1 | featureSet(N.VIRTIO_NET_F_CTRL_VQ, N.VIRTIO_NET_F_CTRL_RX, N.VIRTIO_NET_F_MRG_RXBUF);

function hdr(fields: Partial<N.VirtioNetHdr> = {}): Uint8Array {
  const out = new Uint8Array(N.VIRTIO_NET_HDR_SIZE);
  N.encodeVirtioNetHdr(
    { flags: 0, gsoType: 0, hdrLen: 0, gsoSize: 0, csumStart: 0, csumOffset: 0, numBuffers: 0, ...fields },
    out,
    N.VIRTIO_NET_HDR_SIZE,
  );
  return out;
}

interface SetupOptions {
  queuePairs?: number;
  enabled?: number[];
  /** The ring format of every queue (default split). */
  ring?: RingName;
}

function setup(features: bigint, opts: SetupOptions = {}) {
  const backend = new RecordingNetBackend();
  const dev = new VirtioNetDevice({ backend, mac: OWN, queuePairs: opts.queuePairs ?? 1 });
  const h = activateOnRing(opts.ring ?? 'split', dev, features, opts.enabled ? { enabled: opts.enabled } : {});
  return { dev, backend, h };
}

/** Send one control command and return the ack byte the device wrote. */
function ctrl(h: ReturnType<typeof setup>['h'], dev: VirtioNetDevice, index: number, cls: number, cmd: number, data: Uint8Array): number {
  const q = h.q(index);
  const head = q.addChain({ readable: [Uint8Array.of(cls, cmd), data], writable: [1] });
  const ackAddr = q.buffers(head).writable[0]!.addr;
  dev.queueNotify(index);
  assert.deepEqual(q.readUsed(), [{ id: head, len: 1 }]);
  return q.memory.read8(ackAddr);
}

describe('virtio-net device: configuration and features', () => {
  it('lays out mac, status and max_virtqueue_pairs at the 5.1.4 offsets', () => {
    const dev = new VirtioNetDevice({ backend: new RecordingNetBackend(), mac: OWN, queuePairs: 4 });
    for (let i = 0; i < 6; i++) assert.equal(dev.readConfig(N.VIRTIO_NET_CONFIG_MAC + i, 1), OWN[i]);
    assert.equal(dev.readConfig(N.VIRTIO_NET_CONFIG_STATUS, 2), N.VIRTIO_NET_S_LINK_UP);
    assert.equal(dev.readConfig(N.VIRTIO_NET_CONFIG_MAX_VIRTQUEUE_PAIRS, 2), 4);
    assert.equal(dev.queueMaxSizes.length, 9);
    assert.ok(hasFeature(dev.deviceFeatures, N.VIRTIO_NET_F_MQ));
  });

  it('offers no segmentation offload and no MQ with one pair', () => {
    const dev = new VirtioNetDevice({ backend: new RecordingNetBackend() });
    for (const b of [
      N.VIRTIO_NET_F_GUEST_TSO4,
      N.VIRTIO_NET_F_HOST_TSO4,
      N.VIRTIO_NET_F_HOST_UFO,
      N.VIRTIO_NET_F_GUEST_CSUM,
      N.VIRTIO_NET_F_MQ,
    ]) {
      assert.equal(hasFeature(dev.deviceFeatures, b), false, `bit ${b}`);
    }
    for (const b of [N.VIRTIO_NET_F_MAC, N.VIRTIO_NET_F_STATUS, N.VIRTIO_NET_F_MRG_RXBUF, N.VIRTIO_NET_F_CTRL_VQ, N.VIRTIO_NET_F_CSUM]) {
      assert.ok(hasFeature(dev.deviceFeatures, b), `bit ${b}`);
    }
    assert.equal(dev.queueMaxSizes.length, 3);
    // A random MAC is unicast and locally administered.
    assert.equal(dev.mac[0]! & 0x03, 0x02);
  });

  it('reports link changes in status with a configuration change', () => {
    const { dev, h } = setup(V1);
    dev.setLinkUp(false);
    assert.equal(dev.readConfig(N.VIRTIO_NET_CONFIG_STATUS, 2) & N.VIRTIO_NET_S_LINK_UP, 0);
    assert.equal(h.host.configChanges, 1);
    dev.setLinkUp(false);
    assert.equal(h.host.configChanges, 1);
    dev.setLinkUp(true);
    assert.equal(dev.readConfig(N.VIRTIO_NET_CONFIG_STATUS, 2), N.VIRTIO_NET_S_LINK_UP);
    assert.equal(h.host.configChanges, 2);
  });
});

for (const ring of RING_FORMATS)
  describe(`virtio-net device: transmit (${ring} ring)`, () => {
    const setupOn = (features: bigint, opts: SetupOptions = {}) => setup(features, { ...opts, ring });
    it('sends the frame after the 12-byte header, whatever the buffer split', () => {
      const { dev, backend, h } = setupOn(V1);
      const frame = ethFrame(PEER, OWN, 100);
      const head = h
        .q(TX)
        .addChain({ readable: [hdr().subarray(0, 5), concat(hdr().subarray(5), frame.subarray(0, 30)), frame.subarray(30)] });
      dev.queueNotify(TX);
      assert.deepEqual(backend.sent, [frame]);
      assert.deepEqual(h.q(TX).readUsed(), [{ id: head, len: 0 }]);
      assert.deepEqual(h.host.used, [TX]);
      assert.equal(dev.stats.txFrames, 1);
    });

    it('completes a partial checksum (NEEDS_CSUM) in software', () => {
      const { dev, backend, h } = setupOn(V1 | featureSet(N.VIRTIO_NET_F_CSUM));
      // IPv4/UDP from 10.0.0.1 to 10.0.0.2: the driver leaves the pseudo-header sum in the UDP checksum.
      const udp = Uint8Array.from([0x30, 0x39, 0x00, 0x35, 0x00, 0x0d, 0, 0, 0x68, 0x65, 0x6c, 0x6c, 0x6f]);
      const pseudo = Uint8Array.from([10, 0, 0, 1, 10, 0, 0, 2, 0, 17, 0, udp.length]);
      const partial = onesComplementSum(pseudo);
      udp[6] = partial >> 8;
      udp[7] = partial & 0xff;
      const ip = new Uint8Array(20);
      ip[0] = 0x45;
      ip[9] = 17;
      ip.set([10, 0, 0, 1, 10, 0, 0, 2], 12);
      const frame = ethFrame(PEER, OWN, concat(ip, udp), 0x0800);
      h.q(TX).addChain({ readable: [hdr({ flags: N.VIRTIO_NET_HDR_F_NEEDS_CSUM, csumStart: 34, csumOffset: 6 }), frame] });
      dev.queueNotify(TX);
      const sent = backend.sent[0]!;
      assert.equal(onesComplementSum(concat(pseudo, sent.subarray(34))), 0xffff);
      assert.deepEqual(sent.subarray(0, 40), frame.subarray(0, 40));
    });

    it('refuses malformed transmit chains without stopping the queue', () => {
      const { dev, backend, h } = setupOn(V1);
      const q = h.q(TX);
      const withWritable = q.addChain({ readable: [hdr(), ethFrame(PEER, OWN, 10)], writable: [4] });
      const short = q.addChain({ readable: [new Uint8Array(5)] });
      const gso = q.addChain({ readable: [hdr({ gsoType: N.VIRTIO_NET_HDR_GSO_TCPV4 }), ethFrame(PEER, OWN, 10)] });
      const csumOut = q.addChain({
        readable: [hdr({ flags: N.VIRTIO_NET_HDR_F_NEEDS_CSUM, csumStart: 20, csumOffset: 6 }), ethFrame(PEER, OWN, 10)],
      });
      const good = q.addChain({ readable: [hdr(), ethFrame(PEER, OWN, 10)] });
      dev.queueNotify(TX);
      assert.deepEqual(
        q.readUsed().map((u) => u.id),
        [withWritable, short, gso, csumOut, good],
      );
      assert.equal(dev.stats.txErrors, 4);
      assert.equal(backend.sent.length, 1);
      assert.deepEqual(h.host.resets, []);
    });

    // A ring fault forged with the split ring's pokes (the packed ring's faults: test/unit/queue/packed).
    if (ring === 'split')
      it('sets DEVICE_NEEDS_RESET on a ring fault and ignores the queue afterwards', () => {
        const { dev, backend, h } = setupOn(V1);
        const q = h.q(TX);
        assert.ok(q instanceof MockQueue, 'a split ring fault');
        q.setAvailIdx(q.size + 5); // avail.idx ran more than a queue size ahead
        assert.doesNotThrow(() => dev.queueNotify(TX));
        assert.equal(h.host.resets.length, 1);
        assert.equal((h.host.resets[0] as { code?: string }).code, 'ERR_QUEUE_AVAIL_INDEX');
        backend.inject(ethFrame(OWN, PEER, 10));
        assert.equal(dev.stats.rxDropped, 1);
      });
  });

for (const ring of RING_FORMATS)
  describe(`virtio-net device: receive (${ring} ring)`, () => {
    const setupOn = (features: bigint, opts: SetupOptions = {}) => setup(features, { ...opts, ring });
    it('writes header and frame into one buffer without MRG_RXBUF', () => {
      const { backend, h } = setupOn(V1);
      const q = h.q(RX);
      const head = q.addChain({ writable: [N.VIRTIO_NET_HDR_SIZE + 1514] });
      const frame = ethFrame(OWN, PEER, 200);
      backend.inject(frame);
      const bytes = q.readWritten(head, 12 + frame.length);
      assert.deepEqual(q.readUsed(), [{ id: head, len: 12 + frame.length }]);
      const got = N.decodeVirtioNetHdr(bytes, 12);
      assert.equal(got.numBuffers, 1);
      assert.equal(got.flags, 0);
      assert.equal(got.gsoType, N.VIRTIO_NET_HDR_GSO_NONE);
      assert.deepEqual(bytes.subarray(12), frame);
      assert.deepEqual(h.host.used, [RX]);
    });

    // The legacy interface (no VERSION_1) carries the split ring only.
    if (ring === 'split')
      it('uses the 10-byte header for a legacy driver without MRG_RXBUF', () => {
        const { backend, h } = setupOn(0n);
        const q = h.q(RX);
        const head = q.addChain({ writable: [2000] });
        const frame = ethFrame(OWN, PEER, 60);
        backend.inject(frame);
        assert.deepEqual(q.readWritten(head, 10 + frame.length).subarray(10), frame);
        assert.deepEqual(q.readUsed(), [{ id: head, len: 10 + frame.length }]);
      });

    it('spreads a frame over several buffers with MRG_RXBUF and says how many in num_buffers', () => {
      const { dev, backend, h } = setupOn(V1 | featureSet(N.VIRTIO_NET_F_MRG_RXBUF));
      const q = h.q(RX);
      const heads = [
        q.addChain({ writable: [64] }),
        q.addChain({ writable: [40, 24] }),
        q.addChain({ writable: [64] }),
        q.addChain({ writable: [64] }),
      ];
      const frame = ethFrame(OWN, PEER, 150 - 14); // 150 bytes + 12 of header = 64 + 64 + 34
      backend.inject(frame);
      const bytes = concat(q.readWritten(heads[0]!, 64), q.readWritten(heads[1]!, 64), q.readWritten(heads[2]!, 34));
      assert.deepEqual(q.readUsed(), [
        { id: heads[0], len: 64 },
        { id: heads[1], len: 64 },
        { id: heads[2], len: 34 },
      ]);
      assert.equal(N.decodeVirtioNetHdr(bytes, 12).numBuffers, 3);
      assert.deepEqual(bytes.subarray(12), frame);
      // The fourth buffer is still there for the next frame.
      const small = ethFrame(OWN, PEER, 10);
      backend.inject(small);
      assert.deepEqual(q.readUsed(), [{ id: heads[3], len: 12 + small.length }]);
      assert.equal(dev.stats.rxFrames, 2);
    });

    it('drops and counts frames when receive buffers run out, then resumes', () => {
      const { dev, backend, h } = setupOn(V1 | featureSet(N.VIRTIO_NET_F_MRG_RXBUF));
      const q = h.q(RX);
      backend.inject(ethFrame(OWN, PEER, 50));
      assert.equal(dev.stats.rxDropped, 1);
      // Not enough room in total: the buffers stay for later, the frame is dropped.
      q.addChain({ writable: [32] });
      backend.inject(ethFrame(OWN, PEER, 50));
      assert.equal(dev.stats.rxDropped, 2);
      assert.deepEqual(q.readUsed(), []);
      q.addChain({ writable: [64] });
      backend.inject(ethFrame(OWN, PEER, 50));
      assert.equal(q.readUsed().length, 2);
      assert.equal(dev.stats.rxFrames, 1);
      assert.deepEqual(h.host.resets, []);
    });

    it('drops a frame too big for the buffer without MRG_RXBUF but keeps the buffer', () => {
      const { dev, backend, h } = setupOn(V1);
      const q = h.q(RX);
      const head = q.addChain({ writable: [100] });
      backend.inject(ethFrame(OWN, PEER, 200));
      assert.equal(dev.stats.rxOversize, 1);
      backend.inject(ethFrame(OWN, PEER, 20));
      assert.deepEqual(q.readUsed(), [{ id: head, len: 12 + 34 }]);
    });

    it('returns malformed receive chains unused', () => {
      const { dev, backend, h } = setupOn(V1);
      const q = h.q(RX);
      const bad = q.addChain({ readable: [new Uint8Array(4)], writable: [2000] });
      const tiny = q.addChain({ writable: [4] });
      const good = q.addChain({ writable: [2000] });
      backend.inject(ethFrame(OWN, PEER, 20));
      assert.deepEqual(q.readUsed(), [
        { id: bad, len: 0 },
        { id: tiny, len: 0 },
        { id: good, len: 12 + 34 },
      ]);
      assert.equal(dev.stats.rxBadChains, 2);
    });
  });

for (const ring of RING_FORMATS)
  describe(`virtio-net device: control queue (${ring} ring)`, () => {
    const setupOn = (features: bigint, opts: SetupOptions = {}) => setup(features, { ...opts, ring });
    it('filters unicast frames for other MACs once promiscuous mode is off', () => {
      const { dev, backend, h } = setupOn(CTRL_FEATURES);
      const q = h.q(RX);
      for (let i = 0; i < 8; i++) q.addChain({ writable: [256] });
      // Promiscuous at reset (as QEMU): a frame for another MAC arrives.
      backend.inject(ethFrame(OTHER, PEER, 20));
      assert.equal(q.readUsed().length, 1);
      assert.equal(ctrl(h, dev, CTRL, N.VIRTIO_NET_CTRL_RX, N.VIRTIO_NET_CTRL_RX_PROMISC, Uint8Array.of(0)), N.VIRTIO_NET_OK);
      backend.inject(ethFrame(OTHER, PEER, 20));
      assert.equal(q.readUsed().length, 0);
      assert.equal(dev.stats.rxFiltered, 1);
      backend.inject(ethFrame(OWN, PEER, 20));
      backend.inject(ethFrame(BROADCAST, PEER, 20));
      assert.equal(q.readUsed().length, 2);
      // Multicast needs the table or ALLMULTI.
      const group = mac(0x01, 0x00, 0x5e, 0, 0, 1);
      backend.inject(ethFrame(group, PEER, 20));
      assert.equal(q.readUsed().length, 0);
      assert.equal(ctrl(h, dev, CTRL, N.VIRTIO_NET_CTRL_RX, N.VIRTIO_NET_CTRL_RX_ALLMULTI, Uint8Array.of(1)), N.VIRTIO_NET_OK);
      backend.inject(ethFrame(group, PEER, 20));
      assert.equal(q.readUsed().length, 1);
      assert.equal(ctrl(h, dev, CTRL, N.VIRTIO_NET_CTRL_RX, N.VIRTIO_NET_CTRL_RX_PROMISC, Uint8Array.of(1)), N.VIRTIO_NET_OK);
      backend.inject(ethFrame(OTHER, PEER, 20));
      assert.equal(q.readUsed().length, 1);
    });

    it('accepts the unicast and multicast addresses of the MAC table', () => {
      const { dev, backend, h } = setupOn(CTRL_FEATURES);
      const q = h.q(RX);
      for (let i = 0; i < 8; i++) q.addChain({ writable: [256] });
      const group = mac(0x01, 0x00, 0x5e, 0, 0, 7);
      const table = concat(u32(1), OTHER, u32(1), group);
      assert.equal(ctrl(h, dev, CTRL, N.VIRTIO_NET_CTRL_MAC, N.VIRTIO_NET_CTRL_MAC_TABLE_SET, table), N.VIRTIO_NET_OK);
      assert.equal(ctrl(h, dev, CTRL, N.VIRTIO_NET_CTRL_RX, N.VIRTIO_NET_CTRL_RX_PROMISC, Uint8Array.of(0)), N.VIRTIO_NET_OK);
      backend.inject(ethFrame(OTHER, PEER, 20));
      backend.inject(ethFrame(group, PEER, 20));
      backend.inject(ethFrame(mac(0x02, 0, 0, 0, 0, 0x55), PEER, 20));
      assert.equal(q.readUsed().length, 2);
      assert.equal(dev.stats.rxFiltered, 1);
      // A table whose entries overrun the command is refused.
      assert.equal(
        ctrl(h, dev, CTRL, N.VIRTIO_NET_CTRL_MAC, N.VIRTIO_NET_CTRL_MAC_TABLE_SET, concat(u32(1000), OTHER, u32(0))),
        N.VIRTIO_NET_ERR,
      );
    });

    it('refuses commands whose feature was not negotiated, and unknown ones', () => {
      const { dev, h } = setupOn(V1 | featureSet(N.VIRTIO_NET_F_CTRL_VQ));
      assert.equal(ctrl(h, dev, CTRL, N.VIRTIO_NET_CTRL_RX, N.VIRTIO_NET_CTRL_RX_PROMISC, Uint8Array.of(0)), N.VIRTIO_NET_ERR);
      assert.equal(ctrl(h, dev, CTRL, N.VIRTIO_NET_CTRL_VLAN, N.VIRTIO_NET_CTRL_VLAN_ADD, Uint8Array.of(1, 0)), N.VIRTIO_NET_ERR);
      assert.equal(ctrl(h, dev, CTRL, N.VIRTIO_NET_CTRL_MAC, N.VIRTIO_NET_CTRL_MAC_ADDR_SET, OTHER), N.VIRTIO_NET_ERR);
      assert.equal(dev.filter.modes.promisc, true);
      assert.equal(dev.stats.ctrlErrors, 3);
    });

    it('answers a control chain without an ack byte with an empty used element', () => {
      const { dev, h } = setupOn(CTRL_FEATURES);
      const head = h.q(CTRL).addChain({ readable: [Uint8Array.of(N.VIRTIO_NET_CTRL_RX, N.VIRTIO_NET_CTRL_RX_PROMISC, 0)] });
      dev.queueNotify(CTRL);
      assert.deepEqual(h.q(CTRL).readUsed(), [{ id: head, len: 0 }]);
      assert.equal(dev.filter.modes.promisc, true);
      assert.deepEqual(h.host.resets, []);
    });

    it('sets the MAC address and restores the permanent one at reset', () => {
      const { dev, h } = setupOn(CTRL_FEATURES | featureSet(N.VIRTIO_NET_F_CTRL_MAC_ADDR));
      assert.equal(ctrl(h, dev, CTRL, N.VIRTIO_NET_CTRL_MAC, N.VIRTIO_NET_CTRL_MAC_ADDR_SET, OTHER), N.VIRTIO_NET_OK);
      assert.deepEqual(dev.mac, OTHER);
      assert.equal(dev.readConfig(N.VIRTIO_NET_CONFIG_MAC + 5, 1), 0x99);
      dev.reset();
      assert.deepEqual(dev.mac, OWN);
    });

    it('announces until the driver acknowledges', () => {
      const { dev, h } = setupOn(CTRL_FEATURES | featureSet(N.VIRTIO_NET_F_GUEST_ANNOUNCE));
      assert.equal(dev.announce(), true);
      assert.equal(dev.readConfig(N.VIRTIO_NET_CONFIG_STATUS, 2), N.VIRTIO_NET_S_LINK_UP | N.VIRTIO_NET_S_ANNOUNCE);
      assert.equal(h.host.configChanges, 1);
      assert.equal(ctrl(h, dev, CTRL, N.VIRTIO_NET_CTRL_ANNOUNCE, N.VIRTIO_NET_CTRL_ANNOUNCE_ACK, new Uint8Array(0)), N.VIRTIO_NET_OK);
      assert.equal(dev.readConfig(N.VIRTIO_NET_CONFIG_STATUS, 2), N.VIRTIO_NET_S_LINK_UP);
    });

    it('switches queue pairs with VQ_PAIRS_SET and steers flows across them', () => {
      const pairs = 3;
      const { dev, backend, h } = setupOn(CTRL_FEATURES | featureSet(N.VIRTIO_NET_F_MQ), { queuePairs: pairs });
      const ctrlIndex = N.netCtrlQueueIndex(pairs);
      for (let p = 0; p < pairs; p++) for (let i = 0; i < 8; i++) h.q(N.netRxQueueIndex(p)).addChain({ writable: [256] });
      const flows = Array.from({ length: 24 }, (_, i) => udpFrame(i));
      for (const f of flows) backend.inject(f);
      assert.equal(h.q(N.netRxQueueIndex(0)).readUsed().length, 8, 'one pair in use before VQ_PAIRS_SET');
      assert.equal(ctrl(h, dev, ctrlIndex, N.VIRTIO_NET_CTRL_MQ, N.VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, u16(4)), N.VIRTIO_NET_ERR);
      assert.equal(ctrl(h, dev, ctrlIndex, N.VIRTIO_NET_CTRL_MQ, N.VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, u16(0)), N.VIRTIO_NET_ERR);
      assert.equal(ctrl(h, dev, ctrlIndex, N.VIRTIO_NET_CTRL_MQ, N.VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, u16(pairs)), N.VIRTIO_NET_OK);
      assert.equal(dev.queuePairsInUse, pairs);
      for (let i = 0; i < 8; i++) h.q(N.netRxQueueIndex(0)).addChain({ writable: [256] });
      for (const f of flows.slice(0, 12)) {
        backend.inject(f);
        backend.inject(f);
      }
      const perQueue = Array.from({ length: pairs }, (_, p) => h.q(N.netRxQueueIndex(p)).readUsed().length);
      assert.equal(
        perQueue.reduce((a, b) => a + b),
        24,
      );
      assert.ok(perQueue.filter((n) => n > 0).length >= 2, `flows spread over queues: ${perQueue}`);
      // Transmit works on the second pair too.
      h.q(N.netTxQueueIndex(1)).addChain({ readable: [hdr(), ethFrame(PEER, OWN, 30)] });
      dev.queueNotify(N.netTxQueueIndex(1));
      assert.equal(backend.sent.length, 1);
    });
  });

function u32(v: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, v, true);
  return b;
}

function u16(v: number): Uint8Array {
  const b = new Uint8Array(2);
  new DataView(b.buffer).setUint16(0, v, true);
  return b;
}

/** An IPv4/UDP frame to OWN whose source port makes flow `i`. */
function udpFrame(i: number): Uint8Array {
  const ip = new Uint8Array(28);
  ip[0] = 0x45;
  ip[9] = 17;
  ip.set([10, 0, 0, 2, 10, 0, 0, 1], 12);
  ip[20] = 0x10;
  ip[21] = i;
  ip[23] = 53;
  return ethFrame(OWN, PEER, ip, 0x0800);
}

for (const ring of RING_FORMATS)
  describe(`virtio-net device: arbitrary chains (${ring} ring)`, () => {
    const setupOn = (features: bigint, opts: SetupOptions = {}) => setup(features, { ...opts, ring });
    it('answers every control and transmit chain of any shape with a used element, never throwing', () => {
      fc.assert(
        fc.property(
          fc.array(
            fc.record({
              queue: fc.constantFrom(TX, CTRL),
              readable: fc.array(
                fc.uint8Array({ maxLength: 40 }).filter((b) => b.byteLength > 0),
                { maxLength: 3 },
              ),
              writable: fc.array(fc.integer({ min: 1, max: 8 }), { maxLength: 2 }),
            }),
            { maxLength: 12 },
          ),
          (chains) => {
            const { dev, h } = setupOn(CTRL_FEATURES | featureSet(N.VIRTIO_NET_F_CTRL_MAC_ADDR, N.VIRTIO_NET_F_GUEST_ANNOUNCE));
            const heads = new Map<number, number[]>([
              [TX, []],
              [CTRL, []],
            ]);
            for (const c of chains) {
              if (c.readable.length + c.writable.length === 0) continue;
              const q = h.q(c.queue);
              if (q.numFree < c.readable.length + c.writable.length) continue;
              heads.get(c.queue)!.push(q.addChain({ readable: c.readable, writable: c.writable }));
            }
            dev.queueNotify(TX);
            dev.queueNotify(CTRL);
            assert.deepEqual(h.host.resets, []);
            for (const [index, expected] of heads) {
              const used = h.q(index).readUsed();
              assert.deepEqual(
                used.map((u) => u.id),
                expected,
              );
              for (const u of used) assert.ok(u.len <= 1);
            }
          },
        ),
        { numRuns: 300 },
      );
    });
  });

describe('virtio-net device: bursts from the backend (NetBackendPort.receiveBatch)', () => {
  it('places every frame of a burst in order and sends one used buffer notification for the burst', () => {
    const { h, backend } = setup(V1 | featureSet(N.VIRTIO_NET_F_MRG_RXBUF));
    const q = h.q(RX);
    const heads = [0, 1, 2, 3].map(() => q.addChain({ writable: [128] }));
    const frames = [1, 2, 3].map((k) => ethFrame(OWN, PEER, 20 + k));
    h.host.used.length = 0;
    backend.port!.receiveBatch(frames);
    const used = q.readUsed();
    assert.deepEqual(
      used.map((u) => u.id),
      heads.slice(0, 3),
    );
    used.forEach((u, k) => {
      assert.equal(u.len, N.VIRTIO_NET_HDR_SIZE + frames[k]!.length);
      const at = q.buffers(u.id).writable[0]!.addr;
      assert.deepEqual(q.memory.view(at + N.VIRTIO_NET_HDR_SIZE, frames[k]!.length), frames[k]);
      assert.equal(q.memory.read16(at + N.VIRTIO_NET_HDR_NUM_BUFFERS), 1);
    });
    assert.deepEqual(h.host.used, [RX], 'one notification for three frames');
  });

  it('a burst that finds no buffer notifies nothing, and counts every frame dropped', () => {
    const { dev, h, backend } = setup(V1);
    h.host.used.length = 0;
    backend.port!.receiveBatch([ethFrame(OWN, PEER, 30), ethFrame(OWN, PEER, 31)]);
    assert.deepEqual(h.host.used, []);
    assert.equal(dev.stats.rxDropped, 2);
  });
});
