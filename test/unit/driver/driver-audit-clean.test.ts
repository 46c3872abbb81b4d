/**
 * Our own driver audits clean against our devices (issue 14, driver audit): every device type, on
 * every interface (modern-only, transitional through either interface, legacy-only), with MSI-X and
 * without, on split and packed rings where the interface has them. Each case initialises the
 * driver, moves data both ways where the device has two directions, uses the config space and the
 * control paths, and closes; the device's audit must then hold no finding.
 */

import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { describe, it } from 'node:test';
import { DriverAudit } from '../../../src/core/driver-audit.js';
import type { VirtioDevice } from '../../../src/core/virtio-device.js';
import { BlkDevice } from '../../../src/device/blk/blk-device.js';
import { MemoryBlockBackend } from '../../../src/device/blk/memory-backend.js';
import { VirtioConsoleDevice } from '../../../src/device/console/console-device.js';
import { streamBytePort } from '../../../src/device/console/port-streams.js';
import { VirtioNetDevice } from '../../../src/device/net/net-device.js';
import { RngDevice } from '../../../src/device/rng/rng-device.js';
import { BlkDriver } from '../../../src/driver/blk/blk-driver.js';
import { VirtioConsoleDriver } from '../../../src/driver/console/console-driver.js';
import { VirtioNetDriver } from '../../../src/driver/net/net-driver.js';
import { RngDriver } from '../../../src/driver/rng/rng-driver.js';
import { Machine } from '../../../src/platform/machine.js';
import type { VirtioPciMode } from '../../../src/transport/pci/virtio-pci-function.js';
import { ethFrame, mac, RecordingNetBackend } from '../../helpers/net-frames.js';
import { bit } from '../../../src/spec/features.js';
import * as N from '../../../src/spec/net.js';
import { offering, RING_FORMATS } from '../../helpers/ring-formats.js';

interface Way {
  readonly name: string;
  readonly mode: VirtioPciMode;
  readonly forceLegacy: boolean;
}

const WAYS: readonly Way[] = [
  { name: 'modern-only', mode: 'modern', forceLegacy: false },
  { name: 'transitional, modern interface', mode: 'transitional', forceLegacy: false },
  { name: 'transitional, legacy interface', mode: 'transitional', forceLegacy: true },
  { name: 'legacy-only', mode: 'legacy', forceLegacy: false },
];

/** What one case does with the driver once open; returns the close. */
type Exercise = (m: Machine, bdf: number, forceLegacy: boolean) => Promise<() => Promise<void>>;

const MAC = mac(0x02, 0, 0, 0, 0, 0x0a);
const PEER = mac(0x02, 0, 0, 0, 0, 0x0b);
const text = (s: string): Uint8Array => new TextEncoder().encode(s);

const DEVICES: readonly { name: string; make: () => { device: VirtioDevice; exercise: Exercise }; transitional: boolean }[] = [
  {
    name: 'blk',
    transitional: true,
    make: () => ({
      device: new BlkDevice({ backend: new MemoryBlockBackend(1 << 20) }),
      exercise: async (m, bdf, forceLegacy) => {
        const drv = await BlkDriver.open(m.bus, bdf, { forceLegacy, timeoutMs: 5000 });
        const data = new Uint8Array(8 * 512).map((_, i) => i * 7);
        await drv.write(8, data);
        assert.deepEqual(await drv.read(8, 8), data);
        await drv.flush();
        return () => drv.close();
      },
    }),
  },
  {
    name: 'rng',
    transitional: true,
    make: () => ({
      device: new RngDevice(),
      exercise: async (m, bdf, forceLegacy) => {
        const drv = await RngDriver.open(m.bus, bdf, { forceLegacy, timeoutMs: 5000 });
        assert.equal((await drv.read(64)).byteLength, 64);
        return () => drv.close();
      },
    }),
  },
  {
    name: 'console',
    transitional: true,
    make: () => {
      const input = new PassThrough();
      const output = new PassThrough();
      return {
        device: new VirtioConsoleDevice({
          ports: [{ console: true, host: streamBytePort({ input, output }) }],
          size: { cols: 80, rows: 24 },
        }),
        exercise: async (m, bdf, forceLegacy) => {
          const drv = await VirtioConsoleDriver.open(m.bus, bdf, { forceLegacy, timeoutMs: 5000 });
          const port = drv.port(0)!;
          input.write('in\n');
          assert.deepEqual(await port.read(3), text('in\n'));
          await port.write(text('out\n'));
          assert.equal(output.read()?.toString(), 'out\n');
          await drv.size();
          return () => drv.close();
        },
      };
    },
  },
  {
    name: 'net',
    transitional: true,
    make: () => {
      const backend = new RecordingNetBackend();
      return {
        device: new VirtioNetDevice({ backend, mac: MAC }),
        exercise: async (m, bdf, forceLegacy) => {
          const drv = await VirtioNetDriver.open(m.bus, bdf, { forceLegacy, timeoutMs: 5000 });
          await drv.linkUp();
          const out = ethFrame(PEER, MAC, 80);
          await drv.send(out);
          assert.deepEqual(backend.sent, [out]);
          const inbound = ethFrame(MAC, PEER, 90);
          backend.inject(inbound);
          assert.deepEqual(await drv.receive(), inbound);
          return () => drv.close();
        },
      };
    },
  },
];

/** A net device that offers `feature`'s dependents but not `feature` itself (as a device may: 2.2.1 binds the driver). */
function netWithout(feature: number): VirtioNetDevice {
  const device = new VirtioNetDevice({ backend: new RecordingNetBackend(), mac: MAC });
  Object.defineProperty(device, 'deviceFeatures', { value: device.deviceFeatures & ~bit(feature) });
  return device;
}

/**
 * Issue 14 item 6 (fixed on i-conf-findings): the driver core accepted CTRL_RX and the features after
 * it without CTRL_VQ, and the net driver sent RX and MAC commands without CTRL_RX/CTRL_RX_EXTRA. Before
 * the fix these cases recorded features/dependencies, net/ctrl-rx-negotiated, net/ctrl-mac-negotiated
 * and net/ctrl-rx-extra-negotiated.
 */
describe('our net driver keeps the feature dependencies and the control command rules', () => {
  for (const [missing, name] of [
    [N.VIRTIO_NET_F_CTRL_VQ, 'CTRL_VQ'],
    [N.VIRTIO_NET_F_CTRL_RX, 'CTRL_RX'],
    [N.VIRTIO_NET_F_CTRL_RX_EXTRA, 'CTRL_RX_EXTRA'],
  ] as const)
    it(`a device that does not offer ${name}: nothing accepted without its dependencies, no command the features rule out`, async () => {
      const audit = new DriverAudit();
      const m = new Machine({ ramSize: 32 << 20 });
      const { bdf } = m.plugVirtio(netWithout(missing), { audit });
      const drv = await VirtioNetDriver.open(m.bus, bdf, { timeoutMs: 5000 });
      // A driver may refuse these (its features rule them out) but must not send them.
      for (const attempt of [
        () => drv.setPromiscuous(true),
        () => drv.setRxMode(N.VIRTIO_NET_CTRL_RX_NOBCAST, true),
        () => drv.setMacTable([PEER], []),
      ])
        await attempt().catch(() => undefined);
      await drv.close();
      assert.deepEqual(
        audit.findings.map((f) => `${f.requirement.id} x${f.count}: ${f.detail}`),
        [],
      );
    });
});

for (const d of DEVICES)
  describe(`our ${d.name} driver audits clean against our ${d.name} device`, () => {
    for (const way of WAYS)
      for (const msix of [true, false])
        for (const ring of RING_FORMATS) {
          // The legacy interface has no packed ring (its feature word is 32 bits).
          if (ring === 'packed' && (way.forceLegacy || way.mode === 'legacy')) continue;
          it(`${way.name}, MSI-X ${msix ? 'on' : 'off'}, ${ring} ring`, async () => {
            const audit = new DriverAudit();
            const m = new Machine({ ramSize: 32 << 20 });
            const { device, exercise } = d.make();
            const { bdf, fn } = m.plugVirtio(device, { mode: way.mode, msixVectors: msix ? 4 : 0, ...offering(ring), audit });
            const close = await exercise(m, bdf, way.forceLegacy);
            await close();
            assert.equal(fn.core.status, 0, 'closed: the device is reset');
            assert.deepEqual(
              audit.findings.map((f) => `${f.requirement.id} x${f.count}: ${f.detail} [${f.access}]`),
              [],
            );
          });
        }
  });
