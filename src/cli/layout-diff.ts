/**
 * The differential layout report: what our driver half sees of QEMU's virtio-pci device and of our
 * own device model of the same type, in the same mode, read by the same code (config space header,
 * BARs, capability list, offered features, queues, device configuration), side by side. Every
 * difference is either one of the ACCEPTED_DIFFERENCES (accepted-differences.ts), each with its
 * reason, or a finding. The devices compared, and how each side is configured: layout-devices.ts.
 *
 *   const diff = await layoutDiff('blk', 'modern');
 *   diff.rows.filter((r) => !r.same)                  // what differs, with r.accepted explaining why
 */

import { readMsixCapability, walkCapabilities } from '../bus/capabilities.js';
import { readConfigSpace, type ConfigSpaceSnapshot } from '../bus/config-space-reader.js';
import { sizeBars, type PciBar } from '../bus/bars.js';
import { bdf, type Bdf, type PciBus } from '../bus/pci-bus.js';
import { VirtioDriver } from '../driver/virtio-driver.js';
import { ProbeError, UsageError } from '../errors.js';
import { checkRingInterface, type RingOption } from './ring-option.js';
import { makeTempDir } from '../platform/cleanup.js';
import { Machine } from '../platform/machine.js';
import type { QemuMachine } from '../platform/qtest/qemu-process.js';
import { QtestPciBus } from '../platform/qtest/qtest-pci-bus.js';
import { VIRTIO_BLK_CONFIG_SIZE } from '../spec/blk.js';
import { VIRTIO_CONSOLE_CONFIG_SIZE } from '../spec/console.js';
import { VIRTIO_NET_CONFIG_SIZE } from '../spec/net.js';
import { VIRTIO_ID_BLOCK, VIRTIO_ID_CONSOLE, VIRTIO_ID_NET } from '../spec/ids.js';
import { decodeDeviceFeatures } from '../spec/feature-names.js';
import { bit, featureBits } from '../spec/features.js';
import { PCI_CAP_ID_MSIX, PCI_CAP_ID_VNDR } from '../spec/pci.js';
import {
  VIRTIO_PCI_CAP_BAR,
  VIRTIO_PCI_CAP_CFG_TYPE,
  VIRTIO_PCI_CAP_LEN,
  VIRTIO_PCI_CAP_LENGTH,
  VIRTIO_PCI_CAP_NAMES,
  VIRTIO_PCI_CAP_NOTIFY_CFG,
  VIRTIO_PCI_CAP_OFFSET,
  VIRTIO_PCI_CONFIG_OFF_NO_MSIX,
  VIRTIO_PCI_NOTIFY_CAP_MULT,
} from '../spec/virtio-pci.js';
import type { VirtioPciMode } from '../transport/pci/virtio-pci-function.js';
import { acceptedReason } from './accepted-differences.js';
import { LAYOUT_DEVICES, LAYOUT_MODES, LAYOUT_SLOT, ourDevice, qemuArgs, type LayoutDevice } from './layout-devices.js';

/** What the report reads of one function: section -> field -> value in words. */
export type Layout = ReadonlyMap<string, string>;

export interface LayoutRow {
  /** "header", "bar", "cap", "feature", "queue" or "config". */
  readonly section: string;
  readonly field: string;
  /** The value on each side; undefined when that side has no such field. */
  readonly qemu: string | undefined;
  readonly ours: string | undefined;
  readonly same: boolean;
  /** For a difference: the reason it is accepted, or undefined for an unexplained one (a finding). */
  readonly accepted: string | undefined;
}

export interface LayoutDiff {
  readonly device: LayoutDevice;
  readonly mode: VirtioPciMode;
  readonly machine: QemuMachine;
  /** The ring offered on both sides: `packed` is QEMU's `packed=on` and our `packed: true`; `split` neither. */
  readonly ring: RingOption;
  /** QEMU's -device arguments used. */
  readonly qemuArgs: readonly string[];
  readonly rows: readonly LayoutRow[];
}

/** The spec's configuration structure size per device type: the bytes the report reads (rng has none). */
const CONFIG_BYTES: ReadonlyMap<number, number> = new Map([
  [VIRTIO_ID_BLOCK, VIRTIO_BLK_CONFIG_SIZE],
  [VIRTIO_ID_NET, VIRTIO_NET_CONFIG_SIZE],
  [VIRTIO_ID_CONSOLE, VIRTIO_CONSOLE_CONFIG_SIZE],
]);
/** More queues than any covered device has (virtio-serial: 2 per port, 31 ports + control). */
const MAX_QUEUES_READ = 128;
const SLOT_BDF = bdf(0, LAYOUT_SLOT, 0);

const hex = (n: number, width = 0): string => `0x${n.toString(16).padStart(width, '0')}`;

function describeBar(bar: PciBar): string {
  if (bar.kind === 'io') return `io ${hex(bar.size)}`;
  return `mem${bar.is64 ? '64' : '32'}${bar.prefetchable ? ' prefetchable' : ''} ${hex(bar.size)}`;
}

/** The header, capability and MSI-X facts of a config space snapshot. */
function headerFacts(cfg: ConfigSpaceSnapshot, put: (section: string, field: string, value: string) => void): void {
  put('header', 'vendor:device', `${hex(cfg.vendorId, 4)}:${hex(cfg.deviceId, 4)}`);
  put('header', 'revision', hex(cfg.revision, 2));
  put('header', 'class', hex(cfg.classCode, 6));
  put('header', 'subsystem', `${hex(cfg.subsystemVendorId, 4)}:${hex(cfg.subsystemId, 4)}`);
  put('header', 'header type', hex(cfg.headerType, 2));
  put('header', 'status', hex(cfg.status, 4));
  put('header', 'interrupt pin', String(cfg.interruptPin));
  const walk = walkCapabilities(cfg);
  if (walk.error !== undefined) put('cap', 'walk', walk.error);
  for (const cap of walk.caps) {
    const at = hex(cap.offset, 2);
    if (cap.id === PCI_CAP_ID_VNDR) {
      const type = cfg.read8(cap.offset + VIRTIO_PCI_CAP_CFG_TYPE);
      const len = cfg.read8(cap.offset + VIRTIO_PCI_CAP_LEN);
      let value = `virtio ${VIRTIO_PCI_CAP_NAMES.get(type) ?? type} BAR${cfg.read8(cap.offset + VIRTIO_PCI_CAP_BAR)}+${hex(cfg.read32(cap.offset + VIRTIO_PCI_CAP_OFFSET))} length ${hex(cfg.read32(cap.offset + VIRTIO_PCI_CAP_LENGTH))} cap_len ${len}`;
      if (type === VIRTIO_PCI_CAP_NOTIFY_CFG) value += ` multiplier ${cfg.read32(cap.offset + VIRTIO_PCI_NOTIFY_CAP_MULT)}`;
      put('cap', at, value);
    } else if (cap.id === PCI_CAP_ID_MSIX) {
      const m = readMsixCapability(cfg, cap.offset);
      put('cap', at, `MSI-X ${m.tableSize} vectors, table BAR${m.tableBar}+${hex(m.tableOffset)}, PBA BAR${m.pbaBar}+${hex(m.pbaOffset)}`);
    } else {
      put('cap', at, `id ${hex(cap.id, 2)}`);
    }
  }
}

/**
 * Read the layout of virtio function `fn` on `bus` with the driver half's own code: the header and
 * capabilities, the BARs, then (through {@link VirtioDriver}, which resets the device) the offered
 * features, the queue sizes and the device configuration. The device is reset and left closed.
 */
export async function readLayout(bus: PciBus, fn: Bdf): Promise<Layout> {
  const facts = new Map<string, string>();
  const put = (section: string, field: string, value: string): void => void facts.set(`${section}\u0000${field}`, value);
  headerFacts(await readConfigSpace(bus, fn), put);
  for (const bar of await sizeBars(bus, fn)) put('bar', `BAR${bar.index}`, describeBar(bar));

  const driver = await VirtioDriver.open(bus, fn).catch((error: unknown) => {
    // An interface our driver cannot use yet is a fact of the layout, the same on both sides.
    if (error instanceof ProbeError) return error;
    throw error;
  });
  if (driver instanceof ProbeError) {
    put('probe', 'interface', `refused: ${driver.code}`);
    return facts;
  }
  try {
    put('probe', 'interface', driver.probe.kind);
    for (const n of featureBits(driver.deviceFeatures))
      put('feature', `${n} ${decodeDeviceFeatures(driver.deviceType, bit(n))}`, 'offered');
    const numQueues = Math.min(await driver.transport.numQueues(), MAX_QUEUES_READ);
    put('queue', 'count', String(numQueues));
    const sizes: number[] = [];
    for (let q = 0; q < numQueues; q++) sizes.push(await driver.transport.queueMaxSize(q));
    // Runs of equal sizes, so that 64 console queues make a short line: "0-1: 256, 2: 64".
    const runs: string[] = [];
    for (let q = 0; q < sizes.length;) {
      let end = q;
      while (end + 1 < sizes.length && sizes[end + 1] === sizes[q]) end++;
      runs.push(`${q === end ? q : `${q}-${end}`}: ${sizes[q]}`);
      q = end + 1;
    }
    put('queue', 'max sizes', runs.join(', '));
    // Up to the spec's structure size, within the window the interface gives (a device may present less).
    const window =
      driver.probe.kind === 'modern'
        ? (driver.probe.layout.device?.length ?? 0)
        : Math.max(0, driver.probe.bar0.size - VIRTIO_PCI_CONFIG_OFF_NO_MSIX);
    const length = Math.min(window, CONFIG_BYTES.get(driver.deviceType) ?? 0);
    const bytes = await Promise.all(Array.from({ length }, (_, i) => driver.readConfig(i, 1)));
    for (let i = 0; i < bytes.length; i += 4) {
      put(
        'config',
        hex(i, 2),
        bytes
          .slice(i, i + 4)
          .map((b) => b.toString(16).padStart(2, '0'))
          .join(' '),
      );
    }
  } finally {
    await driver.close();
  }
  return facts;
}

/** The layout of QEMU's `device` in `mode` and `ring` on `machine`, and the arguments QEMU got. */
export async function qemuLayout(
  device: LayoutDevice,
  mode: VirtioPciMode,
  machine: QemuMachine,
  ring: RingOption = 'split',
): Promise<{ layout: Layout; args: string[] }> {
  const dir = await makeTempDir('virtio-ts-layout-');
  try {
    const args = await qemuArgs(device, mode, ring, dir.path);
    const bus = await QtestPciBus.launch({ machine, args });
    try {
      return { layout: await readLayout(bus, SLOT_BDF), args };
    } finally {
      await bus.close();
    }
  } finally {
    await dir.remove();
  }
}

/**
 * The layout of our model of `device` in `mode`, offering the packed ring for `ring` packed, plugged
 * into the in-process machine with as many MSI-X vectors as QEMU's `msixVectors`.
 */
export async function modelLayout(
  device: LayoutDevice,
  mode: VirtioPciMode,
  msixVectors: number,
  ring: RingOption = 'split',
): Promise<Layout> {
  const m = new Machine({ ramSize: 16 << 20 });
  const { bdf } = m.plugVirtio(ourDevice(device), { mode, msixVectors, at: SLOT_BDF, packed: ring === 'packed' });
  try {
    return await readLayout(m.bus, bdf);
  } finally {
    await m.bus.close();
  }
}

/** Side by side rows of two layouts, in QEMU's order with fields only ours has after. */
export function diffLayouts(device: LayoutDevice, mode: VirtioPciMode, qemu: Layout, ours: Layout): LayoutRow[] {
  const keys = [...qemu.keys(), ...[...ours.keys()].filter((k) => !qemu.has(k))];
  const order = ['header', 'bar', 'cap', 'probe', 'feature', 'queue', 'config'];
  const sectionOf = (k: string): string => k.split('\u0000')[0]!;
  keys.sort((a, b) => order.indexOf(sectionOf(a)) - order.indexOf(sectionOf(b)));
  return keys.map((key) => {
    const [section = '', field = ''] = key.split('\u0000');
    const q = qemu.get(key);
    const o = ours.get(key);
    const same = q === o;
    return { section, field, qemu: q, ours: o, same, accepted: same ? undefined : acceptedReason(device, mode, section, field) };
  });
}

/** The MSI-X table size a layout shows (0 without MSI-X). */
function msixVectorsOf(layout: Layout): number {
  for (const [key, value] of layout) {
    const m = /^MSI-X (\d+) vectors/.exec(value);
    if (key.startsWith('cap\u0000') && m) return Number(m[1]);
  }
  return 0;
}

/**
 * Launch QEMU with `device` in `mode`, read both layouts with the same code, and compare them; with
 * `ring` packed both sides offer the packed ring (it needs the modern interface: refused for legacy).
 */
export async function layoutDiff(
  device: LayoutDevice,
  mode: VirtioPciMode,
  machine: QemuMachine = 'q35',
  ring: RingOption = 'split',
): Promise<LayoutDiff> {
  if (!LAYOUT_DEVICES.includes(device)) throw new UsageError(`device ${device}: use one of ${LAYOUT_DEVICES.join(', ')}`);
  if (!LAYOUT_MODES.includes(mode)) throw new UsageError(`mode ${mode}: use one of ${LAYOUT_MODES.join(', ')}`);
  checkRingInterface(ring, mode === 'legacy' ? '--mode legacy' : undefined);
  const { layout: qemu, args } = await qemuLayout(device, mode, machine, ring);
  const ours = await modelLayout(device, mode, msixVectorsOf(qemu), ring);
  return { device, mode, machine, ring, qemuArgs: args, rows: diffLayouts(device, mode, qemu, ours) };
}
