/**
 * Our virtio-net device joins a QEMU guest's network through each of our backends: QEMU's
 * virtio-net-pci (driven by our driver over qtest) and our device on an in-process machine (driven by
 * our driver too) exchange frames over `-netdev stream` (Unix socket), `-netdev socket` (TCP, the
 * same framing) and `-netdev dgram` (UDP), with QEMU's end and ours checked byte for byte.
 */

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, test } from 'node:test';
import type { NetBackend } from '../../../src/device/net/backend.js';
import { DgramNetBackend } from '../../../src/device/net/dgram-backend.js';
import { VirtioNetDevice } from '../../../src/device/net/net-device.js';
import { StreamNetBackend } from '../../../src/device/net/stream-backend.js';
import { VirtioNetDriver } from '../../../src/driver/net/net-driver.js';
import { Machine } from '../../../src/platform/machine.js';
import { launch, slotBdf, tempDir, udpSocket } from './qemu-fixture.js';
import { BusError } from '../../../src/errors.js';
import { withFreeUdpPorts } from '../../../src/platform/qtest/udp-ports.js';

const QEMU_MAC = Uint8Array.of(0x52, 0x54, 0x00, 0x12, 0x34, 0x56);
const OUR_MAC = Uint8Array.of(0x02, 0, 0, 0, 0, 0x01);
const WAIT_MS = 5000;

function frame(dst: Uint8Array, src: Uint8Array, len: number, seed: number): Uint8Array {
  const f = new Uint8Array(len);
  f.set(dst, 0);
  f.set(src, 6);
  f.set([0x88, 0xb5], 12);
  for (let i = 14; i < len; i++) f[i] = (i * 7 + seed) & 0xff;
  return f;
}

const BACKENDS: {
  name: string;
  make: (dir: string, pickPort: () => Promise<number>) => Promise<{ backend: NetBackend; netdev: string }>;
}[] = [
  {
    name: '-netdev stream over a Unix socket',
    make: async (dir) => {
      const path = join(dir, 'net.sock');
      return { backend: await StreamNetBackend.listen({ path }), netdev: `stream,id=n0,server=off,addr.type=unix,addr.path=${path}` };
    },
  },
  {
    name: '-netdev socket over TCP',
    make: async () => {
      const backend = await StreamNetBackend.listen({ host: '127.0.0.1', port: 0 });
      return { backend, netdev: `socket,id=n0,connect=127.0.0.1:${backend.listeningPort}` };
    },
  },
  {
    name: '-netdev dgram over UDP',
    make: async (_dir, pickPort) => {
      const qemuPort = await pickPort();
      const backend = await DgramNetBackend.open({
        local: { address: '127.0.0.1', port: 0 },
        remote: { address: '127.0.0.1', port: qemuPort },
      });
      return {
        backend,
        netdev: `dgram,id=n0,local.type=inet,local.host=127.0.0.1,local.port=${qemuPort},remote.type=inet,remote.host=127.0.0.1,remote.port=${backend.localPort}`,
      };
    },
  },
];

for (const { name, make } of BACKENDS) {
  test(`our virtio-net device and QEMU's exchange frames through ${name}`, async () => {
    const dir = await tempDir();
    let backend!: NetBackend;
    const bus = await withFreeUdpPorts(async (pickPort) => {
      const made = await make(dir, pickPort);
      // Each start's backend is closed, a failed start's too.
      after(() => made.backend.close());
      backend = made.backend;
      return launch({
        machine: 'q35',
        args: ['-netdev', made.netdev, '-device', 'virtio-net-pci,netdev=n0,mac=52:54:00:12:34:56,addr=0x4,disable-legacy=on'],
      });
    });
    const theirs = await VirtioNetDriver.open(bus, slotBdf(4), { timeoutMs: WAIT_MS });
    const machine = new Machine({ ramSize: 16 << 20 });
    const { bdf } = machine.plugVirtio(new VirtioNetDevice({ backend, mac: OUR_MAC }));
    const ours = await VirtioNetDriver.open(machine.bus, bdf, { timeoutMs: WAIT_MS });
    try {
      for (let i = 0; i < 100 && !(await ours.linkUp()); i++) await new Promise((r) => setTimeout(r, 20));
      assert.equal(await ours.linkUp(), true, 'QEMU connected to our backend');
      const outbound = [60, 200, 1514].map((len, n) => frame(QEMU_MAC, OUR_MAC, len, n));
      for (const f of outbound) await ours.send(f);
      for (const f of outbound) assert.deepEqual(await theirs.receive(WAIT_MS), f);
      const inbound = [64, 1000, 1514].map((len, n) => frame(OUR_MAC, QEMU_MAC, len, n + 50));
      for (const f of inbound) await theirs.send(f);
      for (const f of inbound) assert.deepEqual(await ours.receive(WAIT_MS), f);
    } finally {
      await ours.close();
      await theirs.close();
    }
  });
}

// withFreeUdpPorts retries a start on this message: QEMU must still say it when a port is taken.
for (const netdev of [
  (port: number) => `socket,id=n0,udp=127.0.0.1:9,localaddr=127.0.0.1:${port}`,
  (port: number) =>
    `dgram,id=n0,local.type=inet,local.host=127.0.0.1,local.port=${port},remote.type=inet,remote.host=127.0.0.1,remote.port=9`,
]) {
  test(`QEMU refuses to start on a taken UDP port with "Address already in use": ${netdev(0).split(',')[0]}`, async () => {
    const taken = await udpSocket();
    await assert.rejects(
      launch({ machine: 'q35', args: ['-netdev', netdev(taken.address().port), '-device', 'virtio-net-pci,netdev=n0,addr=0x4'] }),
      (err: unknown) => err instanceof BusError && err.message.includes('Address already in use'),
    );
  });
}
