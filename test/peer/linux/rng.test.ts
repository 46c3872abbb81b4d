/**
 * Linux's virtio_pci binds our virtio-rng functions (a modern one, and a transitional one that Linux
 * drives through its modern interface), virtio_rng registers each as a hardware RNG, and /dev/hwrng
 * returns bytes the selected device produced (known streams, so every byte read is traced to its
 * device). Once on split rings, once with VIRTIO_F_RING_PACKED offered: Linux 6.1 and 6.5 (each
 * peer leg) negotiate the packed ring on both functions and read the same bytes through it.
 */

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { RngDevice } from '../../../src/device/rng/rng-device.js';
import type { GuestResult } from '../../../src/platform/v86/guest-protocol.js';
import { VIRTIO_ID_RNG, VIRTIO_PCI_MODERN_DEVICE_ID_BASE, VIRTIO_PCI_TRANSITIONAL_DEVICE_IDS } from '../../../src/spec/ids.js';
import { VIRTIO_F_SUSPEND, VIRTIO_F_VERSION_1, hasFeature } from '../../../src/spec/features.js';
import { VIRTIO_CONFIG_S_DEVICE_NEEDS_RESET, VIRTIO_CONFIG_S_DRIVER_OK } from '../../../src/spec/status.js';
import { KnownStream } from '../../helpers/known-stream.js';
import { SLOT, bootTestMachine, guestFeatures, negotiatedRing, pciName, resultOf, type TestMachine } from '../../helpers/linux-machine.js';
import { RING_FORMATS } from '../../helpers/ring-formats.js';

for (const ring of RING_FORMATS) {
  describe(`${ring} ring`, () => {
    const modern = new KnownStream(`modern rng, ${ring} ring`);
    const transitional = new KnownStream(`transitional rng, ${ring} ring`);
    let m: TestMachine;
    let loaded: readonly GuestResult[];

    before(async () => {
      m = await bootTestMachine(
        { rng: new RngDevice({ entropy: modern.fill }), rngTransitional: new RngDevice({ entropy: transitional.fill }) },
        { ring },
      );
    });

    after(async () => {
      await m?.guest.destroy();
    });

    test('virtio_pci binds both virtio-rng functions over the modern interface; virtio_rng drives them on the ring offered', async (t) => {
      t.diagnostic(`${m.guest.restored ? 'restored' : 'booted'} in ${Math.round(m.guest.bootMs)} ms`);
      const out = await m.guest.command('load');
      assert.equal(out.rc, 0, out.results.map((r) => r.text).join('\n'));
      loaded = out.results;
      const ids: [number, number][] = [
        [SLOT.rng, VIRTIO_PCI_MODERN_DEVICE_ID_BASE + VIRTIO_ID_RNG],
        [SLOT.rngTransitional, VIRTIO_PCI_TRANSITIONAL_DEVICE_IDS.get(VIRTIO_ID_RNG)!],
      ];
      for (const [slot, deviceId] of ids) {
        const pci = resultOf(loaded, 'pci', { slot: pciName(slot) });
        assert.equal(Number(pci.fields['device']), deviceId);
        assert.equal(pci.fields['driver'], 'virtio-pci');
        const dev = resultOf(loaded, 'virtio', { pci: pciName(slot) });
        assert.equal(Number(dev.fields['type']), VIRTIO_ID_RNG);
        assert.equal(dev.fields['driver'], 'virtio_rng');
        const status = Number(dev.fields['status']);
        assert.equal(
          status & (VIRTIO_CONFIG_S_DRIVER_OK | VIRTIO_CONFIG_S_DEVICE_NEEDS_RESET),
          VIRTIO_CONFIG_S_DRIVER_OK,
          `status 0x${status.toString(16)}`,
        );
        assert.ok(hasFeature(guestFeatures(dev), VIRTIO_F_VERSION_1), 'modern interface: VERSION_1 negotiated');
        // Offered by our devices (3.4); Linux 6.1 and 6.5 have no suspend support and leave the bit.
        const fn = slot === SLOT.rng ? m.fns.rng : m.fns.rngTransitional;
        assert.ok(hasFeature(fn.core.offeredFeatures, VIRTIO_F_SUSPEND), 'our device offers VIRTIO_F_SUSPEND');
        assert.equal(hasFeature(guestFeatures(dev), VIRTIO_F_SUSPEND), false, 'Linux does not negotiate VIRTIO_F_SUSPEND');
        assert.equal(hasFeature(fn.core.negotiatedFeatures, VIRTIO_F_SUSPEND), false, 'the device agrees');
        assert.equal(negotiatedRing(dev, slot === SLOT.rng ? m.fns.rng : m.fns.rngTransitional), ring);
        t.diagnostic(`${pciName(slot)} features ${dev.fields['features']}`);
      }
      assert.equal(m.fns.rngTransitional.arbiter?.committed, 'modern');
    });

    test('/dev/hwrng reads bytes each device produced', async () => {
      const seen = new Set<KnownStream>();
      for (const name of ['virtio_rng.0', 'virtio_rng.1']) {
        const out = await m.guest.command(`rng 64 ${name}`);
        assert.equal(out.rc, 0);
        const rng = resultOf(out.results, 'rng');
        assert.equal(rng.fields['current'], name);
        const bytes = Buffer.from(rng.fields['bytes'] ?? '', 'hex');
        assert.equal(bytes.byteLength, 64);
        const from = [modern, transitional].filter((s) => s.gave(bytes));
        assert.equal(from.length, 1, `bytes read through ${name} came from no device (or both): ${bytes.toString('hex')}`);
        seen.add(from[0]!);
      }
      assert.equal(seen.size, 2, 'each device served one of the two hwrng names');
      assert.deepEqual(m.guest.adapter.refusedBars, []);
      assert.equal(m.fns.rng.core.fault, undefined);
      assert.equal(m.fns.rngTransitional.core.fault, undefined);
    });
  });
}
