import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Machine } from '../../../src/platform/machine.js';
import { BlkDevice } from '../../../src/device/blk/blk-device.js';
import { MemoryBlockBackend } from '../../../src/device/blk/memory-backend.js';
import { RngDevice } from '../../../src/device/rng/rng-device.js';
import { BlkDriver } from '../../../src/driver/blk/blk-driver.js';
import { RngDriver } from '../../../src/driver/rng/rng-driver.js';
import { TransportMonitor, type FunctionView } from '../../../src/monitor/transport-monitor.js';
import { UsageError } from '../../../src/errors.js';
import { MODERN_BAR, MODERN_COMMON_OFFSET } from '../../../src/transport/pci/modern-device.js';
import { LEGACY_BAR } from '../../../src/transport/pci/legacy-device.js';
import { VIRTIO_PCI_COMMON_STATUS, VIRTIO_PCI_STATUS } from '../../../src/spec/virtio-pci.js';
import {
  VIRTIO_CONFIG_S_ACKNOWLEDGE,
  VIRTIO_CONFIG_S_DRIVER,
  VIRTIO_CONFIG_S_DRIVER_OK,
  VIRTIO_CONFIG_S_FEATURES_OK,
} from '../../../src/spec/status.js';
import { offering, type RingName } from '../../helpers/ring-formats.js';
import type { VirtioPciFunction, VirtioPciMode } from '../../../src/transport/pci/virtio-pci-function.js';

function pattern(n: number): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => (i * 31 + 7) & 0xff);
}

function only(snapshot: { functions: readonly FunctionView[] }, name: string): FunctionView {
  const fn = snapshot.functions.find((f) => f.name === name);
  assert.ok(fn, `no function ${name} in ${snapshot.functions.map((f) => f.name).join(', ')}`);
  return fn;
}

/** A blk and an rng function of `mode` on one machine, watched from power-on. */
function setup(mode: VirtioPciMode, ring: RingName = 'split', historyLimit?: number) {
  const m = new Machine({ ramSize: 32 << 20 });
  const image = new Uint8Array(1 << 20);
  const blk = m.plugVirtio(new BlkDevice({ backend: new MemoryBlockBackend(image) }), { mode, msixVectors: 2, ...offering(ring) });
  const rng = m.plugVirtio(new RngDevice({ entropy: (dst) => dst.fill(0x5a) }), { mode });
  const monitor = new TransportMonitor(historyLimit === undefined ? {} : { historyLimit });
  monitor.watch(blk.fn, { bdf: blk.bdf });
  monitor.watch(rng.fn, { bdf: rng.bdf });
  return { m, image, blk, rng, monitor };
}

/** The guest address of BAR `index` of `fn` as the driver programmed it. */
function barBase(fn: VirtioPciFunction, index: number): number {
  const bar = fn.decodedBars().find((b) => b.index === index);
  assert.ok(bar, `BAR${index} is not decoded`);
  return bar.base;
}

test('before any driver: no interface, status 0, queues not live, the capability map of a modern function', () => {
  const { monitor } = setup('modern');
  const blk = only(monitor.snapshot(), 'blk');
  assert.equal(blk.interface, 'none');
  assert.equal(blk.status, 0);
  assert.equal(blk.statusNames, '0');
  assert.deepEqual(blk.statusHistory, []);
  assert.equal(blk.typeName, 'block device');
  assert.match(blk.offeredFeatures.names, /VERSION_1/);
  assert.equal(blk.negotiatedFeatures.names, '(none)');
  assert.deepEqual(
    blk.queues.map((q) => [q.avail, q.used, q.inFlight, q.interrupts, q.notifications]),
    blk.queues.map(() => [undefined, undefined, undefined, 0, 0]),
  );
  const byName = new Map(blk.capabilities.structures.map((s) => [s.name, s]));
  assert.deepEqual(
    [...byName.keys()].sort(),
    ['common-cfg', 'device-cfg', 'isr-cfg', 'msix-pba', 'msix-table', 'notify-cfg', 'pci-cfg'],
    'a modern function has no legacy header',
  );
  assert.deepEqual(
    ['common-cfg', 'isr-cfg', 'device-cfg', 'notify-cfg'].map((n) => [byName.get(n)!.bar, byName.get(n)!.offset, byName.get(n)!.length]),
    [
      [4, 0x0, 0x1000],
      [4, 0x1000, 0x1000],
      [4, 0x2000, 0x1000],
      [4, 0x3000, 0x1000],
    ],
  );
  assert.deepEqual(
    [byName.get('msix-table'), byName.get('msix-pba')].map((s) => [s!.bar, s!.offset, s!.length]),
    [
      [1, 0, 2 * 16],
      [1, 0x800, 8],
    ],
  );
  assert.equal(byName.get('pci-cfg')!.space, 'config');
  assert.match(blk.lspci, /Vendor Specific Information: VirtIO: common-cfg/);
  assert.match(blk.lspci, /MSI-X: Enable- Count=2/);
});

test('a modern driver: interface, status history, features and queue counters move with real requests', async (t) => {
  const { m, image, blk, rng, monitor } = setup('modern');
  const driver = await BlkDriver.open(m.bus, blk.bdf);
  t.after(() => driver.close());
  const data = pattern(8 * 512);
  await driver.write(16, data);
  assert.deepEqual(image.subarray(16 * 512, 24 * 512), data);
  assert.deepEqual(await driver.read(16, 8), data);

  const s = only(monitor.snapshot(), 'blk');
  assert.equal(s.interface, 'modern');
  const ready = VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK;
  assert.equal(s.status, ready);
  assert.equal(s.statusNames, 'ACKNOWLEDGE|DRIVER|DRIVER_OK|FEATURES_OK');
  assert.deepEqual(
    s.statusHistory.map((h) => [h.status, h.cause, h.via]),
    [
      [0, 'reset', 'modern'],
      [1, 'driver', 'modern'],
      [3, 'driver', 'modern'],
      [11, 'driver', 'modern'],
      [15, 'driver', 'modern'],
    ],
  );
  assert.ok(s.statusHistory.every((h, i) => i === 0 || h.at >= s.statusHistory[i - 1]!.at));
  assert.match(s.negotiatedFeatures.names, /VERSION_1/);
  assert.equal(s.negotiatedFeatures.bits, blk.fn.core.negotiatedFeatures);
  assert.equal(s.offeredFeatures.bits, blk.fn.core.offeredFeatures);
  const q = s.queues[0]!;
  assert.equal(q.format, 'split');
  // Two requests (a write and a read): each made available, used and notified.
  assert.equal(q.avail, 2);
  assert.equal(q.used, 2);
  assert.equal(q.inFlight, 0);
  assert.equal(q.notifications, 2);
  assert.equal(q.interrupts, 2);
  assert.match(s.lspci, /MSI-X: Enable\+ Count=2/, 'the decode follows configuration space as the driver changed it');
  assert.match(s.lspci, /Region 4: Memory at [0-9a-f]{8} \(32-bit|Region 4: Memory at [0-9a-f]+ \(64-bit/);

  // The rng function next to it saw nothing of this.
  assert.equal(only(monitor.snapshot(), 'rng').interface, 'none');
  const rngDriver = await RngDriver.open(m.bus, rng.bdf);
  t.after(() => rngDriver.close());
  assert.equal((await rngDriver.read(64)).length, 64);
  const r = only(monitor.snapshot(), 'rng').queues[0]!;
  assert.ok(r.avail! >= 1 && r.used === r.avail && r.notifications >= 1 && r.interrupts >= 1, JSON.stringify(r));
});

test('the packed ring: format packed, positions carry the wrap counter in bit 15', async (t) => {
  const { m, blk, monitor } = setup('modern', 'packed');
  const driver = await BlkDriver.open(m.bus, blk.bdf);
  t.after(() => driver.close());
  await driver.write(0, pattern(512));
  const q = only(monitor.snapshot(), 'blk').queues[0]!;
  assert.equal(q.format, 'packed');
  // One request of three descriptors (header, data, status) from offset 0 with wrap counter 1.
  assert.equal(q.avail, 0x8000 | 3);
  assert.equal(q.used, 0x8000 | 3);
  assert.equal(q.inFlight, 0);
});

test('a driver on the legacy interface of a transitional function shows legacy; an access through modern is counted', async (t) => {
  const { m, blk, monitor } = setup('transitional');
  const driver = await BlkDriver.open(m.bus, blk.bdf, { forceLegacy: true });
  t.after(() => driver.close());
  await driver.write(0, pattern(512));
  let s = only(monitor.snapshot(), 'blk');
  assert.equal(s.interface, 'legacy');
  assert.ok(s.statusHistory.filter((h) => h.cause === 'driver').every((h) => h.via === 'legacy'));
  assert.equal(s.otherInterfaceAccesses, 0);
  assert.equal(s.statusNames, 'ACKNOWLEDGE|DRIVER|DRIVER_OK', 'no FEATURES_OK on the legacy interface');
  const header = s.capabilities.structures.find((x) => x.name === 'legacy-header');
  assert.deepEqual([header?.bar, header?.offset], [LEGACY_BAR, 0]);
  assert.ok(s.queues[0]!.used! >= 1);

  // A hybrid driver: a status write through the modern interface after committing to legacy.
  await m.bus.memWrite(barBase(blk.fn, MODERN_BAR) + MODERN_COMMON_OFFSET + VIRTIO_PCI_COMMON_STATUS, 1, 0x80);
  s = only(monitor.snapshot(), 'blk');
  assert.equal(s.otherInterfaceAccesses, 1);
  assert.match(s.lastOtherInterfaceAccess ?? '', /^modern write8 of 0x80 .*committed to the legacy interface/);
  assert.equal(s.interface, 'legacy');
  assert.equal(s.status & 0x80, 0, 'the ignored write did not set FAILED');
});

test('the status history is bounded: the latest changes are kept and every change is counted', async () => {
  const limit = 4;
  const { m, rng, monitor } = setup('legacy', 'split', limit);
  // The driver places and enables the BARs; closing it resets the device.
  await (await RngDriver.open(m.bus, rng.bdf)).close();
  const port = barBase(rng.fn, LEGACY_BAR) + VIRTIO_PCI_STATUS;
  const cycles = 50;
  for (let i = 0; i < cycles; i++) {
    await m.bus.ioWrite(port, 1, 0);
    await m.bus.ioWrite(port, 1, VIRTIO_CONFIG_S_ACKNOWLEDGE);
    await m.bus.ioWrite(port, 1, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
  }
  const s = only(monitor.snapshot(), 'rng');
  // The driver's reset, three steps and closing reset, then the cycles.
  assert.equal(s.statusChanges, 5 + cycles * 3);
  assert.equal(s.statusHistory.length, limit);
  assert.deepEqual(
    s.statusHistory.map((h) => h.status),
    [3, 0, 1, 3],
  );
  assert.equal(s.interface, 'legacy');
});

test('one observer per device; dispose stops the counters and frees the device for another monitor', async (t) => {
  const { m, blk, monitor } = setup('modern');
  assert.throws(() => new TransportMonitor().watch(blk.fn, { bdf: blk.bdf }), UsageError);
  assert.throws(() => monitor.watch(blk.fn, { bdf: blk.bdf }), UsageError);
  monitor.dispose();
  assert.deepEqual(monitor.snapshot().functions, []);
  const second = new TransportMonitor();
  second.watch(blk.fn, { bdf: blk.bdf, name: 'disk' });
  const driver = await BlkDriver.open(m.bus, blk.bdf);
  t.after(() => driver.close());
  await driver.write(0, pattern(512));
  const s = only(second.snapshot(), 'disk');
  assert.equal(s.queues[0]!.notifications, 1);
  assert.equal(s.statusChanges, 5);
  assert.throws(() => new TransportMonitor({ historyLimit: 0 }), UsageError);
});
