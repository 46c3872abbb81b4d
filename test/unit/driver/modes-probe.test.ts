import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Machine } from '../../../src/platform/machine.js';
import { RngDevice } from '../../../src/device/rng/rng-device.js';
import { RngDriver } from '../../../src/driver/rng/rng-driver.js';
import { VirtioDriver } from '../../../src/driver/virtio-driver.js';
import { bdf, type Bdf } from '../../../src/bus/pci-bus.js';
import { ProbeError, UsageError } from '../../../src/errors.js';
import {
  VIRTIO_PCI_CAP_COMMON_CFG,
  VIRTIO_PCI_CAP_DEVICE_CFG,
  VIRTIO_PCI_CAP_ISR_CFG,
  VIRTIO_MSI_NO_VECTOR,
} from '../../../src/spec/virtio-pci.js';
import type { VirtioPciMode } from '../../../src/transport/pci/virtio-pci-function.js';
import { RecordingBus } from '../../../src/testing/recording-bus.js';
import { ConfigSpaceBuilder } from '../../../src/testing/config-space-builder.js';
import { FakePciBus } from '../../../src/testing/fake-pci-bus.js';
import { LoopbackDevice } from '../../helpers/loopback-device.js';

/** An rng device of `mode` on a machine, and a bus recording everything the driver does. */
function rngMachine(mode: VirtioPciMode, msixVectors: number) {
  const m = new Machine({ ramSize: 8 << 20 });
  const { bdf: fn, fn: pci } = m.plugVirtio(new RngDevice(), { mode, msixVectors });
  return { m, fn, pci, bus: new RecordingBus(m.bus) };
}

/** Open, read, close: everything a driver does in a life. */
async function driveRng(bus: RecordingBus, fn: Bdf, forceLegacy: boolean): Promise<RngDriver> {
  const rng = await RngDriver.open(bus, fn, { forceLegacy });
  assert.equal((await rng.read(64)).byteLength, 64);
  await rng.close();
  return rng;
}

for (const msixVectors of [0, 2]) {
  test(`transitional device, no forceLegacy (MSI-X ${msixVectors > 0 ? 'on' : 'off'}): the driver makes zero BAR0 accesses`, async () => {
    const { fn, pci, bus } = rngMachine('transitional', msixVectors);
    const rng = await driveRng(bus, fn, false);
    assert.equal(rng.virtio.transport.kind, 'modern');
    assert.match(rng.virtio.probe.explanation, /^modern: common-cfg cap at .*; legacy BAR0 not used$/);
    const bar0 = rng.virtio.probe.bars.find((b) => b.index === 0)!;
    assert.equal(bar0.kind, 'io');
    assert.deepEqual(
      bus.log.filter((a) => a.op === 'ioRead' || a.op === 'ioWrite'),
      [],
      'no I/O access at all',
    );
    assert.ok(
      bus.log.some((a) => a.op === 'memWrite'),
      'the recording saw the modern accesses',
    );
    assert.equal(pci.arbiter!.ignoredAccesses, 0);
  });

  test(`transitional device with forceLegacy (MSI-X ${msixVectors > 0 ? 'on' : 'off'}): zero accesses to the capability structures (BAR4)`, async () => {
    const { fn, pci, bus } = rngMachine('transitional', msixVectors);
    const rng = await driveRng(bus, fn, true);
    assert.equal(rng.virtio.transport.kind, 'legacy');
    assert.match(rng.virtio.probe.explanation, /^legacy \(forced\): capabilities not used; BAR0 is I\/O/);
    const bar4 = rng.virtio.probe.bars.find((b) => b.index === 4)!;
    assert.deepEqual([...bus.within('memRead', bar4.base, bar4.size), ...bus.within('memWrite', bar4.base, bar4.size)], []);
    assert.ok(
      bus.log.some((a) => a.op === 'ioWrite'),
      'the recording saw the legacy accesses',
    );
    // MSI-X table writes (BAR1) are the only memory accesses.
    const bar1 = rng.virtio.probe.bars.find((b) => b.index === 1);
    const mem = bus.log.filter((a) => a.op === 'memRead' || a.op === 'memWrite');
    assert.equal(mem.length, msixVectors > 0 ? bus.within('memWrite', bar1!.base, bar1!.size).length : 0);
    assert.equal(pci.arbiter!.ignoredAccesses, 0);
  });
}

test('forceLegacy on a modern-only device fails cleanly, touching no BAR', async () => {
  const { fn, bus } = rngMachine('modern', 0);
  await assert.rejects(RngDriver.open(bus, fn, { forceLegacy: true }), (e: unknown) => {
    assert.ok(e instanceof ProbeError);
    assert.equal(e.code, 'ERR_PROBE_LEGACY_UNAVAILABLE');
    assert.match(e.message, /forceLegacy: no legacy interface: device ID 0x1044 is not transitional/);
    return true;
  });
  assert.deepEqual(
    bus.log.filter((a) => a.op !== 'configRead' && a.op !== 'configWrite'),
    [],
  );
});

test('legacy-only device: the probe explains why, and the driver uses BAR0', async () => {
  const { fn, bus } = rngMachine('legacy', 2);
  const rng = await driveRng(bus, fn, false);
  assert.equal(rng.virtio.transport.kind, 'legacy');
  assert.match(rng.virtio.probe.explanation, /^legacy: no common-cfg capability; BAR0 is I\/O \(32 ports at 0x[0-9a-f]+\)$/);
});

test('end to end: a transitional function with COMMON_CFG but no NOTIFY_CFG is an error, never a fallback to BAR0', async () => {
  const fake = new FakePciBus();
  const FN = bdf(0, 5, 0);
  const built = new ConfigSpaceBuilder({ deviceId: 0x1005, revision: 0, subsystemId: 4 })
    .bar(0, { kind: 'io', size: 0x20 })
    .bar(4, { kind: 'memory', size: 0x4000, is64: true, prefetchable: true })
    .virtioCap({ cfgType: VIRTIO_PCI_CAP_COMMON_CFG, bar: 4, offset: 0, length: 0x1000 })
    .virtioCap({ cfgType: VIRTIO_PCI_CAP_ISR_CFG, bar: 4, offset: 0x1000, length: 0x1000 })
    .virtioCap({ cfgType: VIRTIO_PCI_CAP_DEVICE_CFG, bar: 4, offset: 0x2000, length: 0x1000 })
    .build();
  fake.add(FN, built);
  const bus = new RecordingBus(fake);
  await assert.rejects(RngDriver.open(bus, FN), (e: unknown) => {
    assert.ok(e instanceof ProbeError);
    assert.equal(e.code, 'ERR_PROBE_MISSING_CAPABILITY');
    assert.match(e.message, /present but no notify-cfg capability/);
    return true;
  });
  assert.deepEqual(
    bus.log.filter((a) => a.op !== 'configRead' && a.op !== 'configWrite'),
    [],
    'neither BAR0 nor BAR4 touched',
  );
});

/** A loopback device with three queues, driven to DRIVER_OK; one request on queue 2 round-trips. */
async function loopback(msixVectors: number, interrupts?: 'auto' | 'msix' | 'intx', noMsiBus = false) {
  const m = new Machine({ ramSize: 8 << 20 });
  const { bdf: fn, fn: pci } = m.plugVirtio(new LoopbackDevice({ queueMaxSizes: [16, 16, 16] }), { msixVectors });
  const bus = new RecordingBus(m.bus);
  if (noMsiBus) bus.msiMessage = () => undefined;
  const drv = await VirtioDriver.open(bus, fn, { ...(interrupts ? { interrupts } : {}), timeoutMs: 2000 });
  await drv.negotiate(0n);
  const queues = [await drv.setupQueue<number>(0), await drv.setupQueue<number>(1), await drv.setupQueue<number>(2)];
  await drv.driverOk();
  const buf = bus.dma.alloc(8, 8);
  buf.bytes.set([1, 2, 3, 4]);
  const out = bus.dma.alloc(8, 8);
  queues[2]!.submit([{ addr: buf.addr, len: 4 }], [{ addr: out.addr, len: 8 }], 9);
  await queues[2]!.kick();
  assert.deepEqual(await queues[2]!.waitUsed(), [{ token: 9, len: 4 }]);
  assert.deepEqual([...out.bytes.subarray(0, 4)], [1, 2, 3, 4]);
  const vectors = pci.notifications.queueVectors.slice();
  const configVector = pci.notifications.configVector;
  const plan = drv.interrupts!;
  await drv.close();
  return { plan, vectors, configVector, afterClose: pci.notifications.queueVectors.slice() };
}

test('MSI-X plan: one vector per queue plus config when the table has room', async () => {
  const r = await loopback(4);
  assert.equal(r.plan.kind, 'msix-per-queue');
  assert.equal(r.configVector, 0);
  assert.deepEqual(r.vectors, [1, 2, 3]);
  assert.deepEqual(r.afterClose, [VIRTIO_MSI_NO_VECTOR, VIRTIO_MSI_NO_VECTOR, VIRTIO_MSI_NO_VECTOR], 'unmapped by the reset at close');
  assert.match(r.plan.description, /config vector 0, queues 1\.\.3 \(4 of 4 vectors\)/);
});

test('MSI-X plan: falls back to one shared queue vector, then to INTx, as Linux vp_find_vqs', async () => {
  const shared = await loopback(3);
  assert.equal(shared.plan.kind, 'msix-shared');
  assert.match(shared.plan.description, /queues share vector 1 \(2 of 3 vectors\)/);
  assert.deepEqual(shared.vectors, [1, 1, 1]);
  const intx = await loopback(1);
  assert.equal(intx.plan.kind, 'intx');
  assert.match(
    intx.plan.description,
    /^INTx \(one vector per queue: needs 4 vectors, the table has 1; one shared queue vector: needs 2 vectors, the table has 1\)$/,
  );
  assert.match((await loopback(0)).plan.description, /^INTx \(no MSI-X capability\)$/);
  assert.match((await loopback(4, 'intx')).plan.description, /^INTx \(MSI-X not wanted\)$/);
  assert.match((await loopback(4, 'auto', true)).plan.description, /the bus cannot deliver MSI vector 0/);
});

test("interrupts: 'msix' without MSI-X is a UsageError", async () => {
  await assert.rejects(
    loopback(0, 'msix'),
    (e: unknown) => e instanceof UsageError && /MSI-X cannot be used: no MSI-X capability/.test(e.message),
  );
});

for (const mode of ['modern', 'legacy'] as const) {
  test(`MSI-X (${mode} interface): the config vector's message reaches the config-change listeners, without an ISR read`, async () => {
    const m = new Machine({ ramSize: 8 << 20 });
    const device = new LoopbackDevice({ deviceType: 4, queueMaxSizes: [16] });
    const { bdf: fn } = m.plugVirtio(device, { mode, msixVectors: 2 });
    const bus = new RecordingBus(m.bus);
    const drv = await VirtioDriver.open(bus, fn);
    await drv.negotiate(0n);
    await drv.setupQueue(0);
    await drv.driverOk();
    const changed = new Promise<void>((resolve) => drv.onConfigChange(resolve));
    const isrBefore = bus.log.length;
    await drv.writeConfig(4, 4, 0x1234); // the loopback's scratch: a configuration change
    await changed;
    assert.equal(device.scratch, 0x1234);
    assert.equal(await drv.readConfig(4, 4), 0x1234, mode === 'legacy' ? 'device config at 24 while MSI-X is enabled' : 'device config');
    const bar0 = drv.probe.bars.find((b) => b.index === 0);
    // The modern ISR is BAR4+0x1000; the legacy ISR is BAR0+19: neither was read for this interrupt.
    const isrReads = bus.log
      .slice(isrBefore)
      .filter(
        (a) =>
          (a.op === 'ioRead' && a.addr === (bar0?.base ?? -1) + 19) ||
          (a.op === 'memRead' && drv.transport.kind === 'modern' && a.size === 1 && a.addr % 0x4000 === 0x1000),
      );
    assert.deepEqual(isrReads, []);
    await drv.close();
  });
}
