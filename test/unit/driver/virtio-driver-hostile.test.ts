import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VirtioDriver } from '../../../src/driver/virtio-driver.js';
import { bdf } from '../../../src/bus/pci-bus.js';
import { DeviceFaultError } from '../../../src/errors.js';
import { VIRTIO_CONFIG_S_FAILED } from '../../../src/spec/status.js';
import { qemuLikeVirtio } from '../../../src/testing/config-space-builder.js';
import { FakePciBus } from '../../../src/testing/fake-pci-bus.js';
import { ScriptedBar4 } from '../../helpers/scripted-modern-bar.js';

const FN = bdf(0, 6, 0);
/** Word 1 of the feature bits: VERSION_1 (bit 32). */
const VERSION_1_WORD = 0x1;

/** A modern device whose registers are a script: nothing behind them ever does anything. */
function scripted(setup: (bar: ScriptedBar4) => void, dmaBytes = 4 << 20, layout: Parameters<typeof qemuLikeVirtio>[1] = {}): FakePciBus {
  const bus = new FakePciBus(dmaBytes);
  const bar = new ScriptedBar4();
  bar.deviceFeatureWords = [0, VERSION_1_WORD];
  setup(bar);
  bus.add(FN, qemuLikeVirtio({ deviceId: 0x1041 }, layout).build(), new Map([[4, bar]]));
  return bus;
}

test('a device stuck after reset: open fails with ERR_DEVICE_TIMEOUT within the timeout', async () => {
  const bus = scripted((bar) => (bar.stuckStatus = 0x0f));
  const start = Date.now();
  await assert.rejects(
    VirtioDriver.open(bus, FN, { timeoutMs: 50 }),
    (e: unknown) => e instanceof DeviceFaultError && e.code === 'ERR_DEVICE_TIMEOUT',
  );
  assert.ok(Date.now() - start < 1000);
});

test('a modern device not offering VERSION_1: ERR_DEVICE_FEATURES, FAILED set', async () => {
  let bar!: ScriptedBar4;
  const bus = scripted((b) => {
    bar = b;
    b.deviceFeatureWords = [0xffff_ffff, 0];
  });
  const drv = await VirtioDriver.open(bus, FN);
  await assert.rejects(
    drv.negotiate(0n),
    (e: unknown) => e instanceof DeviceFaultError && e.code === 'ERR_DEVICE_FEATURES' && /VERSION_1/.test(e.message),
  );
  assert.equal((bar.regs.get(20) ?? 0) & VIRTIO_CONFIG_S_FAILED, VIRTIO_CONFIG_S_FAILED);
});

test('queue sizes the device offers: 0 is no queue, odd and oversized maxima are rounded down to a power of 2', async () => {
  const bus = scripted((bar) => {
    bar.numQueues = 3;
    bar.queueSize.set(0, 0);
    bar.queueSize.set(1, 1000);
    bar.queueSize.set(2, 0xffff);
  });
  const drv = await VirtioDriver.open(bus, FN);
  await drv.negotiate(0n);
  await assert.rejects(
    drv.setupQueue(0),
    (e: unknown) => e instanceof DeviceFaultError && e.code === 'ERR_DEVICE_QUEUE' && /queue_size 0/.test(e.message),
  );
  assert.equal((await drv.setupQueue(1)).size, 512);
  assert.equal((await drv.setupQueue(2)).size, 32768, 'never above the spec maximum (2.7)');
});

test('a queue_notify_off pointing outside the notify structure fails queue set-up', async () => {
  const bus = scripted((bar) => {
    bar.numQueues = 1;
    bar.queueSize.set(0, 8);
    bar.queueNotifyOff.set(0, 0xffff);
  });
  const drv = await VirtioDriver.open(bus, FN);
  await drv.negotiate(0n);
  await assert.rejects(
    drv.setupQueue(0),
    (e: unknown) => e instanceof DeviceFaultError && e.code === 'ERR_DEVICE_QUEUE' && /queue_notify_off 65535/.test(e.message),
  );
});

test('a device that keeps its own queue_size after the driver wrote another: immediate ERR_DEVICE_QUEUE, rings returned', async () => {
  const bus = scripted((bar) => {
    bar.numQueues = 1;
    bar.queueSize.set(0, 256);
    bar.keepQueueSize = true;
  });
  const drv = await VirtioDriver.open(bus, FN, { timeoutMs: 5000 });
  await drv.negotiate(0n);
  const free = bus.dma.allocator.freeBytes;
  const start = Date.now();
  await assert.rejects(
    drv.setupQueue(0, { size: 64 }),
    (e: unknown) =>
      e instanceof DeviceFaultError && e.code === 'ERR_DEVICE_QUEUE' && /queue_size reads 256 after the driver wrote 64/.test(e.message),
  );
  assert.ok(Date.now() - start < 1000, 'no wait for a timeout');
  assert.equal(bus.dma.allocator.freeBytes, free, 'the rings of the refused queue went back to DMA memory');
});

test('a queue whose set-up the device refuses gives its rings back (queue_notify_off, MSI-X vector)', async () => {
  const bus = scripted((bar) => {
    bar.numQueues = 2;
    bar.queueSize.set(0, 1024);
    bar.queueSize.set(1, 1024);
    bar.queueNotifyOff.set(1, 0xffff);
  });
  const free = bus.dma.allocator.freeBytes;
  const drv = await VirtioDriver.open(bus, FN);
  await drv.negotiate(0n);
  await drv.setupQueue(0);
  await assert.rejects(drv.setupQueue(1), (e: unknown) => e instanceof DeviceFaultError && e.code === 'ERR_DEVICE_QUEUE');
  await drv.close();
  assert.equal(bus.dma.allocator.freeBytes, free);
  assert.equal(bus.dma.allocator.freeBlocks, 1);
});

test('rings that do not fit in DMA memory: ERR_DEVICE_QUEUE, and nothing of them stays allocated', async () => {
  // 32768 is a legal queue size (2.7): its rings take 32768 * 16 + 65542 + 262150 bytes; the bus has 640 KiB,
  // room for the descriptor table and the available ring but not the used ring.
  const bus = scripted((bar) => {
    bar.numQueues = 1;
    bar.queueSize.set(0, 32768);
  }, 640 << 10);
  const free = bus.dma.allocator.freeBytes;
  const drv = await VirtioDriver.open(bus, FN);
  await drv.negotiate(0n);
  await assert.rejects(
    drv.setupQueue(0),
    (e: unknown) => e instanceof DeviceFaultError && e.code === 'ERR_DEVICE_QUEUE' && /32768/.test(e.message),
  );
  await drv.close();
  assert.equal(bus.dma.allocator.freeBytes, free);
});

/** qemuLikeVirtio's layout (MSI-X with 3 vectors in a 4 KiB BAR1) with the table and PBA where given, on a bus that delivers MSI. */
function msixAt(msixTableOffset: number, msixPbaOffset: number): FakePciBus {
  const bus = scripted(
    (bar) => {
      bar.numQueues = 1;
      bar.queueSize.set(0, 8);
    },
    4 << 20,
    { msixTableOffset, msixPbaOffset },
  );
  bus.deliverMsi = true;
  return bus;
}

test('MSI-X table and PBA inside their BAR: the table is programmed and MSI-X used', async () => {
  const bus = msixAt(0, 0x800);
  const drv = await VirtioDriver.open(bus, FN);
  await drv.negotiate(0n);
  assert.equal(drv.interrupts?.kind, 'msix-per-queue');
  assert.deepEqual(
    [
      ...new Set(
        bus
          .accesses('memWrite')
          .filter((a) => a.bar === 1)
          .map((a) => a.offset),
      ),
    ].sort((x, y) => x - y),
    [0, 4, 8, 12, 16, 20, 24, 28],
  );
  await drv.close();
});

for (const [what, table, pba, why] of [
  ['a table running past the end of its BAR', 0xff0, 0x800, /MSI-X table \[0xff0, \+0x30\) does not fit in BAR1 \(size 0x1000\)/],
  ['a PBA past the end of its BAR', 0, 0x1000, /MSI-X PBA \[0x1000, \+0x8\) does not fit in BAR1 \(size 0x1000\)/],
] as const) {
  test(`MSI-X with ${what}: not one write to the BAR, INTx instead (and 'msix' refused)`, async () => {
    const bus = msixAt(table, pba);
    const drv = await VirtioDriver.open(bus, FN);
    await drv.negotiate(0n);
    assert.equal(drv.interrupts?.kind, 'intx');
    assert.match(drv.interrupts.description, why);
    assert.deepEqual(
      bus.accesses('memWrite').filter((a) => a.bar !== 4),
      [],
      'no write outside the virtio structures',
    );
    await drv.close();
    const strict = await VirtioDriver.open(msixAt(table, pba), FN, { interrupts: 'msix' });
    await assert.rejects(strict.negotiate(0n), why);
  });
}
