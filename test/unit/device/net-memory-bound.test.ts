/**
 * Device memory is bounded by configuration, never by guest input (issue 17): a guest that pushes
 * many rounds of maximal transmit chains and receive buffers through virtio-net leaves the host
 * process no larger than the device's configured working set, measured after a forced GC. A device
 * that kept anything per request (a frame, a chain, a map entry) would grow by the rounds' volume.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { VirtioNetDevice } from '../../../src/device/net/net-device.js';
import type { NetBackend, NetBackendPort } from '../../../src/device/net/backend.js';
import { ArrayGuestMemory } from '../../../src/memory/guest-memory.js';
import { RamDma } from '../../../src/bus/ram-dma.js';
import { deviceRing, driverRing } from '../../../src/queue/rings.js';
import { featureSet, VIRTIO_F_VERSION_1 } from '../../../src/spec/features.js';
import { VIRTIO_NET_F_MRG_RXBUF, VIRTIO_NET_HDR_SIZE } from '../../../src/spec/net.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

function hostBytes(): number {
  gc();
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

const SIZE = 256;
const FRAME = 8 << 10;
const FEATURES = featureSet(VIRTIO_F_VERSION_1, VIRTIO_NET_F_MRG_RXBUF);

test('virtio-net: 64 rounds of full transmit and receive rings (128 MiB through the device) grow the host by less than 2 MiB', () => {
  // A backend that keeps no frame: each goes straight back into the receiveq (NetBackendPort.place).
  let port: NetBackendPort | undefined;
  let moved = 0;
  const backend: NetBackend = {
    attach: (p) => (port = p),
    send: (frame) => {
      port!.place(frame);
      moved++;
    },
    close: async () => {},
  };
  const ram = 8 << 20;
  const memory = new ArrayGuestMemory(ram);
  const dma = new RamDma(memory, 0, ram);
  const device = new VirtioNetDevice({ backend, queueSize: SIZE });
  const [rx, tx] = [0, 1].map((index) => driverRing<number>({ index, size: SIZE, dma, features: FEATURES, layout: 'separate' }));
  const queues = [rx!, tx!].map((r) => deviceRing({ index: r.index, size: SIZE, memory, areas: r.areas, features: FEATURES }));
  device.attach({ memory, configChanged: () => {}, usedBuffers: () => {}, needsReset: (e) => assert.fail(e) });
  device.activate({ features: FEATURES, queues });
  const txBuf = dma.alloc(VIRTIO_NET_HDR_SIZE + FRAME, 16);
  const rxBuf = dma.alloc(64, 16);
  const round = (r: number): void => {
    // Every transmit chain a whole frame; every receive buffer 64 bytes, so each frame spans 128.
    for (let k = 0; k < SIZE; k++) tx!.add([{ addr: txBuf.addr, len: VIRTIO_NET_HDR_SIZE + FRAME - (k & 63) - (r & 7) }], [], k);
    for (let k = 0; rx!.numFree > 0; k++) rx!.add([], [{ addr: rxBuf.addr, len: 64 }], k);
    tx!.publishSync();
    rx!.publishSync();
    device.queueNotify(1);
    port!.notify();
    assert.equal(tx!.reapSync().length, SIZE);
    rx!.reapSync();
  };
  for (let r = 0; r < 8; r++) round(r);
  const before = hostBytes();
  for (let r = 8; r < 72; r++) round(r);
  const after = hostBytes();
  assert.equal(moved, 72 * SIZE, 'every chain was transmitted');
  assert.ok(device.stats.rxFrames > 0 && device.stats.rxDropped > 0, 'the receive side took frames and dropped the rest');
  assert.ok(after - before < 2 << 20, `host memory grew by ${((after - before) / 1024).toFixed(0)} KiB`);
});
