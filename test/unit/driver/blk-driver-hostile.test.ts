/**
 * The blk driver's failure paths against a scripted multi-queue device on a bus with a real DMA
 * allocator: whatever open takes, a failed open gives back.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BlkDriver } from '../../../src/driver/blk/blk-driver.js';
import { bdf } from '../../../src/bus/pci-bus.js';
import { DeviceFaultError } from '../../../src/errors.js';
import { VIRTIO_BLK_CONFIG_NUM_QUEUES, VIRTIO_BLK_F_MQ, VIRTIO_BLK_F_SIZE_MAX } from '../../../src/spec/blk.js';
import {
  VIRTIO_PCI_CAP_COMMON_CFG,
  VIRTIO_PCI_CAP_DEVICE_CFG,
  VIRTIO_PCI_CAP_ISR_CFG,
  VIRTIO_PCI_CAP_NOTIFY_CFG,
} from '../../../src/spec/virtio-pci.js';
import { ConfigSpaceBuilder, qemuLikeVirtio } from '../../../src/testing/config-space-builder.js';
import { FakePciBus } from '../../../src/testing/fake-pci-bus.js';
import { ScriptedBar4 } from '../../helpers/scripted-modern-bar.js';

const FN = bdf(0, 4, 0);
/** qemuLikeVirtio's device-specific structure in BAR4. */
const DEVICE_CFG = 0x2000;

/** A modern virtio-blk function offering MQ with two request queues of `queueSize`. */
function scriptedBlk(queueSize: number, dmaBytes: number): { bus: FakePciBus; bar: ScriptedBar4 } {
  const bus = new FakePciBus(dmaBytes);
  const bar = new ScriptedBar4();
  bar.deviceFeatureWords = [1 << VIRTIO_BLK_F_MQ, 1];
  bar.numQueues = 2;
  bar.queueSize.set(0, queueSize);
  bar.queueSize.set(1, queueSize);
  bar.regs.set(DEVICE_CFG + VIRTIO_BLK_CONFIG_NUM_QUEUES, 2);
  bus.add(FN, qemuLikeVirtio({ deviceId: 0x1042 }).build(), new Map([[4, bar]]));
  return { bus, bar };
}

test('blk: two request queues open and close with every DMA byte returned', async () => {
  const { bus } = scriptedBlk(256, 1 << 20);
  const free = bus.dma.allocator.freeBytes;
  const blk = await BlkDriver.open(bus, FN, { numQueues: 2, interrupts: 'intx' });
  assert.equal(blk.numQueues, 2);
  assert.ok(bus.dma.allocator.freeBytes < free);
  await blk.close();
  assert.equal(bus.dma.allocator.freeBytes, free);
  assert.equal(bus.dma.allocator.freeBlocks, 1);
});

test("blk: the second queue's request slots do not fit in DMA memory: open fails with ERR_DEVICE_QUEUE and frees the first queue's slots and both rings", async () => {
  // Queues of 4096: rings of about 104 KiB each, 2048 slots of 64 bytes (128 KiB) each. 400 KiB hold
  // both rings and the first queue's slots, not the second's.
  const { bus } = scriptedBlk(4096, 400 << 10);
  const free = bus.dma.allocator.freeBytes;
  const error: unknown = await BlkDriver.open(bus, FN, { numQueues: 2, interrupts: 'intx' }).then(
    () => undefined,
    (e: unknown) => e,
  );
  assert.equal(bus.dma.allocator.freeBytes, free, 'nothing open took stays allocated');
  assert.equal(bus.dma.allocator.freeBlocks, 1);
  assert.ok(error instanceof DeviceFaultError && error.code === 'ERR_DEVICE_QUEUE' && /request queue 1/.test(error.message), String(error));
});

test("blk: a device that refuses the second queue's set-up: open fails and the first queue's rings go back", async () => {
  const { bus, bar } = scriptedBlk(256, 1 << 20);
  bar.queueNotifyOff.set(1, 0xffff);
  const free = bus.dma.allocator.freeBytes;
  await assert.rejects(
    BlkDriver.open(bus, FN, { numQueues: 2, interrupts: 'intx' }),
    (e: unknown) => e instanceof DeviceFaultError && e.code === 'ERR_DEVICE_QUEUE',
  );
  assert.equal(bus.dma.allocator.freeBytes, free);
  assert.equal(bus.dma.allocator.freeBlocks, 1);
});

/**
 * qemuLikeVirtio's BAR4 layout without MSI-X, with a device-cfg structure of `deviceCfgLength` bytes
 * (none when undefined), for a blk function offering SIZE_MAX (config offset 8, 4 bytes).
 */
function blkWithDeviceCfg(deviceCfgLength: number | undefined): FakePciBus {
  const b = new ConfigSpaceBuilder({ deviceId: 0x1042 })
    .bar(4, { kind: 'memory', size: 0x4000, is64: true, prefetchable: true })
    .virtioCap({ cfgType: VIRTIO_PCI_CAP_COMMON_CFG, bar: 4, offset: 0, length: 0x1000 })
    .virtioCap({ cfgType: VIRTIO_PCI_CAP_ISR_CFG, bar: 4, offset: 0x1000, length: 0x1000 })
    .virtioCap({ cfgType: VIRTIO_PCI_CAP_NOTIFY_CFG, bar: 4, offset: 0x3000, length: 0x1000, multiplier: 4 });
  if (deviceCfgLength !== undefined)
    b.virtioCap({ cfgType: VIRTIO_PCI_CAP_DEVICE_CFG, bar: 4, offset: DEVICE_CFG, length: deviceCfgLength });
  const bus = new FakePciBus(1 << 20);
  const bar = new ScriptedBar4();
  bar.deviceFeatureWords = [1 << VIRTIO_BLK_F_SIZE_MAX, 1];
  bar.numQueues = 1;
  bar.queueSize.set(0, 64);
  bus.add(FN, b.build(), new Map([[4, bar]]));
  return bus;
}

for (const [what, length, field] of [
  ['a device-cfg structure too short for size_max, a field of a feature it offers', 8, /\[8, \+4\) lies beyond the 8 bytes/],
  ['no device-cfg structure at all', undefined, /\[0, \+4\) lies beyond the 0 bytes/],
] as const) {
  test(`blk: ${what}: open fails with ERR_DEVICE_CONFIG, nothing read past the structure, DMA returned`, async () => {
    const bus = blkWithDeviceCfg(length);
    const free = bus.dma.allocator.freeBytes;
    await assert.rejects(
      BlkDriver.open(bus, FN, { interrupts: 'intx' }),
      (e: unknown) => e instanceof DeviceFaultError && e.code === 'ERR_DEVICE_CONFIG' && field.test(e.message),
    );
    const outside = bus.accesses('memRead').filter((a) => a.bar === 4 && a.offset >= DEVICE_CFG + (length ?? 0) && a.offset < 0x3000);
    assert.deepEqual(outside, [], 'no read beyond the device-cfg structure');
    assert.equal(bus.dma.allocator.freeBytes, free);
  });
}
