/**
 * QEMU's (7.2 and 10.0) virtio-rng-pci, virtio-blk-pci, virtio-net-pci and virtio-serial-pci as our bus sees
 * them, before any driver runs: IDs, the virtio capabilities and where they point, the MSI-X
 * capability and the BARs, on both machines and in every mode (shared/QTEST.md lists the facts).
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readConfigSpace, type ConfigSpaceSnapshot } from '../../../src/bus/config-space-reader.js';
import { walkCapabilities } from '../../../src/bus/capabilities.js';
import { sizeBars } from '../../../src/bus/bars.js';
import { PCI_CAP_ID_MSIX, PCI_CAP_ID_VNDR, PCI_MSIX_BIR_MASK, PCI_MSIX_PBA, PCI_MSIX_TABLE } from '../../../src/spec/pci.js';
import {
  VIRTIO_PCI_CAP_BAR,
  VIRTIO_PCI_CAP_CFG_TYPE,
  VIRTIO_PCI_CAP_COMMON_CFG,
  VIRTIO_PCI_CAP_DEVICE_CFG,
  VIRTIO_PCI_CAP_ISR_CFG,
  VIRTIO_PCI_CAP_LEN,
  VIRTIO_PCI_CAP_NOTIFY_CFG,
  VIRTIO_PCI_CAP_OFFSET,
  VIRTIO_PCI_CAP_PCI_CFG,
  VIRTIO_PCI_NOTIFY_CAP_MULT,
  VIRTIO_PCI_NOTIFY_CAP_SIZE,
} from '../../../src/spec/virtio-pci.js';
import {
  VIRTIO_ID_BLOCK,
  VIRTIO_ID_CONSOLE,
  VIRTIO_ID_NET,
  VIRTIO_ID_RNG,
  VIRTIO_PCI_MODERN_DEVICE_ID_BASE,
  VIRTIO_PCI_TRANSITIONAL_DEVICE_IDS,
  VIRTIO_PCI_VENDOR_ID,
} from '../../../src/spec/ids.js';
import type { QtestPciBus } from '../../../src/platform/qtest/qtest-pci-bus.js';
import { blkArgs, launch, MACHINES, rawImage, rngArgs, slotBdf, tempDir } from './qemu-fixture.js';

type Mode = 'modern' | 'transitional' | 'legacy';
const MODE_PROPS: Readonly<Record<Mode, string>> = { modern: 'disable-legacy=on', transitional: '', legacy: 'disable-modern=on' };

interface Layout {
  readonly slot: number;
  readonly type: number;
  readonly mode: Mode;
}
const LAYOUTS: readonly Layout[] = [
  { slot: 4, type: VIRTIO_ID_RNG, mode: 'modern' },
  { slot: 5, type: VIRTIO_ID_RNG, mode: 'transitional' },
  { slot: 6, type: VIRTIO_ID_BLOCK, mode: 'modern' },
  { slot: 7, type: VIRTIO_ID_BLOCK, mode: 'transitional' },
  { slot: 8, type: VIRTIO_ID_BLOCK, mode: 'legacy' },
  { slot: 9, type: VIRTIO_ID_NET, mode: 'modern' },
  { slot: 10, type: VIRTIO_ID_NET, mode: 'transitional' },
  { slot: 11, type: VIRTIO_ID_NET, mode: 'legacy' },
  { slot: 12, type: VIRTIO_ID_CONSOLE, mode: 'modern' },
  { slot: 13, type: VIRTIO_ID_CONSOLE, mode: 'transitional' },
  { slot: 14, type: VIRTIO_ID_CONSOLE, mode: 'legacy' },
];
/** The -device model of each type. */
const MODELS: ReadonlyMap<number, string> = new Map([
  [VIRTIO_ID_NET, 'virtio-net-pci'],
  [VIRTIO_ID_CONSOLE, 'virtio-serial-pci'],
]);

/** The virtio capabilities of a function as [cfg_type, bar, offset, cap_len] plus the notify multiplier. */
function virtioCaps(cfg: ConfigSpaceSnapshot): Map<number, { bar: number; offset: number; len: number; multiplier: number }> {
  const caps = new Map<number, { bar: number; offset: number; len: number; multiplier: number }>();
  for (const cap of walkCapabilities(cfg).caps) {
    if (cap.id !== PCI_CAP_ID_VNDR) continue;
    const type = cfg.read8(cap.offset + VIRTIO_PCI_CAP_CFG_TYPE);
    caps.set(type, {
      bar: cfg.read8(cap.offset + VIRTIO_PCI_CAP_BAR),
      offset: cfg.read32(cap.offset + VIRTIO_PCI_CAP_OFFSET),
      len: cfg.read8(cap.offset + VIRTIO_PCI_CAP_LEN),
      multiplier: type === VIRTIO_PCI_CAP_NOTIFY_CFG ? cfg.read32(cap.offset + VIRTIO_PCI_NOTIFY_CAP_MULT) : 0,
    });
  }
  return caps;
}

async function start(machine: 'pc' | 'q35'): Promise<QtestPciBus> {
  const dir = await tempDir();
  const args: string[] = [];
  for (const l of LAYOUTS) {
    if (l.type === VIRTIO_ID_RNG) args.push(...rngArgs(l.slot, MODE_PROPS[l.mode]));
    else if (l.type === VIRTIO_ID_BLOCK)
      args.push(...blkArgs(l.slot, await rawImage(dir, `${machine}-${l.slot}.img`, 1 << 20), MODE_PROPS[l.mode]));
    else args.push('-device', [`${MODELS.get(l.type)}`, `addr=0x${l.slot.toString(16)}`, MODE_PROPS[l.mode]].filter(Boolean).join(','));
  }
  return launch({ machine, args });
}

for (const machine of MACHINES) {
  test(`-M ${machine}: virtio-rng/blk/net/serial-pci config space in every mode`, async (t) => {
    const bus = await start(machine);
    for (const l of LAYOUTS) {
      await t.test(`${l.mode} type ${l.type} at 00:${l.slot.toString(16).padStart(2, '0')}.0`, async () => {
        const fn = slotBdf(l.slot);
        const cfg = await readConfigSpace(bus, fn);
        assert.equal(cfg.vendorId, VIRTIO_PCI_VENDOR_ID);
        if (l.mode === 'modern') {
          assert.equal(cfg.deviceId, VIRTIO_PCI_MODERN_DEVICE_ID_BASE + l.type);
          assert.equal(cfg.revision, 1);
        } else {
          assert.equal(cfg.deviceId, VIRTIO_PCI_TRANSITIONAL_DEVICE_IDS.get(l.type));
          assert.equal(cfg.revision, 0);
          // Spec 4.1.2.1: a transitional device's subsystem device ID is the virtio device type.
          assert.equal(cfg.subsystemId, l.type);
        }

        const walk = walkCapabilities(cfg);
        assert.equal(walk.error, undefined);
        const msix = walk.caps.find((c) => c.id === PCI_CAP_ID_MSIX);
        assert.ok(msix, 'MSI-X capability');
        // Table at BAR1 + 0, PBA at BAR1 + 0x800.
        assert.equal(cfg.read32(msix.offset + PCI_MSIX_TABLE), 1);
        assert.equal(cfg.read32(msix.offset + PCI_MSIX_PBA), 0x800 | 1);
        assert.equal(cfg.read32(msix.offset + PCI_MSIX_TABLE) & PCI_MSIX_BIR_MASK, 1);

        const caps = virtioCaps(cfg);
        if (l.mode === 'legacy') {
          assert.equal(caps.size, 0, 'a legacy-only device has no virtio capabilities');
        } else {
          assert.deepEqual(
            [VIRTIO_PCI_CAP_COMMON_CFG, VIRTIO_PCI_CAP_ISR_CFG, VIRTIO_PCI_CAP_DEVICE_CFG, VIRTIO_PCI_CAP_NOTIFY_CFG].map((type) => {
              const c = caps.get(type);
              return c && [c.bar, c.offset];
            }),
            [
              [4, 0x0],
              [4, 0x1000],
              [4, 0x2000],
              [4, 0x3000],
            ],
          );
          assert.equal(caps.get(VIRTIO_PCI_CAP_NOTIFY_CFG)?.len, VIRTIO_PCI_NOTIFY_CAP_SIZE);
          assert.equal(caps.get(VIRTIO_PCI_CAP_NOTIFY_CFG)?.multiplier, 4);
          assert.ok(caps.has(VIRTIO_PCI_CAP_PCI_CFG), 'PCI configuration access capability');
        }

        const bars = await sizeBars(bus, fn);
        const bar = (i: number) => bars.find((b) => b.index === i);
        assert.equal(bar(1)?.kind, 'memory', 'BAR1 holds the MSI-X table');
        if (l.mode === 'legacy') {
          assert.equal(bar(4), undefined);
        } else {
          assert.deepEqual([bar(4)?.kind, bar(4)?.is64, bar(4)?.prefetchable, bar(4)?.size], ['memory', true, true, 0x4000]);
        }
        if (l.mode === 'modern') {
          assert.equal(bar(0), undefined, 'a modern-only device has no legacy I/O BAR');
        } else {
          assert.equal(bar(0)?.kind, 'io');
          if (l.type === VIRTIO_ID_BLOCK) assert.equal(bar(0)?.size, 0x80);
        }
      });
    }
  });
}
