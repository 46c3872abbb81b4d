/**
 * The net driver against a device that is a script: the test plays the device's side of the rings
 * (with the device half's own split ring over the fake bus's DMA memory) and returns what a hostile
 * device would.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VirtioNetDriver } from '../../../src/driver/net/net-driver.js';
import { bdf } from '../../../src/bus/pci-bus.js';
import { DeviceFaultError } from '../../../src/errors.js';
import { SplitQueue } from '../../../src/queue/split/device-ring.js';
import * as N from '../../../src/spec/net.js';
import { qemuLikeVirtio } from '../../../src/testing/config-space-builder.js';
import { FakePciBus } from '../../../src/testing/fake-pci-bus.js';
import { ethFrame, mac } from '../../helpers/net-frames.js';
import { ScriptedBar4 } from '../../helpers/scripted-modern-bar.js';

const FN = bdf(0, 5, 0);
const RXQ = N.netRxQueueIndex(0);

/** A modern virtio-net function offering MRG_RXBUF (word 0) and VERSION_1 (word 1), queues of `queueSize`. */
function scriptedNet(queueSize: number, dmaBytes: number): { bus: FakePciBus; bar: ScriptedBar4 } {
  const bus = new FakePciBus(dmaBytes);
  const bar = new ScriptedBar4();
  bar.deviceFeatureWords = [1 << N.VIRTIO_NET_F_MRG_RXBUF, 1];
  bar.numQueues = 2;
  bar.queueSize.set(RXQ, queueSize);
  bar.queueSize.set(N.netTxQueueIndex(0), queueSize);
  bus.add(FN, qemuLikeVirtio({ deviceId: 0x1041 }).build(), new Map([[4, bar]]));
  return { bus, bar };
}

/** The device's side of the driver's receiveq, as the driver enabled it. */
function deviceRxQueue(bus: FakePciBus, bar: ScriptedBar4): SplitQueue {
  const q = bar.enabledQueues.get(RXQ)!;
  const size = bar.queueSize.get(RXQ)!;
  return new SplitQueue({
    index: RXQ,
    size,
    memory: bus.dma.memory,
    desc: q.desc,
    driver: q.driver,
    device: q.device,
    eventIdx: false,
    indirect: false,
  });
}

test('thousands of short receive buffers returned at once: counted and parked without recursion, and the next good frame arrives', async () => {
  const size = 32768;
  const { bus, bar } = scriptedNet(size, 8 << 20);
  const drv = await VirtioNetDriver.open(bus, FN, {
    queueSize: size,
    rxBufferSize: 64,
    interrupts: 'intx',
    pollIntervalMs: 5,
    timeoutMs: 5000,
  });
  try {
    const rx = deviceRxQueue(bus, bar);
    const frame = ethFrame(mac(2, 0, 0, 0, 0, 1), mac(2, 0, 0, 0, 0, 2), 64 - N.VIRTIO_NET_HDR_SIZE - 14);
    for (let i = 0; i < size; i++) {
      const chain = rx.pop()!;
      if (i < size - 1) {
        rx.pushUsed(chain.head, 3); // shorter than the 12-byte header: nonsense
        continue;
      }
      const buf = chain.view(0);
      N.encodeVirtioNetHdr(
        { flags: 0, gsoType: 0, hdrLen: 0, gsoSize: 0, csumStart: 0, csumOffset: 0, numBuffers: 1 },
        buf,
        N.VIRTIO_NET_HDR_SIZE,
      );
      buf.set(frame, N.VIRTIO_NET_HDR_SIZE);
      rx.pushUsed(chain.head, N.VIRTIO_NET_HDR_SIZE + frame.byteLength);
    }
    assert.deepEqual(await drv.receive(), frame);
    assert.equal(drv.stats.rxErrors, size - 1);
    assert.equal(drv.stats.rxFrames, 1);
    // The good frame gave every parked buffer back to the device (published just after the delivery).
    for (let waited = 0; !rx.hasAvailable() && waited < 1000; waited += 5) await new Promise((r) => setTimeout(r, 5));
    let available = 0;
    while (rx.pop() !== null) available++;
    assert.equal(available, size);
  } finally {
    await drv.close();
  }
});

test('a receive loop stopped by a device fault records it: later receives reject at once with that typed fault; sending still works', async () => {
  const { bus, bar } = scriptedNet(64, 4 << 20);
  const drv = await VirtioNetDriver.open(bus, FN, { interrupts: 'intx', pollIntervalMs: 5, timeoutMs: 5000 });
  try {
    const q = bar.enabledQueues.get(RXQ)!;
    // used.idx 1 with an id no chain has (64 > every head): the driver's ring refuses it.
    const used = bus.dma.memory;
    used.write32(q.device + 4, 64);
    used.write16(q.device + 2, 1);
    const first = drv.receive();
    await assert.rejects(first, (e: unknown) => e instanceof DeviceFaultError && e.code === 'ERR_DEVICE_USED_ID');
    const start = Date.now();
    await assert.rejects(drv.receive(), (e: unknown) => e instanceof DeviceFaultError && e.code === 'ERR_DEVICE_USED_ID');
    assert.ok(Date.now() - start < 1000, 'not a timeout');
    // Only the receiveq is broken, as Linux marks one virtqueue broken: the transmitq takes a frame.
    await drv.send(new Uint8Array(60));
    assert.equal(drv.stats.txFrames, 1);
  } finally {
    await drv.close();
  }
});

test('a device offering the legal queue size 32768: the driver takes at most 256 by default', async () => {
  const { bus, bar } = scriptedNet(32768, 4 << 20);
  const free = bus.dma.allocator.freeBytes;
  const drv = await VirtioNetDriver.open(bus, FN, { interrupts: 'intx' });
  assert.equal(bar.queueSize.get(RXQ), 256);
  assert.equal(bar.queueSize.get(N.netTxQueueIndex(0)), 256);
  await drv.close();
  assert.equal(bus.dma.allocator.freeBytes, free);
});

test('receive buffers that do not fit in DMA memory: open fails with a device error and frees everything it took', async () => {
  // Rings for 4096 fit; 4096 receive buffers of 2048 bytes (8 MiB) do not.
  const { bus } = scriptedNet(4096, 4 << 20);
  const free = bus.dma.allocator.freeBytes;
  await assert.rejects(
    VirtioNetDriver.open(bus, FN, { queueSize: 4096, interrupts: 'intx' }),
    (e: unknown) => e instanceof DeviceFaultError && e.code === 'ERR_DEVICE_QUEUE',
  );
  assert.equal(bus.dma.allocator.freeBytes, free);
  assert.equal(bus.dma.allocator.freeBlocks, 1);
});
