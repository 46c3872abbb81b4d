/**
 * How a device and our driver settle on a ring format (2.8: VIRTIO_F_RING_PACKED): a device offers
 * the packed ring only when made with `packed: true`, and only on the modern interface; the driver
 * takes it when offered unless told `ring: 'split'`, and with `ring: 'packed'` refuses to run
 * without it. Checked on both sides: the driver's accepted features, the device's negotiated ones,
 * queue sizes each format allows, and entropy through the ring.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Machine } from '../../../src/platform/machine.js';
import { RngDevice } from '../../../src/device/rng/rng-device.js';
import type { EntropySource } from '../../../src/device/rng/entropy.js';
import { RngDriver } from '../../../src/driver/rng/rng-driver.js';
import { VirtioDriver } from '../../../src/driver/virtio-driver.js';
import type { RingChoice } from '../../../src/driver/feature-negotiation.js';
import { DeviceFaultError, UsageError } from '../../../src/errors.js';
import { hasFeature, VIRTIO_F_EVENT_IDX, VIRTIO_F_RING_PACKED, featureSet } from '../../../src/spec/features.js';
import { VIRTIO_CONFIG_S_FAILED } from '../../../src/spec/status.js';
import type { VirtioPciFunctionOptions } from '../../../src/transport/pci/virtio-pci-function.js';
import { PVIRTQ_DESC_FLAGS, VIRTQ_DESC_F_AVAIL, VIRTQ_DESC_F_USED } from '../../../src/spec/packed-ring.js';
import { VIRTQ_USED_IDX } from '../../../src/spec/ring.js';
import type { RingName } from '../../helpers/ring-formats.js';

/** A counter stream, so that every byte read can be checked. */
function counting(): { source: EntropySource; produced: number[] } {
  const produced: number[] = [];
  let next = 0;
  return {
    produced,
    source: (dst) => {
      for (let i = 0; i < dst.byteLength; i++) produced.push((dst[i] = next++ & 0xff));
    },
  };
}

function rngMachine(plug: VirtioPciFunctionOptions) {
  const m = new Machine({ ramSize: 8 << 20 });
  const e = counting();
  const { bdf, fn } = m.plugVirtio(new RngDevice({ entropy: e.source }), plug);
  return { m, bdf, fn, produced: e.produced };
}

test('a device offers VIRTIO_F_RING_PACKED only when made with packed: true (default off, as QEMU)', async () => {
  for (const [plug, offered] of [
    [{}, false],
    [{ packed: false }, false],
    [{ packed: true }, true],
    [{ mode: 'transitional', packed: true }, true],
  ] as const) {
    const { m, bdf } = rngMachine(plug);
    const drv = await VirtioDriver.open(m.bus, bdf);
    assert.equal(hasFeature(drv.deviceFeatures, VIRTIO_F_RING_PACKED), offered, JSON.stringify(plug));
    await drv.close();
  }
});

const CASES: { device: boolean; ring: RingChoice; want: RingName }[] = [
  { device: true, ring: 'auto', want: 'packed' },
  { device: true, ring: 'packed', want: 'packed' },
  { device: true, ring: 'split', want: 'split' },
  { device: false, ring: 'auto', want: 'split' },
  { device: false, ring: 'split', want: 'split' },
];
for (const c of CASES) {
  test(`device ${c.device ? 'offering' : 'not offering'} the packed ring, driver ring '${c.ring}': the ${c.want} ring, both sides agree, data flows`, async (t) => {
    const { m, bdf, fn, produced } = rngMachine({ packed: c.device });
    const rng = await RngDriver.open(m.bus, bdf, { ring: c.ring, chunkSize: 64 });
    t.after(() => rng.close());
    const packed = c.want === 'packed';
    assert.equal(rng.virtio.ringFormat.name, c.want);
    assert.equal(hasFeature(rng.virtio.features, VIRTIO_F_RING_PACKED), packed);
    assert.equal(hasFeature(fn.core.negotiatedFeatures, VIRTIO_F_RING_PACKED), packed, "the device's negotiated features");
    const bytes = await rng.read(200);
    assert.deepEqual([...bytes], produced);
    // The rings in guest memory are of that format: the packed ring's first descriptor came back
    // used in the first lap (AVAIL and USED both set), the split ring's used.idx counted requests.
    const q = fn.core.queues[0]!;
    if (packed) {
      const flags = m.memory.read16(q.ringAddress('desc') + PVIRTQ_DESC_FLAGS);
      assert.equal(flags & (VIRTQ_DESC_F_AVAIL | VIRTQ_DESC_F_USED), VIRTQ_DESC_F_AVAIL | VIRTQ_DESC_F_USED);
    } else assert.ok(m.memory.read16(q.ringAddress('device') + VIRTQ_USED_IDX) >= 4, 'used.idx');
  });
}

test("ring 'packed' against a device that does not offer it: ERR_DEVICE_FEATURES, FAILED set", async () => {
  const { m, bdf, fn } = rngMachine({});
  const drv = await VirtioDriver.open(m.bus, bdf, { ring: 'packed' });
  await assert.rejects(
    drv.negotiate(featureSet(VIRTIO_F_EVENT_IDX)),
    (e: unknown) =>
      e instanceof DeviceFaultError && e.code === 'ERR_DEVICE_FEATURES' && /does not offer VIRTIO_F_RING_PACKED/.test(e.message),
  );
  assert.equal(fn.core.status & VIRTIO_CONFIG_S_FAILED, VIRTIO_CONFIG_S_FAILED);
  await drv.close();
});

test('the legacy interface of a transitional device offering the packed ring: bit 34 never shows, the ring is split', async (t) => {
  const { m, bdf, fn, produced } = rngMachine({ mode: 'transitional', packed: true });
  const forced = await VirtioDriver.open(m.bus, bdf, { forceLegacy: true, ring: 'packed' });
  assert.equal(forced.transport.kind, 'legacy');
  assert.equal(hasFeature(forced.deviceFeatures, VIRTIO_F_RING_PACKED), false, 'host features are 32 bits');
  await assert.rejects(
    forced.negotiate(0n),
    (e: unknown) => e instanceof DeviceFaultError && e.code === 'ERR_DEVICE_FEATURES' && /legacy interface/.test(e.message),
  );
  await forced.close();

  const rng = await RngDriver.open(m.bus, bdf, { forceLegacy: true });
  t.after(() => rng.close());
  assert.equal(rng.virtio.ringFormat.name, 'split');
  assert.equal(hasFeature(fn.core.driverFeatures, VIRTIO_F_RING_PACKED), false);
  assert.deepEqual([...(await rng.read(100))], produced);
});

test('queue sizes follow the negotiated format: any size up to the maximum on the packed ring, powers of 2 on the split ring', async (t) => {
  // Packed: 63 entries (not a power of 2) is taken by both sides.
  const packed = rngMachine({ packed: true });
  const drv = await VirtioDriver.open(packed.m.bus, packed.bdf);
  t.after(() => drv.close());
  await drv.negotiate(0n);
  const q = await drv.setupQueue<number>(0, { size: 63 });
  assert.equal(q.size, 63);
  assert.equal(packed.fn.core.queues[0]!.size, 63, "the device's queue_size");
  await drv.driverOk();

  // Split: the driver refuses such a size before it reaches the device.
  const split = rngMachine({});
  const sdrv = await VirtioDriver.open(split.m.bus, split.bdf);
  t.after(() => sdrv.close());
  await sdrv.negotiate(0n);
  await assert.rejects(
    sdrv.setupQueue(0, { size: 63 }),
    (e: unknown) => e instanceof UsageError && /is not a split ring queue size/.test(e.message),
  );
  assert.equal((await sdrv.setupQueue(0, { size: 32 })).size, 32);
});
