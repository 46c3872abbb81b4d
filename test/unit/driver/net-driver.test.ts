import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { createMemoryNetPair } from '../../../src/device/net/memory-pair.js';
import { VirtioNetDevice } from '../../../src/device/net/net-device.js';
import type { NetBackend } from '../../../src/device/net/backend.js';
import { VirtioNetDriver, type VirtioNetDriverOptions } from '../../../src/driver/net/net-driver.js';
import { Machine } from '../../../src/platform/machine.js';
import type { VirtioPciFunctionOptions } from '../../../src/transport/pci/virtio-pci-function.js';
import { VIRTIO_F_VERSION_1 } from '../../../src/spec/features.js';
import { hasFeature } from '../../../src/spec/features.js';
import * as N from '../../../src/spec/net.js';
import { BROADCAST, ethFrame, mac, RecordingNetBackend } from '../../helpers/net-frames.js';
import { offering, RING_FORMATS, type RingName } from '../../helpers/ring-formats.js';

const MAC_A = mac(0x02, 0, 0, 0, 0, 0x0a);
const MAC_B = mac(0x02, 0, 0, 0, 0, 0x0b);

interface Node {
  readonly machine: Machine;
  readonly device: VirtioNetDevice;
  readonly driver: VirtioNetDriver;
}

const open: VirtioNetDriver[] = [];
after(async () => {
  for (const d of open) await d.close();
});

async function node(
  backend: NetBackend,
  macAddr: Uint8Array,
  opts: VirtioNetDriverOptions = {},
  queuePairs = 1,
  plug: VirtioPciFunctionOptions = {},
): Promise<Node> {
  const machine = new Machine({ ramSize: 16 << 20 });
  const device = new VirtioNetDevice({ backend, mac: macAddr, queuePairs });
  const { bdf } = machine.plugVirtio(device, plug);
  const driver = await VirtioNetDriver.open(machine.bus, bdf, { timeoutMs: 2000, ...opts });
  open.push(driver);
  return { machine, device, driver };
}

for (const ring of RING_FORMATS) {
  describe(`virtio-net driver and device, two machines on the in-memory pair, ${ring} ring`, () => {
    /** A node on the `ring` format: negotiated, then checked. */
    const nodeOn = async (backend: NetBackend, macAddr: Uint8Array, opts: VirtioNetDriverOptions = {}, queuePairs = 1): Promise<Node> => {
      const n = await node(backend, macAddr, opts, queuePairs, offering(ring));
      assert.equal(n.driver.core.ringFormat.name, ring);
      return n;
    };

    it('exchange frames both ways with the far end checked', async () => {
      const [ea, eb] = createMemoryNetPair();
      const a = await nodeOn(ea, MAC_A);
      const b = await nodeOn(eb, MAC_B);
      assert.deepEqual(a.driver.mac, MAC_A);
      assert.equal(await a.driver.linkUp(), true);
      assert.ok(hasFeature(a.driver.features, N.VIRTIO_NET_F_MRG_RXBUF));
      const ping = ethFrame(MAC_B, MAC_A, 64);
      await a.driver.send(ping);
      assert.deepEqual(await b.driver.receive(), ping);
      const pong = ethFrame(MAC_A, MAC_B, 1500);
      await b.driver.send(pong);
      assert.deepEqual(await a.driver.receive(), pong);
      // A burst larger than the queue: every frame arrives, in order.
      const burst = Array.from({ length: 600 }, (_, i) =>
        ethFrame(MAC_B, MAC_A, Uint8Array.of(i >> 8, i & 0xff, ...new Array(60).fill(i & 0xff))),
      );
      const got: Uint8Array[] = [];
      const reader = (async () => {
        for await (const f of b.driver.received()) {
          got.push(f);
          if (got.length === burst.length) return;
        }
      })();
      for (const f of burst) await a.driver.send(f);
      await reader;
      assert.deepEqual(got, burst);
      assert.equal(a.device.stats.txFrames, 601);
    });

    it('carries a frame over several small receive buffers (MRG_RXBUF)', async () => {
      const [ea, eb] = createMemoryNetPair();
      const a = await nodeOn(ea, MAC_A);
      const b = await nodeOn(eb, MAC_B, { rxBufferSize: 256 });
      const big = ethFrame(MAC_B, MAC_A, 1400);
      await a.driver.send(big);
      assert.deepEqual(await b.driver.receive(), big);
      // 12 + 1414 bytes in 256-byte buffers: 6 buffers for one frame.
      assert.equal(b.driver.stats.rxBuffers, 6);
      assert.equal(b.device.stats.rxFrames, 1);
      assert.equal(b.device.stats.rxDropped, 0);
    });

    it('works without MRG_RXBUF (one buffer per frame)', async () => {
      const [ea, eb] = createMemoryNetPair();
      const a = await nodeOn(ea, MAC_A, { mergeableRxBuffers: false });
      const b = await nodeOn(eb, MAC_B, { mergeableRxBuffers: false });
      assert.equal(hasFeature(b.driver.features, N.VIRTIO_NET_F_MRG_RXBUF), false);
      const f = ethFrame(MAC_B, MAC_A, 1500);
      await a.driver.send(f);
      assert.deepEqual(await b.driver.receive(), f);
    });

    it('promiscuous mode decides whether a frame for another MAC arrives', async () => {
      const backend = new RecordingNetBackend();
      const b = await nodeOn(backend, MAC_B);
      const stranger = mac(0x02, 0, 0, 0, 0, 0x77);
      await b.driver.setPromiscuous(false);
      backend.inject(ethFrame(stranger, MAC_A, 40));
      const mine = ethFrame(MAC_B, MAC_A, 41);
      backend.inject(mine);
      assert.deepEqual(await b.driver.receive(), mine, 'the frame for another MAC was dropped');
      assert.equal(b.device.stats.rxFiltered, 1);
      await b.driver.setPromiscuous(true);
      const other = ethFrame(stranger, MAC_A, 42);
      backend.inject(other);
      assert.deepEqual(await b.driver.receive(), other);
      // MAC table: promiscuous off, the stranger listed as an extra unicast address.
      await b.driver.setPromiscuous(false);
      await b.driver.setMacTable([stranger], []);
      backend.inject(other);
      assert.deepEqual(await b.driver.receive(), other);
      backend.inject(ethFrame(BROADCAST, MAC_A, 43));
      assert.equal((await b.driver.receive()).byteLength, 14 + 43);
    });

    it('reports a refused control command as ERR_DEVICE_STATUS', async () => {
      const b = await nodeOn(new RecordingNetBackend(), MAC_B);
      await assert.rejects(b.driver.command(N.VIRTIO_NET_CTRL_VLAN, N.VIRTIO_NET_CTRL_VLAN_ADD, Uint8Array.of(5, 0)), {
        code: 'ERR_DEVICE_STATUS',
      });
      // The queue still works afterwards.
      await b.driver.setAllMulticast(true);
      assert.equal(b.device.filter.modes.allmulti, true);
    });

    it('sees link changes through the configuration-change interrupt, and acks announce', async () => {
      const b = await nodeOn(new RecordingNetBackend(), MAC_B);
      const states: boolean[] = [];
      const changed = new Promise<void>((resolve) =>
        b.driver.onLinkChange((up) => {
          states.push(up);
          if (states.length === 2) resolve();
        }),
      );
      b.device.setLinkUp(false);
      await new Promise((r) => setTimeout(r, 20));
      assert.equal(await b.driver.linkUp(), false);
      b.device.setLinkUp(true);
      await changed;
      assert.deepEqual(states, [false, true]);
      assert.equal(b.device.announce(), true);
      for (let i = 0; i < 100 && ((await b.driver.status()) & N.VIRTIO_NET_S_ANNOUNCE) !== 0; i++)
        await new Promise((r) => setTimeout(r, 5));
      assert.equal(await b.driver.status(), N.VIRTIO_NET_S_LINK_UP);
    });

    it('counts frames as dropped while the receiver does not drain, never blocking the sender', async () => {
      const [ea, eb] = createMemoryNetPair();
      const a = await nodeOn(ea, MAC_A);
      const b = await nodeOn(eb, MAC_B, { queueSize: 8, maxQueuedFrames: 4 });
      for (let i = 0; i < 50; i++) await a.driver.send(ethFrame(MAC_B, MAC_A, 100));
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(a.device.stats.txFrames, 50);
      assert.equal(b.device.stats.rxFrames + b.device.stats.rxDropped, 50);
      assert.equal(b.driver.stats.rxFrames, b.device.stats.rxFrames);
      assert.equal(b.driver.stats.rxOverflow, b.driver.stats.rxFrames - 4);
    });

    it('uses several queue pairs with VIRTIO_NET_F_MQ', async () => {
      const [ea, eb] = createMemoryNetPair();
      const a = await nodeOn(ea, MAC_A, { queuePairs: 2 }, 2);
      const b = await nodeOn(eb, MAC_B, { queuePairs: 2 }, 2);
      assert.equal(b.driver.queuePairs, 2);
      assert.equal(b.device.queuePairsInUse, 2);
      const frames = Array.from({ length: 40 }, (_, i) => {
        const ip = new Uint8Array(28);
        ip[0] = 0x45;
        ip[9] = 17;
        ip.set([10, 0, 0, 1, 10, 0, 0, 2], 12);
        ip[21] = i;
        return ethFrame(MAC_B, MAC_A, ip, 0x0800);
      });
      for (const [i, f] of frames.entries()) await a.driver.send(f, i % 2);
      const got: Uint8Array[] = [];
      for (let i = 0; i < frames.length; i++) got.push(await b.driver.receive());
      const key = (f: Uint8Array): string => Buffer.from(f).toString('hex');
      assert.deepEqual(got.map(key).sort(), frames.map(key).sort());
    });
  });
}

describe('virtio-net over every interface and interrupt mode', () => {
  const CASES: { name: string; plug: VirtioPciFunctionOptions; driver: VirtioNetDriverOptions; version1: boolean; ring?: RingName }[] = [
    { name: 'modern, INTx', plug: {}, driver: { interrupts: 'intx' }, version1: true },
    { name: 'modern, MSI-X per queue', plug: { msixVectors: 4 }, driver: { interrupts: 'msix' }, version1: true },
    {
      name: 'transitional, legacy interface (10-byte header)',
      plug: { mode: 'transitional' },
      driver: { forceLegacy: true, mergeableRxBuffers: false },
      version1: false,
    },
    {
      name: 'legacy-only with MRG_RXBUF, MSI-X',
      plug: { mode: 'legacy', msixVectors: 4 },
      driver: { interrupts: 'msix', rxBufferSize: 128 },
      version1: false,
    },
    {
      name: 'transitional offering the packed ring, modern interface, MSI-X',
      plug: { mode: 'transitional', msixVectors: 4, packed: true },
      driver: { interrupts: 'msix' },
      version1: true,
      ring: 'packed',
    },
    // Bit 34 lies beyond the legacy feature word: the packed offer never reaches a legacy driver.
    {
      name: 'transitional offering the packed ring, legacy interface',
      plug: { mode: 'transitional', packed: true },
      driver: { forceLegacy: true, mergeableRxBuffers: false },
      version1: false,
      ring: 'split',
    },
  ];
  for (const c of CASES) {
    it(`${c.name}: frames both ways, promiscuous filtering`, async () => {
      const [ea, eb] = createMemoryNetPair();
      const a = await node(ea, MAC_A, c.driver, 1, c.plug);
      const b = await node(eb, MAC_B, c.driver, 1, c.plug);
      assert.equal(a.driver.core.probe.kind, c.version1 ? 'modern' : 'legacy');
      assert.equal(hasFeature(a.driver.features, VIRTIO_F_VERSION_1), c.version1);
      assert.equal(hasFeature(a.device.negotiatedFeatures, VIRTIO_F_VERSION_1), c.version1);
      assert.equal(a.driver.core.ringFormat.name, c.ring ?? 'split');
      for (const len of [60, 700, 1514]) {
        const f = ethFrame(MAC_B, MAC_A, len - 14);
        await a.driver.send(f);
        assert.deepEqual(await b.driver.receive(), f);
        const g = ethFrame(MAC_A, MAC_B, len - 14);
        await b.driver.send(g);
        assert.deepEqual(await a.driver.receive(), g);
      }
      await b.driver.setPromiscuous(false);
      await a.driver.send(ethFrame(mac(0x02, 0, 0, 0, 0, 0x77), MAC_A, 50));
      const mine = ethFrame(MAC_B, MAC_A, 51);
      await a.driver.send(mine);
      assert.deepEqual(await b.driver.receive(), mine);
      assert.equal(b.device.stats.rxFiltered, 1);
    });
  }
});
