/**
 * Linux's virtio_net on our virtio-net function, whose backend plays a host at 10.0.2.2 (ARP and
 * ICMP echo): the guest configures an address and pings the host with small and near-MTU packets;
 * the test checks both ends (the host saw and answered each request, the guest got every answer).
 */

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { VirtioNetDevice } from '../../../src/device/net/net-device.js';
import { VIRTIO_ID_NET } from '../../../src/spec/ids.js';
import { VIRTIO_CONFIG_S_DEVICE_NEEDS_RESET, VIRTIO_CONFIG_S_DRIVER_OK } from '../../../src/spec/status.js';
import { SLOT, bootTestMachine, pciName, resultOf, type TestMachine } from '../../helpers/linux-machine.js';
import { NetResponder } from '../../helpers/net-responder.js';

const HOST = '10.0.2.2';
const GUEST = '10.0.2.15';
const GUEST_MAC = Uint8Array.of(0x02, 0x00, 0x00, 0x00, 0x00, 0x0f);
const responder = new NetResponder(HOST, Uint8Array.of(0x02, 0x00, 0x00, 0x00, 0x00, 0x02));
let m: TestMachine;
let ifname: string;

before(async () => {
  m = await bootTestMachine({ net: new VirtioNetDevice({ backend: responder, mac: GUEST_MAC }) });
});

after(async () => {
  await m?.guest.destroy();
});

test('virtio_net binds the function and the interface has our MAC', async (t) => {
  t.diagnostic(`${m.guest.restored ? 'restored' : 'booted'} in ${Math.round(m.guest.bootMs)} ms`);
  const out = await m.guest.command('load');
  assert.equal(out.rc, 0, out.results.map((r) => r.text).join('\n'));
  const dev = resultOf(out.results, 'virtio', { pci: pciName(SLOT.net) });
  assert.equal(Number(dev.fields['type']), VIRTIO_ID_NET);
  assert.equal(dev.fields['driver'], 'virtio_net');
  const status = Number(dev.fields['status']);
  assert.equal(
    status & (VIRTIO_CONFIG_S_DRIVER_OK | VIRTIO_CONFIG_S_DEVICE_NEEDS_RESET),
    VIRTIO_CONFIG_S_DRIVER_OK,
    `status 0x${status.toString(16)}`,
  );
  ifname = dev.fields['net'] ?? '';
  assert.match(ifname, /^eth\d$/);
  const up = await m.guest.command(`netup ${ifname} ${GUEST}/24`);
  assert.equal(up.rc, 0, up.results.map((r) => r.text).join('\n'));
  assert.equal(resultOf(up.results, 'netup').fields['mac'], Buffer.from(GUEST_MAC).toString('hex').match(/../g)!.join(':'));
});

test('the guest pings the host end', async () => {
  const out = await m.guest.command(`ping ${HOST} 3`);
  const ping = resultOf(out.results, 'ping');
  assert.equal(ping.fields['sent'], '3');
  assert.equal(ping.fields['received'], '3');
  assert.ok(responder.counts.arpReplies >= 1, 'the guest resolved the host with ARP');
  assert.equal(responder.counts.echoReplies, 3);
});

test('near-MTU echoes go both ways whole', async () => {
  const size = 1400;
  const ping = resultOf((await m.guest.command(`ping ${HOST} 2 ${size}`)).results, 'ping');
  assert.equal(ping.fields['received'], '2');
  // ICMP header (8 bytes) + payload, as the host end received it.
  assert.deepEqual(responder.echoLengths.slice(-2), [8 + size, 8 + size]);
  const stats = resultOf((await m.guest.command(`netstat ${ifname}`)).results, 'netstat');
  assert.ok(Number(stats.fields['rx_packets']) >= 6, `rx_packets ${stats.fields['rx_packets']}`);
  assert.equal(stats.fields['rx_dropped'], '0');
  assert.equal(m.fns.net.core.fault, undefined);
});

test("ethtool -g reads the rings Linux set up on our device: each at the device's maximum", async () => {
  const ring = resultOf((await m.guest.command(`ringget ${ifname}`)).results, 'ring');
  const max = String(m.fns.net.core.device.queueMaxSizes[0]);
  assert.deepEqual(
    { rx_max: ring.fields['rx_max'], rx_now: ring.fields['rx_now'], tx_max: ring.fields['tx_max'], tx_now: ring.fields['tx_now'] },
    { rx_max: max, rx_now: max, tx_max: max, tx_now: max },
  );
});

test('without VIRTIO_F_RING_RESET (our virtio-net does not offer it yet), Linux refuses to resize a ring and the rings stay', async () => {
  const net = resultOf((await m.guest.command('devices')).results, 'virtio', { pci: pciName(SLOT.net) });
  assert.equal(net.fields['features']?.[40] ?? '0', '0', 'RING_RESET not negotiated');
  const out = await m.guest.command(`ringset ${ifname} 128 128`);
  assert.notEqual(out.rc, 0, 'ethtool -G fails');
  assert.ok(resultOf(out.results, 'ringset').fields['error'], "with ethtool's message");
  const ring = resultOf((await m.guest.command(`ringget ${ifname}`)).results, 'ring');
  const max = String(m.fns.net.core.device.queueMaxSizes[0]);
  assert.deepEqual([ring.fields['rx_now'], ring.fields['tx_now']], [max, max]);
  assert.equal(resultOf((await m.guest.command(`ping ${HOST} 1`)).results, 'ping').fields['received'], '1', 'the interface still works');
  assert.equal(m.fns.net.core.fault, undefined);
});
