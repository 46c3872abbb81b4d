// VIRTIO_F_SUSPEND (3.4) end to end: our driver suspends our devices with requests in flight and
// resumes them; the device finishes what it was processing, takes nothing new while suspended, holds
// its notifications and resumes where it left off. Then the hostile forms of 3.4.2, at the register
// level, and the driver audit's records of the 3.4.1 rules.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { BlkDevice } from '../../../src/device/blk/blk-device.js';
import { VirtioNetDevice } from '../../../src/device/net/net-device.js';
import { RngDevice } from '../../../src/device/rng/rng-device.js';
import type { VirtioDevice } from '../../../src/core/virtio-device.js';
import { DriverAudit } from '../../../src/core/driver-audit.js';
import { VirtioDriver } from '../../../src/driver/virtio-driver.js';
import type { DriverQueue } from '../../../src/driver/driver-queue.js';
import { DeviceFaultError, UsageError } from '../../../src/errors.js';
import { Machine } from '../../../src/platform/machine.js';
import type { VirtioPciFunction, VirtioPciFunctionOptions } from '../../../src/transport/pci/virtio-pci-function.js';
import { featureSet, hasFeature, VIRTIO_F_SUSPEND } from '../../../src/spec/features.js';
import { VIRTIO_NET_F_MRG_RXBUF } from '../../../src/spec/net.js';
import {
  VIRTIO_CONFIG_S_ACKNOWLEDGE,
  VIRTIO_CONFIG_S_DRIVER,
  VIRTIO_CONFIG_S_DRIVER_OK,
  VIRTIO_CONFIG_S_FEATURES_OK,
  VIRTIO_CONFIG_S_SUSPEND,
} from '../../../src/spec/status.js';
import {
  VIRTIO_PCI_COMMON_Q_DESCLO,
  VIRTIO_PCI_COMMON_Q_ENABLE,
  VIRTIO_PCI_COMMON_Q_SELECT,
  VIRTIO_PCI_COMMON_Q_SIZE,
  VIRTIO_PCI_COMMON_STATUS,
} from '../../../src/spec/virtio-pci.js';
import { blkRead } from '../../helpers/blk-request.js';
import { DeferredBackend } from '../../helpers/deferred-backend.js';
import { ethFrame, mac, RecordingNetBackend } from '../../helpers/net-frames.js';

const LIVE = VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK;
const SUSPENDED = (LIVE & ~VIRTIO_CONFIG_S_DRIVER_OK) | VIRTIO_CONFIG_S_SUSPEND;
const MODERN_BAR = 4;

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

async function open(
  t: TestContext,
  device: VirtioDevice,
  wanted = 0n,
  options: VirtioPciFunctionOptions = {},
): Promise<{ m: Machine; fn: VirtioPciFunction; drv: VirtioDriver }> {
  const m = new Machine({ ramSize: 16 << 20 });
  const { bdf, fn } = m.plugVirtio(device, options);
  const drv = await VirtioDriver.open(m.bus, bdf, { timeoutMs: 2000 });
  t.after(() => drv.close());
  await drv.negotiate(wanted);
  return { m, fn, drv };
}

const status = (fn: VirtioPciFunction): number => fn.barRead(MODERN_BAR, VIRTIO_PCI_COMMON_STATUS, 1);
const writeStatus = (fn: VirtioPciFunction, value: number): void => fn.barWrite(MODERN_BAR, VIRTIO_PCI_COMMON_STATUS, 1, value);

async function collect<T>(q: DriverQueue<T>, count: number): Promise<T[]> {
  const tokens: T[] = [];
  while (tokens.length < count) for (const c of await q.waitUsed()) tokens.push(c.token);
  return tokens;
}

const disk = Uint8Array.from({ length: 1 << 20 }, (_, i) => (i * 7 + (i >> 9)) & 0xff);

test('blk: suspension waits for the reads in flight, takes nothing new, and resumes where it left off', async (t) => {
  const backend = new DeferredBackend(disk);
  // maxInFlight 2: of four reads made available, two wait in the ring when the suspension starts.
  const { m, fn, drv } = await open(t, new BlkDevice({ backend, queueSize: 16, maxInFlight: 2 }));
  assert.ok(hasFeature(drv.features, VIRTIO_F_SUSPEND), 'offered by default and accepted by our driver');
  const q = await drv.setupQueue<number>(0);
  await drv.driverOk();
  const reads = [0, 1, 2, 3].map((s) => blkRead(m, q, s));
  await q.kick();
  assert.equal(backend.pending.length, 2);

  let suspended = false;
  const suspending = drv.suspend().then(() => (suspended = true));
  await tick();
  assert.equal(status(fn), LIVE | VIRTIO_CONFIG_S_SUSPEND, 'suspension under way: DRIVER_OK still shows while two reads are processed');
  assert.equal(suspended, false);
  await assert.rejects(q.kick(), UsageError, 'the driver makes nothing available while suspended');

  backend.releaseAll();
  await suspending;
  assert.equal(status(fn), SUSPENDED, 'suspended: SUSPEND set, DRIVER_OK clear');
  assert.deepEqual((await collect(q, 2)).sort(), [0, 1], 'both reads in flight were used before the device showed itself suspended');
  await tick();
  assert.equal(backend.pending.length, 0, 'the two reads still in the ring were not taken');

  // A hostile notification while suspended: nothing is consumed.
  fn.core.notify(0);
  await tick();
  assert.equal(backend.pending.length, 0, 'a notification while suspended starts nothing');

  await drv.resume();
  assert.equal(status(fn), LIVE, 'running again');
  assert.equal(backend.pending.length, 2, 'the reads left in the ring started at resume, without a new notification');
  backend.releaseAll();
  assert.deepEqual((await collect(q, 2)).sort(), [2, 3]);
  reads.forEach((r, sector) => {
    assert.equal(r.status[0], 0);
    assert.deepEqual(r.data, disk.subarray(sector * 512, (sector + 1) * 512));
  });
});

test('the driver refuses suspend() without VIRTIO_F_SUSPEND; the device ignores a SUSPEND write then', async (t) => {
  const { fn, drv } = await open(t, new RngDevice(), 0n, { suspend: false });
  assert.equal(hasFeature(drv.features, VIRTIO_F_SUSPEND), false);
  await drv.setupQueue(0);
  await drv.driverOk();
  await assert.rejects(drv.suspend(), UsageError);
  writeStatus(fn, LIVE | VIRTIO_CONFIG_S_SUSPEND);
  assert.equal(status(fn), LIVE, 'SUSPEND ignored: not negotiated');
});

test('suspend() times out with a typed error on a device that never shows itself suspended', async (t) => {
  const backend = new DeferredBackend(disk);
  const { m, drv } = await open(t, new BlkDevice({ backend }));
  const q = await drv.setupQueue<number>(0);
  await drv.driverOk();
  blkRead(m, q, 0);
  await q.kick();
  await assert.rejects(drv.suspend(50), (e: unknown) => e instanceof DeviceFaultError && e.code === 'ERR_DEVICE_TIMEOUT');
  backend.releaseAll();
});

test('hostile: SUSPEND before DRIVER_OK is ignored; queue writes while suspended are ignored; resume without suspend changes nothing', async (t) => {
  const { fn, drv } = await open(t, new RngDevice());
  await drv.setupQueue(0);
  const beforeOk = status(fn);
  writeStatus(fn, beforeOk | VIRTIO_CONFIG_S_SUSPEND);
  assert.equal(status(fn), beforeOk, 'SUSPEND before DRIVER_OK: ignored (3.4.2)');
  await drv.driverOk();
  writeStatus(fn, LIVE);
  assert.equal(status(fn), LIVE, 'DRIVER_OK written again on a running device: nothing changes');

  await drv.suspend();
  fn.barWrite(MODERN_BAR, VIRTIO_PCI_COMMON_Q_SELECT, 2, 0);
  const size = fn.barRead(MODERN_BAR, VIRTIO_PCI_COMMON_Q_SIZE, 2);
  const desc = fn.barRead(MODERN_BAR, VIRTIO_PCI_COMMON_Q_DESCLO, 4);
  fn.barWrite(MODERN_BAR, VIRTIO_PCI_COMMON_Q_SIZE, 2, size / 2);
  fn.barWrite(MODERN_BAR, VIRTIO_PCI_COMMON_Q_DESCLO, 4, 0x1000);
  fn.barWrite(MODERN_BAR, VIRTIO_PCI_COMMON_Q_ENABLE, 2, 0);
  assert.equal(fn.barRead(MODERN_BAR, VIRTIO_PCI_COMMON_Q_SIZE, 2), size, 'queue_size unchanged');
  assert.equal(fn.barRead(MODERN_BAR, VIRTIO_PCI_COMMON_Q_DESCLO, 4), desc, 'queue_desc unchanged');
  assert.equal(fn.barRead(MODERN_BAR, VIRTIO_PCI_COMMON_Q_ENABLE, 2), 1, 'queue_enable unchanged');
  writeStatus(fn, SUSPENDED & ~VIRTIO_CONFIG_S_SUSPEND);
  assert.equal(status(fn), SUSPENDED, 'a write clearing SUSPEND without DRIVER_OK neither resumes nor cancels');
  await drv.resume();
  assert.equal(status(fn), LIVE);
});

test('hostile: a reset while a suspension waits leaves nothing of it in the next life', async (t) => {
  const backend = new DeferredBackend(disk);
  const { m, fn, drv } = await open(t, new BlkDevice({ backend }));
  const q = await drv.setupQueue<number>(0);
  await drv.driverOk();
  blkRead(m, q, 0);
  await q.kick();
  writeStatus(fn, LIVE | VIRTIO_CONFIG_S_SUSPEND);
  writeStatus(fn, 0);
  assert.notEqual(status(fn), 0, 'the reset waits for the read in flight');
  backend.releaseAll();
  await tick();
  assert.equal(status(fn), 0, 'reset complete, SUSPEND gone');
  // A new life, live again by hand: the old suspension does not clear its DRIVER_OK.
  writeStatus(fn, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
  fn.barWrite(MODERN_BAR, 8, 4, 1); // driver_feature_select 1
  fn.barWrite(MODERN_BAR, 12, 4, 1); // VERSION_1
  writeStatus(fn, LIVE & ~VIRTIO_CONFIG_S_DRIVER_OK);
  writeStatus(fn, LIVE);
  await tick();
  assert.equal(status(fn), LIVE);
});

test('net: a configuration change while suspended is told at resume; held receive chains do not stall the suspension', async (t) => {
  const backend = new RecordingNetBackend();
  const device = new VirtioNetDevice({ backend, mac: mac(2, 0, 0, 0, 0, 2), queueSize: 16 });
  const { m, fn, drv } = await open(t, device, featureSet(VIRTIO_NET_F_MRG_RXBUF));
  const rx = await drv.setupQueue<number>(0);
  await drv.setupQueue(1);
  await drv.driverOk();
  let changes = 0;
  drv.onConfigChange(() => changes++);
  // Two 64-byte receive buffers and a 1000-byte frame: the device holds both chains for a next frame.
  for (const token of [1, 2]) rx.submit([], [{ addr: m.bus.dma.alloc(64, 8).addr, len: 64 }], token);
  await rx.kick();
  backend.inject(ethFrame(mac(2, 0, 0, 0, 0, 2), mac(2, 0, 0, 0, 0, 9), 1000));
  await drv.suspend();
  assert.equal(status(fn), SUSPENDED);
  const used = await rx.waitUsed();
  assert.deepEqual(
    used.map((u) => [u.token, u.len]).sort(),
    [
      [1, 0],
      [2, 0],
    ],
    'the held chains came back empty',
  );

  device.setLinkUp(false);
  await tick();
  assert.equal(changes, 0, 'no configuration change notification while suspended (3.4.2)');
  await drv.resume();
  await tick();
  assert.equal(changes, 1, 'told at resume');
});

test('driver audit: SUSPEND before DRIVER_OK, a notification and a queue write while suspended are recorded', async (t) => {
  const audit = new DriverAudit();
  const { fn, drv } = await open(t, new RngDevice(), 0n, { audit });
  await drv.setupQueue(0);
  writeStatus(fn, status(fn) | VIRTIO_CONFIG_S_SUSPEND);
  await drv.driverOk();
  await drv.suspend();
  fn.core.notify(0);
  fn.barWrite(MODERN_BAR, VIRTIO_PCI_COMMON_Q_SIZE, 2, 8);
  await drv.resume();
  assert.deepEqual(
    audit.findings.map((f) => f.requirement.id),
    ['status/suspend-when-live', 'status/suspend-no-notify', 'status/suspend-no-config-write'],
  );
});
