/**
 * The net driver sends a control command only when its feature was negotiated (5.1.9.5.1.2,
 * 5.1.9.5.2.2): otherwise the typed command is a UsageError and nothing reaches the device.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { VirtioNetDevice, type VirtioNetDeviceOptions } from '../../../src/device/net/net-device.js';
import { VirtioNetDriver } from '../../../src/driver/net/net-driver.js';
import { Machine } from '../../../src/platform/machine.js';
import { featureSet, hasFeature } from '../../../src/spec/features.js';
import * as N from '../../../src/spec/net.js';
import { mac, RecordingNetBackend } from '../../helpers/net-frames.js';

/** Our net device with some of its features not offered. */
class NarrowNetDevice extends VirtioNetDevice {
  constructor(options: VirtioNetDeviceOptions, withheld: bigint) {
    super(options);
    Object.defineProperty(this, 'deviceFeatures', { value: this.deviceFeatures & ~withheld });
  }
}

async function open(withheld: bigint): Promise<{ device: VirtioNetDevice; driver: VirtioNetDriver }> {
  const machine = new Machine({ ramSize: 16 << 20 });
  const device = new NarrowNetDevice({ backend: new RecordingNetBackend(), mac: mac(0x02, 0, 0, 0, 0, 0x0b) }, withheld);
  const { bdf } = machine.plugVirtio(device);
  const driver = await VirtioNetDriver.open(machine.bus, bdf, { timeoutMs: 2000 });
  return { device, driver };
}

test('without VIRTIO_NET_F_CTRL_RX: rx-mode and MAC-table commands are UsageErrors and never sent', async (t) => {
  const { device, driver } = await open(featureSet(N.VIRTIO_NET_F_CTRL_RX, N.VIRTIO_NET_F_CTRL_RX_EXTRA));
  t.after(() => driver.close());
  assert.ok(hasFeature(driver.features, N.VIRTIO_NET_F_CTRL_VQ), 'the control queue is there');
  assert.equal(hasFeature(driver.features, N.VIRTIO_NET_F_CTRL_RX), false);
  await assert.rejects(driver.setPromiscuous(true), { code: 'ERR_USAGE', message: /VIRTIO_NET_F_CTRL_RX\b/ });
  await assert.rejects(driver.setAllMulticast(true), { code: 'ERR_USAGE' });
  await assert.rejects(driver.setMacTable([], []), { code: 'ERR_USAGE', message: /VIRTIO_NET_F_CTRL_RX/ });
  // MAC_ADDR_SET is a VIRTIO_NET_CTRL_MAC command too: CTRL_MAC_ADDR alone is not enough.
  await assert.rejects(driver.setMac(mac(0x02, 0, 0, 0, 0, 0x0c)), { code: 'ERR_USAGE' });
  assert.deepEqual(driver.mac, mac(0x02, 0, 0, 0, 0, 0x0b));
  assert.equal(device.stats.ctrlErrors, 0, 'the device saw no command it had to refuse');
});

test('with VIRTIO_NET_F_CTRL_RX but not CTRL_RX_EXTRA: PROMISC goes, ALLUNI/NOMULTI/NOUNI/NOBCAST do not', async (t) => {
  const { device, driver } = await open(featureSet(N.VIRTIO_NET_F_CTRL_RX_EXTRA));
  t.after(() => driver.close());
  await driver.setPromiscuous(true);
  assert.equal(device.filter.modes.promisc, true);
  for (const command of [
    N.VIRTIO_NET_CTRL_RX_ALLUNI,
    N.VIRTIO_NET_CTRL_RX_NOMULTI,
    N.VIRTIO_NET_CTRL_RX_NOUNI,
    N.VIRTIO_NET_CTRL_RX_NOBCAST,
  ])
    await assert.rejects(driver.setRxMode(command, true), { code: 'ERR_USAGE', message: /VIRTIO_NET_F_CTRL_RX_EXTRA/ });
  await assert.rejects(driver.setRxMode(9, true), { code: 'ERR_USAGE' });
  assert.equal(device.stats.ctrlErrors, 0);
});

test('without VIRTIO_NET_F_CTRL_MAC_ADDR: setMac is a UsageError and nothing is sent', async (t) => {
  const { device, driver } = await open(featureSet(N.VIRTIO_NET_F_CTRL_MAC_ADDR));
  t.after(() => driver.close());
  await assert.rejects(driver.setMac(mac(0x02, 0, 0, 0, 0, 0x0c)), { code: 'ERR_USAGE', message: /VIRTIO_NET_F_CTRL_MAC_ADDR/ });
  assert.equal(device.stats.ctrlErrors, 0);
});

test('with VIRTIO_NET_F_CTRL_RX_EXTRA but not CTRL_RX: NOBCAST goes (it needs CTRL_RX_EXTRA alone) and the device carries it out', async (t) => {
  const { device, driver } = await open(featureSet(N.VIRTIO_NET_F_CTRL_RX));
  t.after(() => driver.close());
  assert.ok(hasFeature(driver.features, N.VIRTIO_NET_F_CTRL_RX_EXTRA));
  await driver.setRxMode(N.VIRTIO_NET_CTRL_RX_NOBCAST, true);
  assert.equal(device.filter.modes.nobcast, true);
  await assert.rejects(driver.setPromiscuous(true), { code: 'ERR_USAGE' });
  assert.equal(device.stats.ctrlErrors, 0);
});

test('VIRTIO_NET_CTRL_MAC_ADDR_SET changes mac in config space under a new config_generation (4.1.4.3.1)', async (t) => {
  const { driver } = await open(0n);
  t.after(() => driver.close());
  const core = driver.core;
  const before = await core.transport.configGeneration();
  const readMac = async (): Promise<number[]> => {
    const bytes: number[] = [];
    for (let i = 0; i < N.ETH_ALEN; i++) bytes.push(await core.readConfig(N.VIRTIO_NET_CONFIG_MAC + i, 1));
    return bytes;
  };
  assert.deepEqual(await readMac(), [...mac(0x02, 0, 0, 0, 0, 0x0b)]);
  const next = mac(0x02, 0, 0, 0, 0, 0x0c);
  await driver.setMac(next);
  assert.notEqual(await core.transport.configGeneration(), before, 'a driver that read mac before sees the change');
  assert.deepEqual(await readMac(), [...next]);
});
