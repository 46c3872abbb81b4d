/**
 * VIRTIO_F_RING_RESET against QEMU 7.2's virtio-net-pci (modern-only, MSI-X): QEMU offers the bit;
 * our driver resets the receiveq and later the transmitq through queue_reset (4.1.4.3), gets the
 * buffers it had posted back, re-enables each on a new ring of another size, and traffic goes on:
 * frames sent meanwhile on the other queue arrive once each, in order, and both queues work again.
 * The backend is a `-netdev socket` in UDP mode whose far end this test owns.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VirtioDriver } from '../../../src/driver/virtio-driver.js';
import type { DriverQueue } from '../../../src/driver/driver-queue.js';
import { hasFeature, VIRTIO_F_NOTIFICATION_DATA, VIRTIO_F_RING_RESET } from '../../../src/spec/features.js';
import { datagrams, launch, slotBdf, udpSocket } from './qemu-fixture.js';
import { withFreeUdpPorts } from '../../../src/platform/qtest/udp-ports.js';

const SLOT = 4;
const WAIT_MS = 5000;
/** struct virtio_net_hdr with VERSION_1 and no MRG_RXBUF (5.1.9): 12 bytes. */
const NET_HDR = 12;
const RX_BUF = 1526 + NET_HDR;
const MAC = Uint8Array.from([0x52, 0x54, 0x00, 0x12, 0x34, SLOT]);
const PEER = Uint8Array.from([0x02, 0, 0, 0, 0, 0x99]);

function frame(dst: Uint8Array, src: Uint8Array, n: number): Uint8Array {
  const f = new Uint8Array(64 + n);
  f.set(dst, 0);
  f.set(src, 6);
  f.set([0x88, 0xb5], 12);
  for (let i = 14; i < f.length; i++) f[i] = (i + n * 31) & 0xff;
  return f;
}

test('QEMU virtio-net-pci: our driver resets the receiveq, then the transmitq, and traffic continues', async () => {
  const host = await udpSocket();
  let qemuPort = 0;
  const mac = [...MAC].map((b) => b.toString(16).padStart(2, '0')).join(':');
  const bus = await withFreeUdpPorts(async (pickPort) => {
    qemuPort = await pickPort();
    return launch({
      machine: 'q35',
      args: [
        '-netdev',
        `socket,id=n0,udp=127.0.0.1:${host.address().port},localaddr=127.0.0.1:${qemuPort}`,
        '-device',
        `virtio-net-pci,netdev=n0,mac=${mac},addr=0x${SLOT.toString(16)},disable-legacy=on`,
      ],
    });
  });
  const drv = await VirtioDriver.open(bus, slotBdf(SLOT), { timeoutMs: WAIT_MS });
  try {
    await drv.negotiate(0n);
    assert.ok(hasFeature(drv.deviceFeatures, VIRTIO_F_RING_RESET), 'QEMU 7.2 offers VIRTIO_F_RING_RESET');
    assert.ok(hasFeature(drv.features, VIRTIO_F_RING_RESET));
    assert.equal(hasFeature(drv.deviceFeatures, VIRTIO_F_NOTIFICATION_DATA), false, 'QEMU 7.2 has no notification data');
    const rx = await drv.setupQueue<number>(0, { size: 64 });
    const tx = await drv.setupQueue<number>(1, { size: 64 });
    await drv.driverOk();
    const dma = bus.dma;
    const rxBufs = new Map<number, { addr: number; bytes: Uint8Array }>();
    let nextRx = 0;
    const post = async (count: number): Promise<void> => {
      for (let i = 0; i < count; i++) {
        const b = dma.alloc(RX_BUF, 8);
        rxBufs.set(nextRx, b);
        rx.submit([], [{ addr: b.addr, len: RX_BUF }], nextRx++);
      }
      await rx.kick();
    };
    let nextTx = 1000;
    const send = async (frames: readonly Uint8Array[]): Promise<void> => {
      const arriving = datagrams(host, frames.length, WAIT_MS);
      const tokens: number[] = [];
      for (const f of frames) {
        const b = dma.alloc(NET_HDR + f.length, 8);
        b.bytes.set(f, NET_HDR);
        tokens.push(nextTx);
        tx.submit([{ addr: b.addr, len: NET_HDR + f.length }], [], nextTx++);
      }
      await tx.kick();
      assert.deepEqual(
        (await arriving).map((d) => [...d]),
        frames.map((f) => [...f]),
        'each frame arrives once, in order',
      );
      const done: number[] = [];
      while (done.length < tokens.length) for (const c of await tx.waitUsed()) done.push(c.token);
      assert.deepEqual(done.sort(), [...tokens].sort());
    };
    const receive = async (q: DriverQueue<number>, frames: readonly Uint8Array[]): Promise<void> => {
      for (const f of frames) host.send(f, qemuPort, '127.0.0.1');
      const got: Uint8Array[] = [];
      while (got.length < frames.length) {
        for (const c of await q.waitUsed()) {
          const b = rxBufs.get(c.token)!;
          await dma.refresh(b.addr, c.len);
          got.push(b.bytes.slice(NET_HDR, c.len));
          rxBufs.delete(c.token);
        }
      }
      assert.deepEqual(
        got.map((f) => [...f]),
        frames.map((f) => [...f]),
      );
    };

    await post(8);
    await send([0, 1, 2].map((n) => frame(PEER, MAC, n)));
    await receive(
      rx,
      [10, 11].map((n) => frame(MAC, PEER, n)),
    );

    // The receiveq: its six unused buffers come back; the transmitq carries frames meanwhile.
    const returned = await rx.reset();
    assert.deepEqual(
      returned.sort((a, b) => a - b),
      [2, 3, 4, 5, 6, 7],
    );
    for (const token of returned) rxBufs.delete(token);
    await send([3, 4, 5, 6].map((n) => frame(PEER, MAC, n)));
    await rx.reenable({ size: 32 });
    assert.equal(rx.size, 32);
    await post(4);
    await receive(
      rx,
      [12, 13, 14].map((n) => frame(MAC, PEER, n)),
    );

    // The transmitq: reset with nothing in flight, re-enabled smaller, sending again; receiving throughout.
    assert.deepEqual(await tx.reset(), []);
    await receive(
      rx,
      [15].map((n) => frame(MAC, PEER, n)),
    );
    await tx.reenable({ size: 16 });
    await send([7, 8].map((n) => frame(PEER, MAC, n)));
    assert.equal(drv.fault, undefined);
    assert.equal((await drv.checkStatus()) & 0x40, 0, 'no DEVICE_NEEDS_RESET');
  } finally {
    await drv.close();
  }
});
