/**
 * Our virtio-net driver against QEMU's virtio-net-pci in every mode of DRIVER_MODES (modern-only,
 * transitional through either interface, legacy-only; MSI-X and INTx; the modern ones with packed=on too), on pc and q35. Each device's backend is a `-netdev socket` in UDP mode whose far
 * end is a socket this test owns: frames our driver sends must arrive there intact and in order, and
 * frames the test sends from there must come out of our driver intact. The MAC is QEMU's `mac=`.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Socket } from 'node:dgram';
import { VirtioNetDriver } from '../../../src/driver/net/net-driver.js';
import { datagrams, DRIVER_MODES, launch, MACHINES, slotBdf, udpSocket } from './qemu-fixture.js';
import { withFreeUdpPorts } from '../../../src/platform/qtest/udp-ports.js';
import { hasFeature, VIRTIO_F_ANY_LAYOUT, VIRTIO_F_EVENT_IDX, VIRTIO_F_INDIRECT_DESC } from '../../../src/spec/features.js';
import * as N from '../../../src/spec/net.js';

const MODES = DRIVER_MODES;
const FRAMES = 16;
const WAIT_MS = 5000;
const ETHERTYPE_EXPERIMENTAL = [0x88, 0xb5];

function macOf(slot: number): Uint8Array {
  return Uint8Array.from([0x52, 0x54, 0x00, 0x12, 0x34, slot]);
}

function frame(dst: Uint8Array, src: Uint8Array, n: number, len: number): Uint8Array {
  const f = new Uint8Array(len);
  f.set(dst, 0);
  f.set(src, 6);
  f.set(ETHERTYPE_EXPERIMENTAL, 12);
  for (let i = 14; i < len; i++) f[i] = (i + n * 31) & 0xff;
  return f;
}

for (const machine of MACHINES) {
  test(`-M ${machine}: virtio-net-pci frames reach, and come from, a host socket`, async (t) => {
    const ends = new Map<number, { host: Socket; qemuPort: number }>();
    const bus = await withFreeUdpPorts(async (pickPort) => {
      const args: string[] = [];
      for (const m of MODES) {
        const host = ends.get(m.slot)?.host ?? (await udpSocket());
        const qemuPort = await pickPort();
        ends.set(m.slot, { host, qemuPort });
        const mac = [...macOf(m.slot)].map((b) => b.toString(16).padStart(2, '0')).join(':');
        args.push('-netdev', `socket,id=n${m.slot},udp=127.0.0.1:${host.address().port},localaddr=127.0.0.1:${qemuPort}`);
        args.push('-device', `virtio-net-pci,netdev=n${m.slot},mac=${mac},addr=0x${m.slot.toString(16)},${m.props}`);
      }
      return launch({ machine, args });
    });
    for (const m of MODES) {
      await t.test(m.name, async (t) => {
        const { host, qemuPort } = ends.get(m.slot)!;
        const net = await VirtioNetDriver.open(bus, slotBdf(m.slot), { forceLegacy: m.forceLegacy, interrupts: m.interrupts });
        try {
          assert.equal(net.core.probe.kind, m.kind);
          assert.equal(net.core.interrupts?.kind, m.plan);
          assert.equal(net.core.ringFormat.name, m.ring);
          // QEMU offers both on either ring and our net driver asks for both: the ring code for
          // indirect tables and event suppression (used_event/avail_event, or the packed DESC mode) runs.
          assert.ok(hasFeature(net.features, VIRTIO_F_INDIRECT_DESC), 'INDIRECT_DESC negotiated');
          assert.ok(hasFeature(net.features, VIRTIO_F_EVENT_IDX), 'EVENT_IDX negotiated');
          // QEMU's legacy interface offers ANY_LAYOUT, which a transitional driver MUST accept (6.3).
          assert.equal(hasFeature(net.features, VIRTIO_F_ANY_LAYOUT), m.kind === 'legacy', 'ANY_LAYOUT on the legacy interface');
          const mac = macOf(m.slot);
          const peer = Uint8Array.from([0x02, 0, 0, 0, 0, 0x99]);
          await t.test("the MAC is QEMU's and the link is up", async () => {
            assert.deepEqual(net.mac, mac);
            assert.equal(await net.linkUp(), true);
          });
          await t.test(`${FRAMES} frames from the driver arrive at the host socket intact, in order`, async () => {
            const sent = Array.from({ length: FRAMES }, (_, n) => frame(peer, mac, n, 60 + n * 97));
            const arriving = datagrams(host, FRAMES, WAIT_MS);
            for (const f of sent) await net.send(f);
            assert.deepEqual(
              (await arriving).map((b) => [...b]),
              sent.map((f) => [...f]),
            );
          });
          await t.test(`${FRAMES} frames from the host socket come out of the driver intact, in order`, async () => {
            const sent = Array.from({ length: FRAMES }, (_, n) => frame(mac, peer, n + 100, 60 + n * 89));
            for (const f of sent) host.send(f, qemuPort, '127.0.0.1');
            const received: Uint8Array[] = [];
            for (let n = 0; n < FRAMES; n++) received.push(await net.receive(WAIT_MS));
            assert.deepEqual(
              received.map((f) => [...f]),
              sent.map((f) => [...f]),
            );
          });
        } finally {
          await net.close();
        }
      });
    }
  });
}

// QEMU's ctrl_rx=off and ctrl_rx_extra=off: our driver does not send the commands those features
// govern (5.1.9.5.1.2, 5.1.9.5.2.2), where QEMU itself would carry them out anyway.
test("-M pc: without QEMU's ctrl_rx / ctrl_rx_extra the driver refuses their commands and sends none", async (t) => {
  const withheld = [
    // CTRL_RX_EXTRA stays offered: it needs CTRL_VQ alone (5.1.3.1), so NOBCAST still goes.
    { slot: 4, props: 'ctrl_rx=off', refused: ['promisc', 'allmulti', 'mac-table'] },
    { slot: 5, props: 'ctrl_rx_extra=off', refused: ['nobcast'] },
  ];
  const bus = await withFreeUdpPorts(async (pickPort) => {
    const args: string[] = [];
    for (const w of withheld) {
      const host = await udpSocket();
      args.push('-netdev', `socket,id=n${w.slot},udp=127.0.0.1:${host.address().port},localaddr=127.0.0.1:${await pickPort()}`);
      args.push('-device', `virtio-net-pci,netdev=n${w.slot},addr=0x${w.slot.toString(16)},disable-legacy=on,${w.props}`);
    }
    return launch({ machine: 'pc', args });
  });
  for (const w of withheld) {
    await t.test(w.props, async () => {
      const net = await VirtioNetDriver.open(bus, slotBdf(w.slot));
      try {
        assert.ok(hasFeature(net.features, N.VIRTIO_NET_F_CTRL_VQ));
        assert.equal(hasFeature(net.features, N.VIRTIO_NET_F_CTRL_RX), !w.refused.includes('promisc'));
        assert.equal(hasFeature(net.features, N.VIRTIO_NET_F_CTRL_RX_EXTRA), !w.refused.includes('nobcast'));
        const commands: Record<string, () => Promise<void>> = {
          promisc: () => net.setPromiscuous(true),
          allmulti: () => net.setAllMulticast(true),
          'mac-table': () => net.setMacTable([], []),
          nobcast: () => net.setRxMode(N.VIRTIO_NET_CTRL_RX_NOBCAST, true),
        };
        for (const [name, run] of Object.entries(commands)) {
          if (w.refused.includes(name)) await assert.rejects(run(), { code: 'ERR_USAGE' }, name);
          else await run(); // QEMU answers VIRTIO_NET_OK
        }
      } finally {
        await net.close();
      }
    });
  }
});

// QEMU's any_layout=off on a legacy-only device: our driver frames by 5.1.9.8 (header, frame and
// each control part in descriptors of their own), and frames and commands still go through.
test('-M pc: legacy interface without ANY_LAYOUT: frames both ways and control commands', async () => {
  const slot = 6;
  const host = await udpSocket();
  let qemuPort = 0;
  const bus = await withFreeUdpPorts(async (pickPort) => {
    qemuPort = await pickPort();
    const mac = [...macOf(slot)].map((b) => b.toString(16).padStart(2, '0')).join(':');
    return launch({
      machine: 'pc',
      args: [
        '-netdev',
        `socket,id=n${slot},udp=127.0.0.1:${host.address().port},localaddr=127.0.0.1:${qemuPort}`,
        '-device',
        `virtio-net-pci,netdev=n${slot},mac=${mac},addr=0x${slot.toString(16)},disable-modern=on,any_layout=off`,
      ],
    });
  });
  const net = await VirtioNetDriver.open(bus, slotBdf(slot));
  try {
    assert.equal(net.core.probe.kind, 'legacy');
    assert.equal(hasFeature(net.core.deviceFeatures, VIRTIO_F_ANY_LAYOUT), false);
    const mac = macOf(slot);
    const peer = Uint8Array.from([0x02, 0, 0, 0, 0, 0x99]);
    const sent = Array.from({ length: FRAMES }, (_, n) => frame(peer, mac, n, 60 + n * 97));
    const arriving = datagrams(host, FRAMES, WAIT_MS);
    for (const f of sent) await net.send(f);
    assert.deepEqual(
      (await arriving).map((b) => [...b]),
      sent.map((f) => [...f]),
    );
    const back = Array.from({ length: FRAMES }, (_, n) => frame(mac, peer, n + 100, 60 + n * 89));
    for (const f of back) host.send(f, qemuPort, '127.0.0.1');
    const received: Uint8Array[] = [];
    for (let n = 0; n < FRAMES; n++) received.push(await net.receive(WAIT_MS));
    assert.deepEqual(
      received.map((f) => [...f]),
      back.map((f) => [...f]),
    );
    await net.setMacTable([peer], []);
    await net.setPromiscuous(true);
    await net.setPromiscuous(false);
  } finally {
    await net.close();
  }
});
