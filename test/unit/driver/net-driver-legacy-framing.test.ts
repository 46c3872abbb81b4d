/**
 * VIRTIO_F_ANY_LAYOUT on the legacy interface (6.3): our transitional and legacy devices offer it,
 * our driver accepts it, and without it the net driver frames its chains by the legacy rules of
 * 5.1.9.8 (header and frame in separate descriptors; control class+command, data and ack each in
 * their own, the MAC table's two tables in two).
 */

import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { VirtioNetDevice } from '../../../src/device/net/net-device.js';
import { DriverQueue } from '../../../src/driver/driver-queue.js';
import { VirtioNetDriver } from '../../../src/driver/net/net-driver.js';
import type { DmaSpan } from '../../../src/driver/driver-queue.js';
import type { PciBus } from '../../../src/bus/pci-bus.js';
import { Machine } from '../../../src/platform/machine.js';
import { bit, hasFeature, VIRTIO_F_ANY_LAYOUT, VIRTIO_F_VERSION_1 } from '../../../src/spec/features.js';
import * as N from '../../../src/spec/net.js';
import { PCI_BASE_ADDRESS_0 } from '../../../src/spec/pci.js';
import { VIRTIO_PCI_HOST_FEATURES } from '../../../src/spec/virtio-pci.js';
import { ethFrame, mac, RecordingNetBackend } from '../../helpers/net-frames.js';
import type { VirtioPciMode } from '../../../src/transport/pci/virtio-pci-function.js';

const MAC_B = mac(0x02, 0, 0, 0, 0, 0x0b);
const MAC_A = mac(0x02, 0, 0, 0, 0, 0x0a);

/** Every chain a driver queue is given: the lengths of its device-readable and device-writable spans. */
const chains: { queue: number; out: number[]; inn: number[] }[] = [];
const submit = DriverQueue.prototype.submit;
DriverQueue.prototype.submit = function <T>(this: DriverQueue<T>, out: readonly DmaSpan[], inn: readonly DmaSpan[], token: T): number {
  chains.push({ queue: this.index, out: out.map((s) => s.len), inn: inn.map((s) => s.len) });
  return submit.call(this, out, inn, token);
};
after(() => {
  DriverQueue.prototype.submit = submit;
});

/** `bus` with VIRTIO_F_ANY_LAYOUT taken out of what the legacy header's host features read. */
function withoutAnyLayout(bus: PciBus, bdf: number): PciBus {
  return new Proxy(bus, {
    get(target, prop) {
      if (prop === 'ioRead')
        return async (port: number, size: 1 | 2 | 4) => {
          const value = await target.ioRead(port, size);
          // BAR0 as the driver's probe assigned it.
          const bar0 = (await target.configRead(bdf, PCI_BASE_ADDRESS_0, 4)) & ~3;
          return port === bar0 + VIRTIO_PCI_HOST_FEATURES ? value & ~Number(bit(VIRTIO_F_ANY_LAYOUT)) : value;
        };
      const value: unknown = Reflect.get(target, prop, target);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}

async function open(mode: VirtioPciMode, anyLayout: boolean) {
  const machine = new Machine({ ramSize: 16 << 20 });
  const backend = new RecordingNetBackend();
  const device = new VirtioNetDevice({ backend, mac: MAC_B });
  const { bdf } = machine.plugVirtio(device, { mode });
  const bus = anyLayout ? machine.bus : withoutAnyLayout(machine.bus, bdf);
  const driver = await VirtioNetDriver.open(bus, bdf, { timeoutMs: 2000, forceLegacy: mode === 'transitional' });
  return { backend, device, driver };
}

for (const mode of ['legacy', 'transitional'] as const) {
  test(`${mode} device, legacy interface: VIRTIO_F_ANY_LAYOUT offered and accepted; one descriptor per buffer`, async (t) => {
    const { backend, driver } = await open(mode, true);
    t.after(() => driver.close());
    assert.equal(driver.core.transport.kind, 'legacy');
    assert.ok(hasFeature(driver.core.deviceFeatures, VIRTIO_F_ANY_LAYOUT), 'offered');
    assert.ok(hasFeature(driver.features, VIRTIO_F_ANY_LAYOUT), 'accepted');
    chains.length = 0;
    const f = ethFrame(MAC_A, MAC_B, 100);
    await driver.send(f);
    assert.deepEqual(backend.sent.at(-1), f);
    assert.deepEqual(chains, [{ queue: N.netTxQueueIndex(0), out: [12 + f.byteLength], inn: [] }]);
  });
}

test('modern interface of a transitional device: VIRTIO_F_ANY_LAYOUT is not offered (legacy-only bit)', async (t) => {
  const machine = new Machine({ ramSize: 16 << 20 });
  const device = new VirtioNetDevice({ backend: new RecordingNetBackend(), mac: MAC_B });
  const { bdf } = machine.plugVirtio(device, { mode: 'transitional' });
  const driver = await VirtioNetDriver.open(machine.bus, bdf, { timeoutMs: 2000 });
  t.after(() => driver.close());
  assert.ok(hasFeature(driver.features, VIRTIO_F_VERSION_1));
  assert.equal(hasFeature(driver.core.deviceFeatures, VIRTIO_F_ANY_LAYOUT), false);
});

test('legacy interface without VIRTIO_F_ANY_LAYOUT: header, frame, control parts and ack each in their own descriptors (5.1.9.8)', async (t) => {
  chains.length = 0;
  const { backend, device, driver } = await open('legacy', false);
  t.after(() => driver.close());
  assert.equal(hasFeature(driver.features, VIRTIO_F_ANY_LAYOUT), false);
  const hdr = 12; // MRG_RXBUF negotiated: the 12-byte header on the legacy interface too
  assert.ok(hasFeature(driver.features, N.VIRTIO_NET_F_MRG_RXBUF));
  const rx = chains.filter((c) => c.queue === N.netRxQueueIndex(0));
  assert.ok(rx.length > 0);
  for (const c of rx) assert.deepEqual(c, { queue: 0, out: [], inn: [hdr, 2048 - hdr] });

  chains.length = 0;
  const f = ethFrame(MAC_A, MAC_B, 100);
  await driver.send(f);
  assert.deepEqual(backend.sent.at(-1), f, 'the device put header and frame back together');
  assert.deepEqual(chains, [{ queue: N.netTxQueueIndex(0), out: [hdr, f.byteLength], inn: [] }]);

  const incoming = ethFrame(MAC_B, MAC_A, 1400);
  backend.inject(incoming);
  assert.deepEqual(await driver.receive(), incoming, 'a received frame spans the header and data descriptors');

  chains.length = 0;
  const stranger = mac(0x02, 0, 0, 0, 0, 0x77);
  await driver.setMacTable([stranger], []);
  await driver.setPromiscuous(true);
  const ctrl = N.netCtrlQueueIndex(1);
  assert.deepEqual(chains, [
    { queue: ctrl, out: [2, 4 + 6, 4], inn: [1] },
    { queue: ctrl, out: [2, 1], inn: [1] },
  ]);
  assert.equal(device.filter.modes.promisc, true);
  assert.equal(device.stats.ctrlErrors, 0);
});
