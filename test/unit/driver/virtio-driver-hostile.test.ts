import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VirtioDriver } from '../../../src/driver/virtio-driver.js';
import { bdf } from '../../../src/driver/pci-bus.js';
import { DeviceFaultError } from '../../../src/errors.js';
import { VIRTIO_CONFIG_S_FAILED } from '../../../src/spec/status.js';
import { qemuLikeVirtio } from '../../../src/testing/config-space-builder.js';
import { FakePciBus } from '../../../src/testing/fake-pci-bus.js';
import { ScriptedBar4 } from '../../helpers/scripted-modern-bar.js';

const FN = bdf(0, 6, 0);
/** Word 1 of the feature bits: VERSION_1 (bit 32). */
const VERSION_1_WORD = 0x1;

/** A modern device whose registers are a script: nothing behind them ever does anything. */
function scripted(setup: (bar: ScriptedBar4) => void): FakePciBus {
  const bus = new FakePciBus(4 << 20);
  const bar = new ScriptedBar4();
  bar.deviceFeatureWords = [0, VERSION_1_WORD];
  setup(bar);
  bus.add(FN, qemuLikeVirtio({ deviceId: 0x1041 }).build(), new Map([[4, bar]]));
  return bus;
}

test('a device stuck after reset: open fails with ERR_DEVICE_TIMEOUT within the timeout', async () => {
  const bus = scripted((bar) => (bar.stuckStatus = 0x0f));
  const start = Date.now();
  await assert.rejects(VirtioDriver.open(bus, FN, { timeoutMs: 50 }), (e: unknown) => e instanceof DeviceFaultError && e.code === 'ERR_DEVICE_TIMEOUT');
  assert.ok(Date.now() - start < 1000);
});

test('a modern device not offering VERSION_1: ERR_DEVICE_FEATURES, FAILED set', async () => {
  let bar!: ScriptedBar4;
  const bus = scripted((b) => {
    bar = b;
    b.deviceFeatureWords = [0xffff_ffff, 0];
  });
  const drv = await VirtioDriver.open(bus, FN);
  await assert.rejects(drv.negotiate(0n), (e: unknown) => e instanceof DeviceFaultError && e.code === 'ERR_DEVICE_FEATURES' && /VERSION_1/.test(e.message));
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
  await assert.rejects(drv.setupQueue(0), (e: unknown) => e instanceof DeviceFaultError && e.code === 'ERR_DEVICE_QUEUE' && /queue_size 0/.test(e.message));
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
  await assert.rejects(drv.setupQueue(0), (e: unknown) => e instanceof DeviceFaultError && e.code === 'ERR_DEVICE_QUEUE' && /queue_notify_off 65535/.test(e.message));
});
