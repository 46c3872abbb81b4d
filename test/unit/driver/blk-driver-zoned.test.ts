/**
 * 5.2.5.1: when a host-managed zoned device (VIRTIO_BLK_F_ZONED offered, zoned.model
 * VIRTIO_BLK_Z_HM) offers VIRTIO_BLK_F_DISCARD, the driver MUST NOT accept it. This driver does not
 * drive zoned devices (it never accepts ZONED), so a conforming host-managed device refuses
 * FEATURES_OK; either way DISCARD is never accepted.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BlkDevice, type BlkDeviceOptions } from '../../../src/device/blk/blk-device.js';
import { MemoryBlockBackend } from '../../../src/device/blk/memory-backend.js';
import { BlkDriver } from '../../../src/driver/blk/blk-driver.js';
import type { AccessSize } from '../../../src/memory/access-size.js';
import { Machine } from '../../../src/platform/machine.js';
import {
  VIRTIO_BLK_CONFIG_ZONED_MODEL,
  VIRTIO_BLK_F_DISCARD,
  VIRTIO_BLK_F_ZONED,
  VIRTIO_BLK_Z_HA,
  VIRTIO_BLK_Z_HM,
} from '../../../src/spec/blk.js';
import { bit, hasFeature } from '../../../src/spec/features.js';

/** Our blk device posing as a zoned one of `model`; `refuseWithoutZoned` as 5.2.5.2 has an HM device do. */
class ZonedBlkDevice extends BlkDevice {
  /** Every feature set the driver asked FEATURES_OK for. */
  readonly asked: bigint[] = [];
  constructor(
    options: BlkDeviceOptions,
    private readonly model: number,
    private readonly refuseWithoutZoned: boolean,
  ) {
    super(options);
    Object.defineProperty(this, 'deviceFeatures', { value: this.deviceFeatures | bit(VIRTIO_BLK_F_ZONED) | bit(VIRTIO_BLK_F_DISCARD) });
  }
  override readConfig(offset: number, size: AccessSize): number {
    return offset === VIRTIO_BLK_CONFIG_ZONED_MODEL && size === 1 ? this.model : super.readConfig(offset, size);
  }
  override acceptFeatures(features: bigint): boolean {
    this.asked.push(features);
    if (this.refuseWithoutZoned && !hasFeature(features, VIRTIO_BLK_F_ZONED)) return false;
    return super.acceptFeatures(features);
  }
}

function plug(model: number, refuseWithoutZoned: boolean) {
  const machine = new Machine({ ramSize: 16 << 20 });
  const device = new ZonedBlkDevice({ backend: new MemoryBlockBackend(64 * 512) }, model, refuseWithoutZoned);
  const { bdf } = machine.plugVirtio(device);
  return { machine, device, bdf };
}

test('a host-managed zoned device: DISCARD is not accepted, and the device refusing FEATURES_OK is ERR_DEVICE_FEATURES', async () => {
  const { machine, device, bdf } = plug(VIRTIO_BLK_Z_HM, true);
  await assert.rejects(BlkDriver.open(machine.bus, bdf), { code: 'ERR_DEVICE_FEATURES' });
  assert.ok(device.asked.length > 0);
  for (const asked of device.asked) {
    assert.equal(hasFeature(asked, VIRTIO_BLK_F_DISCARD), false, 'DISCARD not accepted');
    assert.equal(hasFeature(asked, VIRTIO_BLK_F_ZONED), false, 'ZONED not accepted: this driver drives no zoned device');
  }
});

test('a host-managed zoned device that lets the driver on anyway: discard() is a UsageError, nothing is sent', async (t) => {
  const { machine, bdf } = plug(VIRTIO_BLK_Z_HM, false);
  const blk = await BlkDriver.open(machine.bus, bdf);
  t.after(() => blk.close());
  assert.equal(hasFeature(blk.virtio.features, VIRTIO_BLK_F_DISCARD), false);
  await assert.rejects(async () => blk.discard(0, 8), { code: 'ERR_USAGE' });
});

test('a host-aware zoned device: the driver may take DISCARD (5.2.5.1) and does', async (t) => {
  const { machine, bdf } = plug(VIRTIO_BLK_Z_HA, false);
  const blk = await BlkDriver.open(machine.bus, bdf);
  t.after(() => blk.close());
  assert.ok(hasFeature(blk.virtio.features, VIRTIO_BLK_F_DISCARD));
  await blk.discard(0, 8);
});
