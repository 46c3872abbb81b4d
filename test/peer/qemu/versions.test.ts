/**
 * Both QEMU peers, started by version (test/helpers/peers.ts): each is the version it is named for,
 * and its virtio-pci devices offer VIRTIO_F_RING_PACKED exactly when `packed=on` and
 * VIRTIO_F_RING_RESET by default (queue_reset), as read by our driver. Runs once, whatever the leg.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VirtioDriver } from '../../../src/driver/virtio-driver.js';
import { qemuVersion } from '../../../src/platform/qtest/qemu-process.js';
import { VIRTIO_F_RING_PACKED, VIRTIO_F_RING_RESET, VIRTIO_F_VERSION_1, hasFeature } from '../../../src/spec/features.js';
import { QEMU_PEERS, qemuPeerBinary, type QemuPeer } from '../../helpers/peers.js';
import { launchQemu, slotBdf } from './qemu-fixture.js';

async function offered(version: QemuPeer, device: string): Promise<bigint> {
  const bus = await launchQemu('q35', [`${device},addr=0x4`], { version });
  const driver = await VirtioDriver.open(bus, slotBdf(4));
  try {
    return driver.deviceFeatures;
  } finally {
    await driver.close();
    await bus.close();
  }
}

for (const version of Object.keys(QEMU_PEERS) as QemuPeer[]) {
  test(`QEMU ${version}: reports ${version}.x; packed=on offers RING_PACKED, the default does not; RING_RESET by default`, async () => {
    assert.match(qemuVersion(qemuPeerBinary(version)), new RegExp(`^${version.replace('.', '\\.')}\\.\\d+$`));
    for (const model of ['virtio-rng-pci', 'virtio-net-pci']) {
      const plain = await offered(version, `${model},disable-legacy=on`);
      const packed = await offered(version, `${model},disable-legacy=on,packed=on`);
      assert.ok(hasFeature(plain, VIRTIO_F_VERSION_1), `${model}: VERSION_1`);
      assert.ok(!hasFeature(plain, VIRTIO_F_RING_PACKED), `${model}: no RING_PACKED by default`);
      assert.ok(hasFeature(packed, VIRTIO_F_RING_PACKED), `${model}: RING_PACKED with packed=on`);
      assert.ok(hasFeature(plain, VIRTIO_F_RING_RESET), `${model}: RING_RESET by default`);
      assert.equal(packed & ~(1n << BigInt(VIRTIO_F_RING_PACKED)), plain, `${model}: packed=on adds RING_PACKED alone`);
    }
  });
}
