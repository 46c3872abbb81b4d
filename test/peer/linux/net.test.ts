/**
 * Linux's virtio_net on our virtio-net function, whose backend plays a host at 10.0.2.2 (ARP and
 * ICMP echo): the guest configures an address and pings the host with small and near-MTU packets;
 * the test checks both ends (the host saw and answered each request, the guest got every answer).
 * Once on split rings, once with VIRTIO_F_RING_PACKED offered. Both kernels (6.1 and 6.5, each peer
 * leg) negotiate the packed ring and VIRTIO_F_RING_RESET, and resize both rings with `ethtool -G`
 * (virtio_net's set_ringparam resets each queue and sets it up again at the new size) on either format.
 * VIRTIO_F_NOTIFICATION_DATA (offered on the modern interface): Linux 6.5 negotiates it (virtio_pci
 * gained it in 6.4) and every notification carries where the driver's next buffer goes, on either
 * format; 6.1 leaves it, and its notifications carry no data.
 */

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { VirtioNetDevice } from '../../../src/device/net/net-device.js';
import type { DeviceCore } from '../../../src/core/device-core.js';
import { hasFeature, VIRTIO_F_NOTIFICATION_DATA, VIRTIO_F_RING_RESET } from '../../../src/spec/features.js';
import { PVIRTQ_DESC_FLAGS, PVIRTQ_DESC_SIZE, VIRTQ_DESC_F_AVAIL, VIRTQ_DESC_F_USED } from '../../../src/spec/packed-ring.js';
import { VIRTQ_AVAIL_IDX } from '../../../src/spec/ring.js';
import { ringFormat } from '../../../src/queue/ring-format.js';
import { defaultGuestKernel, type GuestKernel } from '../../../src/platform/v86/assets.js';
import { VIRTIO_ID_NET } from '../../../src/spec/ids.js';
import { VIRTIO_CONFIG_S_DEVICE_NEEDS_RESET, VIRTIO_CONFIG_S_DRIVER_OK } from '../../../src/spec/status.js';
import { SLOT, bootTestMachine, guestFeatures, negotiatedRing, pciName, resultOf, type TestMachine } from '../../helpers/linux-machine.js';
import { NetResponder } from '../../helpers/net-responder.js';
import { RING_FORMATS } from '../../helpers/ring-formats.js';

const HOST = '10.0.2.2';
const GUEST = '10.0.2.15';
const GUEST_MAC = Uint8Array.of(0x02, 0x00, 0x00, 0x00, 0x00, 0x0f);
/** The kernels whose virtio_pci sends notification data (Linux 6.4 added it; checked on each leg). */
const NOTIFICATION_DATA_KERNELS: readonly GuestKernel[] = ['6.5'];

/**
 * Whether `next`, the data of a notification of queue `index`, says where the driver's next buffer
 * goes, read from the ring in guest memory as the notification arrives (2.9): the split ring's avail
 * idx; in the packed ring, the slot before next_off made available in its lap and the slot at
 * next_off not yet made available in lap next_wrap.
 */
function nextMatchesRing(core: DeviceCore, index: number, next: number): boolean {
  const q = core.queues[index]!;
  const driver = q.ringAddress('driver');
  const desc = q.ringAddress('desc');
  if (ringFormat(core.negotiatedFeatures).name === 'split') return core.memory.read16(driver + VIRTQ_AVAIL_IDX) === next;
  const off = next & 0x7fff;
  const wrap = next >> 15;
  if (off >= q.size) return false;
  const flags = (slot: number): number => core.memory.read16(desc + slot * PVIRTQ_DESC_SIZE + PVIRTQ_DESC_FLAGS);
  const bit = (f: number, mask: number): number => ((f & mask) !== 0 ? 1 : 0);
  const [prev, prevWrap] = off === 0 ? [q.size - 1, wrap ^ 1] : [off - 1, wrap];
  const at = flags(off);
  const nextAvailable = bit(at, VIRTQ_DESC_F_AVAIL) === wrap && bit(at, VIRTQ_DESC_F_USED) !== wrap;
  return bit(flags(prev), VIRTQ_DESC_F_AVAIL) === prevWrap && !nextAvailable;
}

for (const ring of RING_FORMATS) {
  describe(`${ring} ring`, () => {
    const responder = new NetResponder(HOST, Uint8Array.of(0x02, 0x00, 0x00, 0x00, 0x00, 0x02));
    const device = new VirtioNetDevice({ backend: responder, mac: GUEST_MAC });
    /** Every notification the device received: its queue, its data, whether that matched the ring. */
    const notified: { index: number; next: number | undefined; matches: boolean }[] = [];
    const queueNotify = device.queueNotify.bind(device);
    device.queueNotify = (index: number, next?: number): void => {
      notified.push({ index, next, matches: next !== undefined && nextMatchesRing(m.fns.net.core, index, next) });
      queueNotify(index);
    };
    let m: TestMachine;
    let ifname: string;

    /** Ping the host `count` times; asserts every answer came back and the host answered each request once. */
    async function pingChecked(count: number, size = 56): Promise<void> {
      const seen = responder.echoSeqs.length;
      const ping = resultOf((await m.guest.command(`ping ${HOST} ${count} ${size}`)).results, 'ping');
      assert.equal(ping.fields['sent'], String(count));
      assert.equal(ping.fields['received'], String(count));
      const seqs = responder.echoSeqs.slice(seen);
      assert.equal(seqs.length, count, `the host answered ${seqs.length} requests: ${seqs.join(',')}`);
      assert.deepEqual(
        seqs,
        seqs.map((_, i) => seqs[0]! + i),
        'each request reached the host once, in order',
      );
    }

    before(async () => {
      m = await bootTestMachine({ net: device }, { ring });
    });

    after(async () => {
      await m?.guest.destroy();
    });

    test('virtio_net binds the function on the ring offered and the interface has our MAC', async (t) => {
      t.diagnostic(`${m.guest.restored ? 'restored' : 'booted'} in ${Math.round(m.guest.bootMs)} ms`);
      const out = await m.guest.command('load');
      assert.equal(out.rc, 0, out.results.map((r) => r.text).join('\n'));
      const dev = resultOf(out.results, 'virtio', { pci: pciName(SLOT.net) });
      t.diagnostic(`features ${dev.fields['features']}`);
      assert.equal(Number(dev.fields['type']), VIRTIO_ID_NET);
      assert.equal(dev.fields['driver'], 'virtio_net');
      const status = Number(dev.fields['status']);
      assert.equal(
        status & (VIRTIO_CONFIG_S_DRIVER_OK | VIRTIO_CONFIG_S_DEVICE_NEEDS_RESET),
        VIRTIO_CONFIG_S_DRIVER_OK,
        `status 0x${status.toString(16)}`,
      );
      assert.equal(negotiatedRing(dev, m.fns.net), ring);
      ifname = dev.fields['net'] ?? '';
      assert.match(ifname, /^eth\d$/);
      const up = await m.guest.command(`netup ${ifname} ${GUEST}/24`);
      assert.equal(up.rc, 0, up.results.map((r) => r.text).join('\n'));
      assert.equal(resultOf(up.results, 'netup').fields['mac'], Buffer.from(GUEST_MAC).toString('hex').match(/../g)!.join(':'));
    });

    test('the guest pings the host end', async () => {
      await pingChecked(3);
      assert.ok(responder.counts.arpReplies >= 1, 'the guest resolved the host with ARP');
    });

    test('near-MTU echoes go both ways whole', async () => {
      const size = 1400;
      await pingChecked(2, size);
      // ICMP header (8 bytes) + payload, as the host end received it.
      assert.deepEqual(responder.echoLengths.slice(-2), [8 + size, 8 + size]);
      const stats = resultOf((await m.guest.command(`netstat ${ifname}`)).results, 'netstat');
      assert.ok(Number(stats.fields['rx_packets']) >= 6, `rx_packets ${stats.fields['rx_packets']}`);
      assert.equal(stats.fields['rx_dropped'], '0');
      assert.equal(m.fns.net.core.fault, undefined);
    });

    test("ethtool -g reads the rings Linux set up on our device: each at the device's maximum", async () => {
      const got = resultOf((await m.guest.command(`ringget ${ifname}`)).results, 'ring');
      const max = String(m.fns.net.core.device.queueMaxSizes[0]);
      assert.deepEqual(
        { rx_max: got.fields['rx_max'], rx_now: got.fields['rx_now'], tx_max: got.fields['tx_max'], tx_now: got.fields['tx_now'] },
        { rx_max: max, rx_now: max, tx_max: max, tx_now: max },
      );
    });

    test('VIRTIO_F_RING_RESET: ethtool -G resizes both rings through queue reset; traffic before and after, none lost or repeated', async () => {
      const net = resultOf((await m.guest.command('devices')).results, 'virtio', { pci: pciName(SLOT.net) });
      assert.ok(hasFeature(guestFeatures(net), VIRTIO_F_RING_RESET), 'the guest negotiated RING_RESET');
      assert.ok(hasFeature(m.fns.net.core.negotiatedFeatures, VIRTIO_F_RING_RESET), 'the device accepted it');
      const max = m.fns.net.core.device.queueMaxSizes[0]!;
      await pingChecked(3);
      for (const [rx, tx] of [
        [max / 2, max / 4],
        [max / 4, max / 2],
      ] as const) {
        const out = await m.guest.command(`ringset ${ifname} ${rx} ${tx}`);
        assert.equal(out.rc, 0, out.results.map((r) => r.text).join('\n'));
        const now = resultOf((await m.guest.command(`ringget ${ifname}`)).results, 'ring');
        assert.deepEqual([now.fields['rx_now'], now.fields['tx_now']], [String(rx), String(tx)], 'ethtool -g shows the new sizes');
        // What the device set up: the receiveq and transmitq of pair 0 at the new sizes, on the same format.
        const [rxq, txq] = m.fns.net.core.queues;
        assert.deepEqual([rxq?.size, rxq?.enabled, txq?.size, txq?.enabled], [rx, true, tx, true]);
        await pingChecked(4);
        await pingChecked(2, 1400);
      }
      const stats = resultOf((await m.guest.command(`netstat ${ifname}`)).results, 'netstat');
      assert.equal(stats.fields['rx_dropped'], '0');
      assert.equal(stats.fields['tx_dropped'], '0');
      assert.equal(m.fns.net.core.fault, undefined);
      assert.equal(negotiatedRing(net, m.fns.net), ring, 'still the same ring format');
    });

    test(`VIRTIO_F_NOTIFICATION_DATA: negotiated by Linux ${NOTIFICATION_DATA_KERNELS.join(', ')} only; then every notification says where the next buffer goes`, async () => {
      const net = resultOf((await m.guest.command('devices')).results, 'virtio', { pci: pciName(SLOT.net) });
      const expected = NOTIFICATION_DATA_KERNELS.includes(defaultGuestKernel());
      assert.equal(hasFeature(guestFeatures(net), VIRTIO_F_NOTIFICATION_DATA), expected, `Linux ${defaultGuestKernel()}`);
      assert.equal(hasFeature(m.fns.net.core.negotiatedFeatures, VIRTIO_F_NOTIFICATION_DATA), expected, 'the device agrees');
      const before = notified.length;
      await pingChecked(3);
      const seen = notified.slice(before);
      assert.ok(
        seen.some((n) => n.index === 1),
        'the transmitq was notified',
      );
      if (expected) {
        const bad = seen.filter((n) => !n.matches);
        assert.deepEqual(bad, [], 'every notification carries data matching the ring');
        assert.ok(
          notified.every((n) => n.next !== undefined),
          'since the driver started',
        );
      } else {
        assert.ok(
          notified.every((n) => n.next === undefined),
          'no notification carried data',
        );
      }
      assert.equal(m.fns.net.core.fault, undefined);
    });
  });
}
