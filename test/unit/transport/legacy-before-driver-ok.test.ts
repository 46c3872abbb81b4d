/**
 * The legacy interface lets a driver use the device before DRIVER_OK (3.1.2: legacy drivers often
 * did, and devices finalized features on first use): a notification once ACKNOWLEDGE and DRIVER are
 * set starts the device. The modern interface keeps the rule of 2.1.2: nothing before DRIVER_OK.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RngDevice } from '../../../src/device/rng/rng-device.js';
import { VirtioDriver } from '../../../src/driver/virtio-driver.js';
import { Machine } from '../../../src/platform/machine.js';
import { VIRTIO_ID_RNG } from '../../../src/spec/ids.js';
import { VIRTIO_CONFIG_S_DRIVER_OK } from '../../../src/spec/status.js';
import type { VirtioPciMode } from '../../../src/transport/pci/virtio-pci-function.js';

async function rngBeforeDriverOk(mode: VirtioPciMode, forceLegacy: boolean) {
  const machine = new Machine({ ramSize: 8 << 20 });
  const device = new RngDevice({ entropy: (dst) => void dst.fill(0xa5) });
  const { bdf } = machine.plugVirtio(device, { mode });
  const drv = await VirtioDriver.open(machine.bus, bdf, { deviceType: VIRTIO_ID_RNG, forceLegacy, timeoutMs: 300 });
  await drv.negotiate(0n);
  const q = await drv.setupQueue<number>(0);
  const buf = machine.bus.dma.alloc(32, 16);
  q.submit([], [{ addr: buf.addr, len: 32 }], 1);
  await q.kick(); // before DRIVER_OK
  return { machine, drv, q, buf };
}

for (const [mode, forceLegacy] of [
  ['legacy', false],
  ['transitional', true],
] as const) {
  test(`${mode} device through the legacy interface: a queue is served before DRIVER_OK, and DRIVER_OK changes nothing`, async (t) => {
    const { machine, drv, q, buf } = await rngBeforeDriverOk(mode, forceLegacy);
    t.after(() => drv.close());
    assert.equal(drv.transport.kind, 'legacy');
    assert.deepEqual(await q.waitUsed(), [{ token: 1, len: 32 }]);
    assert.equal((await drv.checkStatus()) & VIRTIO_CONFIG_S_DRIVER_OK, 0, 'still before DRIVER_OK');
    assert.deepEqual([...buf.bytes], new Array<number>(32).fill(0xa5));
    await drv.driverOk();
    const again = machine.bus.dma.alloc(8, 8);
    q.submit([], [{ addr: again.addr, len: 8 }], 2);
    await q.kick();
    assert.deepEqual(await q.waitUsed(), [{ token: 2, len: 8 }], 'the queue started early keeps running after DRIVER_OK');
  });
}

test('modern interface: a notification before DRIVER_OK is not served (2.1.2)', async (t) => {
  const { drv, q } = await rngBeforeDriverOk('transitional', false);
  t.after(() => drv.close());
  assert.equal(drv.transport.kind, 'modern');
  await assert.rejects(q.waitUsed(), { code: 'ERR_DEVICE_TIMEOUT' });
});
