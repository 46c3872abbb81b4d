/**
 * An `lspci -vv` style decode of a function's configuration space: header, BARs and capabilities,
 * with virtio vendor capabilities shown by cfg_type name, BAR, offset, length and notify multiplier
 * (shared memory regions with their 64-bit offset, length and id; vendor data by vendor_id and bytes),
 * MSI-X decoded, and anything else named as unknown. Works on hostile images: the capability walk is
 * the bounded one the probe uses, and a broken list is shown, not thrown.
 */

import { formatBdf, type Bdf } from '../bus/pci-bus.js';
import {
  PCI_CAP_ID_EXP,
  PCI_CAP_ID_MSI,
  PCI_CAP_ID_MSIX,
  PCI_CAP_ID_PM,
  PCI_CAP_ID_VNDR,
  PCI_CLASS_COMMUNICATION_OTHER,
  PCI_CLASS_NETWORK_ETHERNET,
  PCI_CLASS_STORAGE_SCSI,
  PCI_COMMAND_INTX_DISABLE,
  PCI_COMMAND_IO,
  PCI_COMMAND_MASTER,
  PCI_COMMAND_MEMORY,
  PCI_STATUS_CAP_LIST,
  PCI_STATUS_INTERRUPT,
} from '../spec/pci.js';
import {
  VIRTIO_PCI_CAP64_SIZE,
  VIRTIO_PCI_CAP_NAMES,
  VIRTIO_PCI_CAP_SHARED_MEMORY_CFG,
  VIRTIO_PCI_CAP_VENDOR_CFG,
} from '../spec/virtio-pci.js';
import { readVirtioCap, type VirtioCap } from '../transport/pci/probe.js';
import { readCap64 } from '../transport/pci/shared-memory-driver.js';
import { readVendorData } from '../transport/pci/vendor-cfg-driver.js';
import type { PciBar } from '../bus/bars.js';
import { readMsixCapability, walkCapabilities } from '../bus/capabilities.js';
import type { ConfigSpaceSnapshot } from '../bus/config-space-reader.js';

/** lspci's names for the (base, sub) classes virtio devices use. */
const SUBCLASS_NAMES: ReadonlyMap<number, string> = new Map([
  [PCI_CLASS_NETWORK_ETHERNET >>> 8, 'Ethernet controller'],
  [PCI_CLASS_STORAGE_SCSI >>> 8, 'SCSI storage controller'],
  [PCI_CLASS_COMMUNICATION_OTHER >>> 8, 'Communication controller'],
]);
/** lspci's names for base classes (PCI Code and ID Assignment), used when the subclass has none. */
const BASE_CLASS_NAMES: ReadonlyMap<number, string> = new Map([
  [0x00, 'Unclassified device'],
  [0x01, 'Mass storage controller'],
  [0x02, 'Network controller'],
  [0x07, 'Communication controller'],
  [0xff, 'Unassigned class'],
]);

const CAP_NAMES: ReadonlyMap<number, string> = new Map([
  [PCI_CAP_ID_PM, 'Power Management'],
  [PCI_CAP_ID_MSI, 'MSI'],
  [PCI_CAP_ID_EXP, 'Express'],
]);

const hex = (n: number, width: number): string => (n >>> 0).toString(16).padStart(width, '0');
const flag = (on: boolean): string => (on ? '+' : '-');

/** "16K", "4M", "32" as lspci prints sizes. */
function formatSize(size: number): string {
  for (const [unit, scale] of [
    ['G', 2 ** 30],
    ['M', 2 ** 20],
    ['K', 2 ** 10],
  ] as const)
    if (size >= scale && size % scale === 0) return `${size / scale}${unit}`;
  return String(size);
}

function formatBar(bar: PciBar): string {
  const size = `[size=${formatSize(bar.size)}]`;
  if (bar.kind === 'io') return `Region ${bar.index}: I/O ports at ${hex(bar.base, 4)} ${size}`;
  const base = bar.base < 2 ** 32 ? hex(bar.base, 8) : bar.base.toString(16);
  return `Region ${bar.index}: Memory at ${base} (${bar.is64 ? '64' : '32'}-bit, ${bar.prefetchable ? 'prefetchable' : 'non-prefetchable'}) ${size}`;
}

/** The detail line of a virtio capability: where its structure is, or a vendor data capability's contents. */
function virtioCapDetail(cfg: ConfigSpaceSnapshot, cap: VirtioCap): string {
  if (cap.cfgType === VIRTIO_PCI_CAP_VENDOR_CFG) {
    const vendor = readVendorData(cfg, cap.capOffset);
    if ('unreadable' in vendor) return `<unreadable: ${vendor.unreadable}>`;
    const data = [...vendor.data].map((b) => hex(b, 2)).join(' ');
    const problems = vendor.problems.map((p) => ` <${p}>`).join('');
    return `vendor=${hex(vendor.vendorId, 4)} len=${vendor.capLen} data=[${data}]${problems}`;
  }
  if (cap.cfgType === VIRTIO_PCI_CAP_SHARED_MEMORY_CFG) {
    if (cap.capLen < VIRTIO_PCI_CAP64_SIZE) return `BAR=${cap.bar} id=${cap.id} <cap_len ${cap.capLen} too short for virtio_pci_cap64>`;
    const { offset, length } = readCap64(cfg, cap);
    return `BAR=${cap.bar} offset=${offset.toString(16).padStart(16, '0')} size=${length.toString(16).padStart(16, '0')} id=${cap.id}`;
  }
  const mult = cap.notifyOffMultiplier !== undefined ? ` multiplier=${hex(cap.notifyOffMultiplier, 8)}` : '';
  return `BAR=${cap.bar} offset=${hex(cap.offset, 8)} size=${hex(cap.length, 8)}${mult}`;
}

function capabilityLines(cfg: ConfigSpaceSnapshot, offset: number, id: number): string[] {
  const head = `Capabilities: [${hex(offset, 2)}]`;
  if (id === PCI_CAP_ID_VNDR) {
    const cap = readVirtioCap(cfg, offset);
    const name = VIRTIO_PCI_CAP_NAMES.get(cap.cfgType) ?? `<unknown cfg_type ${cap.cfgType}>`;
    return [`${head} Vendor Specific Information: VirtIO: ${name}`, `\t${virtioCapDetail(cfg, cap)}`];
  }
  if (id === PCI_CAP_ID_MSIX) {
    const m = readMsixCapability(cfg, offset);
    return [
      `${head} MSI-X: Enable${flag(m.enabled)} Count=${m.tableSize} Masked${flag(m.functionMasked)}`,
      `\tVector table: BAR=${m.tableBar} offset=${hex(m.tableOffset, 8)}`,
      `\tPBA: BAR=${m.pbaBar} offset=${hex(m.pbaOffset, 8)}`,
    ];
  }
  return [`${head} ${CAP_NAMES.get(id) ?? `Unknown capability ID 0x${hex(id, 2)}`}`];
}

/**
 * Decode `cfg` of function `fn` as lspci -vv would. `bars` (from sizeBars/assignBars) supplies the
 * region sizes that configuration space alone does not show.
 */
export function formatLspci(fn: Bdf, cfg: ConfigSpaceSnapshot, bars: readonly PciBar[]): string {
  const cls = cfg.classCode;
  const className = SUBCLASS_NAMES.get(cls >>> 8) ?? BASE_CLASS_NAMES.get(cls >>> 16) ?? 'Class';
  const lines = [
    `${formatBdf(fn)} ${className} [${hex(cls >>> 8, 4)}]: Device [${hex(cfg.vendorId, 4)}:${hex(cfg.deviceId, 4)}] (rev ${hex(cfg.revision, 2)})`,
    `\tSubsystem: Device [${hex(cfg.subsystemVendorId, 4)}:${hex(cfg.subsystemId, 4)}]`,
  ];
  const cmd = cfg.command;
  lines.push(
    `\tControl: I/O${flag((cmd & PCI_COMMAND_IO) !== 0)} Mem${flag((cmd & PCI_COMMAND_MEMORY) !== 0)} BusMaster${flag((cmd & PCI_COMMAND_MASTER) !== 0)} DisINTx${flag((cmd & PCI_COMMAND_INTX_DISABLE) !== 0)}`,
  );
  lines.push(`\tStatus: Cap${flag((cfg.status & PCI_STATUS_CAP_LIST) !== 0)} INTx${flag((cfg.status & PCI_STATUS_INTERRUPT) !== 0)}`);
  if (cfg.interruptPin !== 0)
    lines.push(`\tInterrupt: pin ${String.fromCharCode(0x40 + Math.min(cfg.interruptPin, 26))} routed to IRQ ${cfg.interruptLine}`);
  for (const bar of [...bars].sort((a, b) => a.index - b.index)) lines.push(`\t${formatBar(bar)}`);
  const walk = walkCapabilities(cfg);
  for (const cap of walk.caps) for (const line of capabilityLines(cfg, cap.offset, cap.id)) lines.push(`\t${line}`);
  if (walk.error !== undefined) lines.push(`\tCapabilities: <broken list: ${walk.error}>`);
  return lines.join('\n');
}
