/**
 * The differential layout report: what our driver half sees of QEMU's virtio-pci device and of our
 * own device model of the same type, in the same mode, read by the same code (config space header,
 * BARs, capability list, offered features, queues, device configuration), side by side. Every
 * difference is either one of {@link ACCEPTED_DIFFERENCES}, each with its reason, or a finding.
 *
 *   const diff = await layoutDiff('blk', 'modern');
 *   diff.rows.filter((r) => !r.same)                  // what differs, with r.accepted explaining why
 */

import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MemoryBlockBackend } from '../device/blk/memory-backend.js';
import { BlkDevice } from '../device/blk/blk-device.js';
import { VirtioConsoleDevice } from '../device/console/console-device.js';
import { createMemoryNetPair } from '../device/net/memory-pair.js';
import { VirtioNetDevice } from '../device/net/net-device.js';
import { RngDevice } from '../device/rng/rng-device.js';
import type { VirtioDevice } from '../core/virtio-device.js';
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

/** The device types the report covers. */
export type LayoutDevice = 'rng' | 'blk' | 'net' | 'console';
export const LAYOUT_DEVICES: readonly LayoutDevice[] = ['rng', 'blk', 'net', 'console'];
export const LAYOUT_MODES: readonly VirtioPciMode[] = ['modern', 'transitional', 'legacy'];

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

/** A documented difference: the rows it covers (section and field pattern), for which devices and modes, and why. */
export interface AcceptedDifference {
  readonly devices: readonly LayoutDevice[];
  readonly modes: readonly VirtioPciMode[];
  readonly section: string;
  readonly field: RegExp;
  readonly reason: string;
}

const WITH_MODERN: readonly VirtioPciMode[] = ['modern', 'transitional'];

/**
 * The differences between QEMU (7.2 and 10.0 alike) and our device models that are kept on purpose, each with its
 * reason. The peer test asserts that the diff holds exactly these: no other difference, and each
 * of these still occurs.
 */
export const ACCEPTED_DIFFERENCES: readonly AcceptedDifference[] = [
  {
    devices: LAYOUT_DEVICES,
    modes: WITH_MODERN,
    section: 'feature',
    field: /^(35 IN_ORDER|38 NOTIFICATION_DATA|39 NOTIF_CONFIG_DATA|43 SUSPEND)$/,
    reason:
      'our modern transport offers in-order use of buffers (6.2), notification data and queue_notif_config_data (4.1.5.2) and suspending the device (3.4); QEMU 7.2 has none of them, 10.0.2 offers IN_ORDER only with in_order=on and has no notification data or SUSPEND; all are optional for a device',
  },
  {
    devices: LAYOUT_DEVICES,
    modes: ['legacy'],
    section: 'feature',
    field: /^24 NOTIFY_ON_EMPTY$/,
    reason: 'a legacy-only bit transitional devices MAY offer (6.3): our models do not implement NOTIFY_ON_EMPTY',
  },
  {
    devices: LAYOUT_DEVICES,
    modes: ['legacy'],
    section: 'feature',
    field: /^30 bit30$/,
    reason: "bit 30 is QEMU's VIRTIO_F_BAD_FEATURE, a trap for legacy drivers that accept every bit; our models offer no trap bit",
  },
  {
    devices: ['blk'],
    modes: LAYOUT_MODES,
    section: 'feature',
    field: /^4 GEOMETRY$/,
    reason: 'CHS geometry is for BIOS-era guests; our model does not offer GEOMETRY',
  },
  {
    devices: ['blk'],
    modes: LAYOUT_MODES,
    section: 'config',
    field: /^0x10$/,
    reason: 'geometry (cylinders/heads/sectors): QEMU fills it, our model offers no GEOMETRY so it reads 0',
  },
  {
    devices: ['blk'],
    modes: LAYOUT_MODES,
    section: 'feature',
    field: /^1 SIZE_MAX$/,
    reason: 'our model bounds each data segment (size_max, default 1 MiB) so that one buffer is one bounded copy; QEMU has no such limit',
  },
  {
    devices: ['blk'],
    modes: LAYOUT_MODES,
    section: 'config',
    field: /^0x08$/,
    reason: 'size_max: 1 MiB in our model (SIZE_MAX offered), 0 in QEMU (not offered)',
  },
  {
    devices: ['blk'],
    modes: LAYOUT_MODES,
    section: 'config',
    field: /^0x(38|3c|4[048c]|5[048c])$/,
    reason:
      'QEMU (7.2 and 10.0) ends the config after write_zeroes_may_unmap (57 bytes, then all-ones) and sets may_unmap (its raw file can punch holes); our model presents the whole 96-byte structure (fields of features it does not offer read 0) and never unmaps',
  },
  {
    devices: ['blk'],
    modes: ['legacy'],
    section: 'feature',
    field: /^7 SCSI$/,
    reason: 'legacy SCSI passthrough (VIRTIO_BLK_F_SCSI) is not implemented',
  },
  {
    devices: ['blk'],
    modes: ['legacy'],
    section: 'feature',
    field: /^27 ANY_LAYOUT$/,
    reason:
      'QEMU withholds ANY_LAYOUT from its legacy virtio-blk (whose SCSI passthrough infers lengths from descriptor boundaries) although transitional devices MUST offer it (6.3); our model parses any layout and offers it',
  },
  {
    devices: ['net'],
    modes: LAYOUT_MODES,
    section: 'feature',
    field: /^0 CSUM$/,
    reason:
      'our model completes checksums itself, so it offers CSUM with any backend; QEMU offers it only when its backend carries a vnet header (tap), not with the hub port used here',
  },
  {
    devices: ['net'],
    modes: LAYOUT_MODES,
    section: 'feature',
    field: /^(2 CTRL_GUEST_OFFLOADS|19 CTRL_VLAN)$/,
    reason:
      'our model has no receive offloads for the driver to switch and no VLAN filter (without CTRL_VLAN every VLAN passes, as the spec allows)',
  },
  {
    devices: ['net'],
    modes: ['legacy'],
    section: 'feature',
    field: /^6 GSO$/,
    reason: 'the legacy VIRTIO_NET_F_GSO bit: our model offers no segmentation offload',
  },
  {
    devices: ['net'],
    modes: LAYOUT_MODES,
    section: 'queue',
    field: /^max sizes$/,
    reason: "QEMU's control queue has 64 entries; our model sizes every queue with one knob (queueSize, 256)",
  },
  {
    devices: ['console'],
    modes: LAYOUT_MODES,
    section: 'queue',
    field: /^(count|max sizes)$/,
    reason:
      "QEMU's virtio-serial reserves max_ports = 31 port slots for hot-plug (64 queues, control queues of 32); our model has as many port slots as ports it is built with (1 here: 4 queues, all of queueSize 128)",
  },
  {
    devices: ['console'],
    modes: LAYOUT_MODES,
    section: 'config',
    field: /^0x04$/,
    reason: 'max_nr_ports: 31 in QEMU, the number of ports our model was built with (1 here); see the queue count',
  },
];

/** QEMU's mode properties (shared/QTEST.md). */
const MODE_PROPS: Readonly<Record<VirtioPciMode, string>> = {
  modern: ',disable-legacy=on',
  transitional: '',
  legacy: ',disable-modern=on',
};

/** The blk image both sides get: 1 MiB. */
const DISK_BYTES = 1 << 20;
/** QEMU's default MAC for the first NIC (qemu_macaddr_default_if_unset): 52:54:00:12:34:56. */
const QEMU_DEFAULT_MAC = Uint8Array.of(0x52, 0x54, 0x00, 0x12, 0x34, 0x56);
/** QEMU's (7.2 and 10.0) virtio-rng queue size. */
const QEMU_RNG_QUEUE_SIZE = 8;
/** max_discard_sectors and max_write_zeroes_sectors QEMU (7.2 and 10.0) presents for a raw image (read over qtest). */
const QEMU_BLK_MAX_DISCARD_SECTORS = 0x3f_ffff;
/** The spec's configuration structure size per device type: the bytes the report reads (rng has none). */
const CONFIG_BYTES: ReadonlyMap<number, number> = new Map([
  [VIRTIO_ID_BLOCK, VIRTIO_BLK_CONFIG_SIZE],
  [VIRTIO_ID_NET, VIRTIO_NET_CONFIG_SIZE],
  [VIRTIO_ID_CONSOLE, VIRTIO_CONSOLE_CONFIG_SIZE],
]);
/** More queues than any covered device has (virtio-serial: 2 per port, 31 ports + control). */
const MAX_QUEUES_READ = 128;
/** Where our models sit on the in-process bus; QEMU gets the same slot. */
const SLOT = 4;
const SLOT_BDF = bdf(0, SLOT, 0);

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

/** QEMU's -device (and backend) arguments for `device` in `mode` and `ring` at {@link SLOT}; `dir` holds the blk image. */
async function qemuArgs(device: LayoutDevice, mode: VirtioPciMode, ring: RingOption, dir: string): Promise<string[]> {
  const at = `addr=${hex(SLOT)}${MODE_PROPS[mode]}${ring === 'packed' ? ',packed=on' : ''}`;
  switch (device) {
    case 'rng':
      return ['-device', `virtio-rng-pci,${at}`];
    case 'blk': {
      const image = join(dir, 'layout.img');
      await writeFile(image, new Uint8Array(DISK_BYTES));
      return ['-drive', `if=none,id=d0,file=${image},format=raw`, '-device', `virtio-blk-pci,drive=d0,${at}`];
    }
    case 'net':
      return ['-netdev', 'hubport,id=n0,hubid=0', '-device', `virtio-net-pci,netdev=n0,${at}`];
    case 'console':
      return [
        '-chardev',
        'null,id=c0',
        '-device',
        `virtio-serial-pci,id=s0,${at}`,
        '-device',
        'virtconsole,bus=s0.0,chardev=c0,name=virtio-ts.layout',
      ];
  }
}

/**
 * Our device model of `device`, with its knobs set as QEMU's defaults (as a QEMU user sets
 * properties): rng queue size 8, blk topology all zero and discard/write-zeroes limits of QEMU's
 * raw file, net the first NIC's MAC. What no knob covers shows up in the diff.
 */
export function ourDevice(device: LayoutDevice): VirtioDevice {
  switch (device) {
    case 'rng':
      return new RngDevice({ queueSize: QEMU_RNG_QUEUE_SIZE });
    case 'blk':
      return new BlkDevice({
        backend: new MemoryBlockBackend(DISK_BYTES),
        topology: { physicalBlockExp: 0, alignmentOffset: 0, minIoSize: 0, optIoSize: 0 },
        maxDiscardSectors: QEMU_BLK_MAX_DISCARD_SECTORS,
        maxDiscardSeg: 1,
      });
    case 'net':
      return new VirtioNetDevice({ backend: createMemoryNetPair()[0], mac: QEMU_DEFAULT_MAC });
    case 'console':
      return new VirtioConsoleDevice({ ports: [{ console: true, name: 'virtio-ts.layout' }], multiport: true });
  }
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

/** The accepted difference covering a row, if any. */
function acceptedReason(device: LayoutDevice, mode: VirtioPciMode, section: string, field: string): string | undefined {
  return ACCEPTED_DIFFERENCES.find(
    (a) => a.devices.includes(device) && a.modes.includes(mode) && a.section === section && a.field.test(field),
  )?.reason;
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
