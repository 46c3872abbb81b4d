/**
 * The probe: the one decision the project rests on (shared/DESIGN.md "The decision"). A driver looks
 * at a virtio PCI function once and commits to exactly one interface:
 *
 * - a usable VIRTIO_PCI_CAP_COMMON_CFG capability means the modern transport, through capabilities
 *   only (and then NOTIFY_CFG and ISR_CFG must be usable too: their absence is an error, not a
 *   reason to fall back);
 * - otherwise a transitional device ID (0x1000..0x103f, revision 0) with an I/O BAR0 means the
 *   legacy transport, through BAR0 only;
 * - otherwise a ProbeError naming what was missing.
 *
 * Capabilities are chosen and checked as Linux's virtio_pci_modern_dev.c does: for each cfg_type the
 * first capability naming an implemented BAR (0..5) wins, others with reserved or absent BARs are
 * ignored (spec 4.1.4.1: the driver MUST ignore a reserved bar value), and the winner must then fit
 * its BAR with the spec's minimum length and alignment, or the probe fails. Unknown capability IDs
 * and cfg_types are skipped. The decision reads configuration space only, never a BAR.
 *
 * Shared memory capabilities (4.1.4.7) and vendor data capabilities (4.1.4.8) never change the
 * decision: a modern probe validates and exposes the regions by id (shared-memory-driver.ts), and
 * every probe reports the vendor data it found (vendor-cfg-driver.ts).
 */

import { ProbeError } from '../../errors.js';
import { assignBars, type PciBar } from '../../bus/bars.js';
import { readMsixCapability, walkCapabilities, type MsixCapability } from '../../bus/capabilities.js';
import { readConfigSpace, type ConfigSpaceSnapshot } from '../../bus/config-space-reader.js';
import type { Bdf, PciBus } from '../../bus/pci-bus.js';
import {
  deviceTypeOfTransitionalId,
  VIRTIO_PCI_DEVICE_ID_MAX,
  VIRTIO_PCI_DEVICE_ID_MIN,
  VIRTIO_PCI_MODERN_DEVICE_ID_BASE,
  VIRTIO_PCI_TRANSITIONAL_ID_MAX,
  VIRTIO_PCI_TRANSITIONAL_ID_MIN,
  VIRTIO_PCI_VENDOR_ID,
} from '../../spec/ids.js';
import { PCI_CAP_ID_MSIX, PCI_CAP_ID_VNDR, PCI_CONFIG_SPACE_SIZE, PCI_MSIX_CAP_SIZE } from '../../spec/pci.js';
import {
  VIRTIO_PCI_CAP_BAR,
  VIRTIO_PCI_CAP_BAR_MAX,
  VIRTIO_PCI_CAP_CFG_TYPE,
  VIRTIO_PCI_CAP_COMMON_CFG,
  VIRTIO_PCI_CAP_DEVICE_CFG,
  VIRTIO_PCI_CAP_ID,
  VIRTIO_PCI_CAP_ISR_CFG,
  VIRTIO_PCI_CAP_LEN,
  VIRTIO_PCI_CAP_LENGTH,
  VIRTIO_PCI_CAP_NAMES,
  VIRTIO_PCI_CAP_NOTIFY_CFG,
  VIRTIO_PCI_CAP_OFFSET,
  VIRTIO_PCI_CAP_SHARED_MEMORY_CFG,
  VIRTIO_PCI_CAP_SIZE,
  VIRTIO_PCI_CAP_VENDOR_CFG,
  VIRTIO_PCI_CONFIG_OFF_MSIX,
  VIRTIO_PCI_CONFIG_OFF_NO_MSIX,
  VIRTIO_PCI_NOTIFY_CAP_MULT,
  VIRTIO_PCI_NOTIFY_CAP_SIZE,
} from '../../spec/virtio-pci.js';
import { VIRTIO_PCI_CAP_RULES, VIRTIO_PCI_LEGACY_REVISION } from '../../spec/virtio-pci-probe.js';
import { sharedMemoryRegions, type SharedMemoryCap } from './shared-memory-driver.js';
import { readVendorData, type VendorDataCap } from './vendor-cfg-driver.js';

/** A virtio vendor capability (struct virtio_pci_cap, spec 4.1.4) as read from config space. */
export interface VirtioCap {
  /** Where the capability itself sits in configuration space. */
  readonly capOffset: number;
  readonly capLen: number;
  readonly cfgType: number;
  readonly bar: number;
  readonly id: number;
  /** Offset of the structure within the BAR. */
  readonly offset: number;
  /** Length of the structure in bytes. */
  readonly length: number;
  /** notify_off_multiplier of a NOTIFY_CFG capability (4.1.4.4), when cap_len holds it. */
  readonly notifyOffMultiplier: number | undefined;
}

/** A validated structure and the bus address it starts at (BAR base + offset). */
export interface VirtioStructure extends VirtioCap {
  readonly address: number;
  /**
   * 'io' when the structure is in an I/O BAR (spec 4.1.4.1 allows memory or I/O; Linux's
   * vp_modern_probe takes both, and v86's devices use I/O BARs); absent or 'memory' otherwise.
   */
  readonly space?: 'memory' | 'io';
}

/** Where the modern transport's structures are. */
export interface ModernLayout {
  readonly common: VirtioStructure;
  readonly notify: VirtioStructure & { readonly notifyOffMultiplier: number };
  readonly isr: VirtioStructure;
  /** Absent for device types without device-specific configuration. */
  readonly device: VirtioStructure | undefined;
}

interface ProbeFacts {
  readonly deviceId: number;
  readonly revision: number;
  /** Virtio device type (spec 5), e.g. VIRTIO_ID_BLOCK. */
  readonly deviceType: number;
  /** The decision in words, for people: "modern: common-cfg cap at 0x40 (BAR4+0x0), ...". */
  readonly explanation: string;
  /** Capabilities skipped or ignored on the way, each with its reason. */
  readonly notes: readonly string[];
  /** The MSI-X capability, when the function has one (used by interrupt set-up). */
  readonly msix: MsixCapability | undefined;
  readonly bars: readonly PciBar[];
  /** Vendor data capabilities (4.1.4.8) in list order, for reporting; they decide nothing. */
  readonly vendorData: readonly VendorDataCap[];
}

export interface ModernProbe extends ProbeFacts {
  readonly kind: 'modern';
  readonly layout: ModernLayout;
  /** Shared memory regions (4.1.4.7) by shmid, validated; empty when the device has none. */
  readonly sharedMemory: ReadonlyMap<number, SharedMemoryCap>;
}

export interface LegacyProbe extends ProbeFacts {
  readonly kind: 'legacy';
  /** The legacy header's I/O BAR. */
  readonly bar0: PciBar;
  /** Chosen because of forceLegacy although a usable common-cfg capability may exist. */
  readonly forced: boolean;
}

export type ProbeResult = ModernProbe | LegacyProbe;

export interface ProbeOptions {
  /** Use the legacy interface of a transitional device even when it has capabilities (Linux's virtio_pci.force_legacy). */
  readonly forceLegacy?: boolean;
}

const hex = (n: number): string => `0x${n.toString(16)}`;

function capName(cfgType: number): string {
  return VIRTIO_PCI_CAP_NAMES.get(cfgType) ?? `cfg_type ${cfgType}`;
}

/** Read the virtio capability at `capOffset` (fields beyond cap_len are not read). */
export function readVirtioCap(cfg: ConfigSpaceSnapshot, capOffset: number): VirtioCap {
  const capLen = cfg.read8(capOffset + VIRTIO_PCI_CAP_LEN);
  const cfgType = cfg.read8(capOffset + VIRTIO_PCI_CAP_CFG_TYPE);
  return {
    capOffset,
    capLen,
    cfgType,
    bar: cfg.read8(capOffset + VIRTIO_PCI_CAP_BAR),
    id: cfg.read8(capOffset + VIRTIO_PCI_CAP_ID),
    offset: cfg.read32(capOffset + VIRTIO_PCI_CAP_OFFSET),
    length: cfg.read32(capOffset + VIRTIO_PCI_CAP_LENGTH),
    notifyOffMultiplier:
      cfgType === VIRTIO_PCI_CAP_NOTIFY_CFG && capLen >= VIRTIO_PCI_NOTIFY_CAP_SIZE
        ? cfg.read32(capOffset + VIRTIO_PCI_NOTIFY_CAP_MULT)
        : undefined,
  };
}

/** "common-cfg cap at 0x40 (BAR4+0x0)". */
export function describeCap(cap: VirtioCap): string {
  const mult = cap.notifyOffMultiplier !== undefined ? `, multiplier ${cap.notifyOffMultiplier}` : '';
  return `${capName(cap.cfgType)} cap at ${hex(cap.capOffset)} (BAR${cap.bar}+${hex(cap.offset)}${mult})`;
}

/**
 * The virtio device type of a PCI device ID: 0x1040 + type for modern IDs; for transitional IDs the
 * subsystem device ID (spec 4.1.2.1), or the spec's transitional table when the subsystem ID is 0.
 */
export function virtioDeviceType(deviceId: number, subsystemId: number): number | undefined {
  if (deviceId < VIRTIO_PCI_DEVICE_ID_MIN || deviceId > VIRTIO_PCI_DEVICE_ID_MAX) return undefined;
  if (deviceId >= VIRTIO_PCI_MODERN_DEVICE_ID_BASE) return deviceId - VIRTIO_PCI_MODERN_DEVICE_ID_BASE;
  return subsystemId !== 0 ? subsystemId : deviceTypeOfTransitionalId(deviceId);
}

/** Why this capability cannot be used at all (Linux ignores it and looks further), or undefined. */
function unusableBar(cap: VirtioCap, bars: readonly PciBar[]): string | undefined {
  if (cap.bar > VIRTIO_PCI_CAP_BAR_MAX) return `BAR index ${cap.bar} is reserved`;
  const bar = bars.find((b) => b.index === cap.bar);
  if (bar === undefined) return `BAR${cap.bar} is not implemented`;
  if (bar.base === 0) return `BAR${cap.bar} has no address assigned`;
  return undefined;
}

/** Check a chosen capability against its BAR and the spec's rules; throws ProbeError when it does not fit. */
function validate(cap: VirtioCap, bar: PciBar): VirtioStructure {
  const rules = VIRTIO_PCI_CAP_RULES.get(cap.cfgType)!;
  const fail = (problem: string): never => {
    throw new ProbeError('ERR_PROBE_BAD_CAPABILITY', `${describeCap(cap)}: ${problem}`);
  };
  const minCapLen = cap.cfgType === VIRTIO_PCI_CAP_NOTIFY_CFG ? VIRTIO_PCI_NOTIFY_CAP_SIZE : VIRTIO_PCI_CAP_SIZE;
  if (cap.capLen < minCapLen) fail(`cap_len ${cap.capLen} is shorter than its structure (${minCapLen})`);
  // Fields past the end of configuration space would read as invented zeroes (e.g. a multiplier of 0).
  if (cap.capOffset + cap.capLen > PCI_CONFIG_SPACE_SIZE)
    fail(`cap_len ${cap.capLen} runs past the end of configuration space (${PCI_CONFIG_SPACE_SIZE} bytes)`);
  if (cap.length < rules.minLength) fail(`length ${cap.length} is below the minimum ${rules.minLength}`);
  if (cap.offset % rules.align !== 0) fail(`offset ${hex(cap.offset)} is not ${rules.align}-byte aligned`);
  // offset and length are 32-bit, so their sum is exact in a double: no wrap-around to hide behind.
  if (cap.offset + cap.length > bar.size)
    fail(`[${hex(cap.offset)}, +${hex(cap.length)}) does not fit in BAR${bar.index} (size ${hex(bar.size)})`);
  const mult = cap.notifyOffMultiplier;
  // 4.1.4.4: notify_off_multiplier is 0 or an even power of 2 (queue notify addresses stay 2-byte aligned).
  if (mult !== undefined && mult !== 0 && (mult < 2 || (mult & (mult - 1)) !== 0))
    fail(`notify_off_multiplier ${mult} is neither 0 nor an even power of 2`);
  return { ...cap, address: bar.base + cap.offset, space: bar.kind };
}

/** Whether the function offers a legacy interface (with MSI-X when it has the capability), and if not, why not. */
function legacyInterface(cfg: ConfigSpaceSnapshot, bars: readonly PciBar[], msix: boolean): { bar0: PciBar } | { missing: string } {
  const id = cfg.deviceId;
  if (id < VIRTIO_PCI_TRANSITIONAL_ID_MIN || id > VIRTIO_PCI_TRANSITIONAL_ID_MAX)
    return {
      missing: `device ID ${hex(id)} is not transitional (${hex(VIRTIO_PCI_TRANSITIONAL_ID_MIN)}..${hex(VIRTIO_PCI_TRANSITIONAL_ID_MAX)})`,
    };
  if (cfg.revision !== VIRTIO_PCI_LEGACY_REVISION) return { missing: `revision ${cfg.revision} is not ${VIRTIO_PCI_LEGACY_REVISION}` };
  const bar0 = bars.find((b) => b.index === 0);
  if (bar0 === undefined) return { missing: 'BAR0 is not implemented' };
  if (bar0.kind !== 'io') return { missing: 'BAR0 is not an I/O BAR' };
  // Every legacy register the driver touches must lie inside BAR0 (4.1.4.10), the MSI-X vectors too.
  const header = msix ? VIRTIO_PCI_CONFIG_OFF_MSIX : VIRTIO_PCI_CONFIG_OFF_NO_MSIX;
  if (bar0.size < header)
    return { missing: `BAR0 (${bar0.size} ports) is smaller than the legacy header (${header} bytes${msix ? ' with MSI-X' : ''})` };
  return { bar0 };
}

function describeBar0(bar0: PciBar): string {
  return `BAR0 is I/O (${bar0.size} ports at ${hex(bar0.base)})`;
}

/**
 * Decide how to drive a virtio function from its configuration space and its (sized, assigned)
 * BARs. Pure: no bus access. Throws ProbeError: ERR_PROBE_NOT_VIRTIO, ERR_PROBE_BAD_CAPABILITY (a
 * malformed capability list, or a chosen capability that does not fit), ERR_PROBE_MISSING_CAPABILITY
 * (common-cfg without notify-cfg or isr-cfg), ERR_PROBE_LEGACY_UNAVAILABLE (forceLegacy without a
 * legacy interface), ERR_PROBE_NO_INTERFACE (neither interface).
 */
export function decideTransport(cfg: ConfigSpaceSnapshot, bars: readonly PciBar[], options: ProbeOptions = {}): ProbeResult {
  const { vendorId, deviceId, revision } = cfg;
  const deviceType = vendorId === VIRTIO_PCI_VENDOR_ID ? virtioDeviceType(deviceId, cfg.subsystemId) : undefined;
  if (deviceType === undefined)
    throw new ProbeError(
      'ERR_PROBE_NOT_VIRTIO',
      `${hex(vendorId)}:${hex(deviceId)} is not a virtio PCI function (vendor ${hex(VIRTIO_PCI_VENDOR_ID)}, device ${hex(VIRTIO_PCI_DEVICE_ID_MIN)}..${hex(VIRTIO_PCI_DEVICE_ID_MAX)})`,
    );

  const walk = walkCapabilities(cfg);
  if (walk.error !== undefined) throw new ProbeError('ERR_PROBE_BAD_CAPABILITY', `capability list: ${walk.error}`);

  const notes: string[] = [];
  const chosen = new Map<number, { cap: VirtioCap; bar: PciBar }>();
  const ignored = new Map<number, string[]>();
  let msix: MsixCapability | undefined;
  const shm: { cap: VirtioCap; bar: PciBar }[] = [];
  const vendorData: VendorDataCap[] = [];
  for (const entry of walk.caps) {
    if (entry.id === PCI_CAP_ID_MSIX && msix === undefined) {
      // A truncated capability's table and PBA fields would read as invented zeroes: MSI-X is not used.
      if (entry.offset + PCI_MSIX_CAP_SIZE > PCI_CONFIG_SPACE_SIZE)
        notes.push(`MSI-X cap at ${hex(entry.offset)} ignored: it runs past the end of configuration space`);
      else msix = readMsixCapability(cfg, entry.offset);
    }
    if (entry.id !== PCI_CAP_ID_VNDR) continue;
    const cap = readVirtioCap(cfg, entry.offset);
    if (cap.cfgType === VIRTIO_PCI_CAP_VENDOR_CFG) {
      const vendor = readVendorData(cfg, cap.capOffset);
      if ('unreadable' in vendor) notes.push(`vendor-cfg cap at ${hex(cap.capOffset)} skipped: ${vendor.unreadable}`);
      else vendorData.push(vendor);
      continue;
    }
    if (cap.cfgType === VIRTIO_PCI_CAP_SHARED_MEMORY_CFG) {
      const reason = unusableBar(cap, bars);
      if (reason !== undefined) notes.push(`${describeCap(cap)} ignored: ${reason}`);
      else shm.push({ cap, bar: bars.find((b) => b.index === cap.bar)! });
      continue;
    }
    if (!VIRTIO_PCI_CAP_RULES.has(cap.cfgType)) {
      const known = VIRTIO_PCI_CAP_NAMES.get(cap.cfgType);
      notes.push(
        `${capName(cap.cfgType)} cap at ${hex(cap.capOffset)} skipped (${known !== undefined ? 'not used by this driver' : 'unknown cfg_type'})`,
      );
      continue;
    }
    if (chosen.has(cap.cfgType)) {
      notes.push(`${describeCap(cap)} not used (the first ${capName(cap.cfgType)} wins)`);
      continue;
    }
    const reason = unusableBar(cap, bars);
    if (reason !== undefined) {
      const why = `${describeCap(cap)} ignored: ${reason}`;
      notes.push(why);
      ignored.set(cap.cfgType, [...(ignored.get(cap.cfgType) ?? []), why]);
      continue;
    }
    chosen.set(cap.cfgType, { cap, bar: bars.find((b) => b.index === cap.bar)! });
  }

  const facts = { deviceId, revision, deviceType, notes, msix, bars, vendorData };
  const legacy = legacyInterface(cfg, bars, msix !== undefined);
  const whyNot = (cfgType: number): string => {
    const why = ignored.get(cfgType);
    return why === undefined ? `no ${capName(cfgType)} capability` : `no usable ${capName(cfgType)} capability (${why.join('; ')})`;
  };

  if (options.forceLegacy === true) {
    if ('missing' in legacy) throw new ProbeError('ERR_PROBE_LEGACY_UNAVAILABLE', `forceLegacy: no legacy interface: ${legacy.missing}`);
    return {
      ...facts,
      kind: 'legacy',
      bar0: legacy.bar0,
      forced: true,
      explanation: `legacy (forced): capabilities not used; ${describeBar0(legacy.bar0)}`,
    };
  }

  const common = chosen.get(VIRTIO_PCI_CAP_COMMON_CFG);
  if (common === undefined) {
    if ('bar0' in legacy)
      return {
        ...facts,
        kind: 'legacy',
        bar0: legacy.bar0,
        forced: false,
        explanation: `legacy: ${whyNot(VIRTIO_PCI_CAP_COMMON_CFG)}; ${describeBar0(legacy.bar0)}`,
      };
    throw new ProbeError(
      'ERR_PROBE_NO_INTERFACE',
      `not a usable virtio device: ${whyNot(VIRTIO_PCI_CAP_COMMON_CFG)}, and no legacy interface (${legacy.missing})`,
    );
  }
  const notify = chosen.get(VIRTIO_PCI_CAP_NOTIFY_CFG);
  const isr = chosen.get(VIRTIO_PCI_CAP_ISR_CFG);
  if (notify === undefined || isr === undefined) {
    const missing = [notify, isr].flatMap((c, i) =>
      c === undefined ? [whyNot(i === 0 ? VIRTIO_PCI_CAP_NOTIFY_CFG : VIRTIO_PCI_CAP_ISR_CFG)] : [],
    );
    throw new ProbeError('ERR_PROBE_MISSING_CAPABILITY', `${describeCap(common.cap)} present but ${missing.join(' and ')}`);
  }
  const device = chosen.get(VIRTIO_PCI_CAP_DEVICE_CFG);
  const layout: ModernLayout = {
    common: validate(common.cap, common.bar),
    notify: validate(notify.cap, notify.bar) as VirtioStructure & { notifyOffMultiplier: number },
    isr: validate(isr.cap, isr.bar),
    device: device === undefined ? undefined : validate(device.cap, device.bar),
  };
  const sharedMemory = sharedMemoryRegions(cfg, shm);
  const used = [layout.common, layout.notify, layout.isr, ...(layout.device ? [layout.device] : [])].map(describeCap);
  const legacyNote = 'bar0' in legacy ? '; legacy BAR0 not used' : '';
  return { ...facts, kind: 'modern', layout, sharedMemory, explanation: `modern: ${used.join(', ')}${legacyNote}` };
}

/**
 * Probe function `fn`: assign and enable its BARs (see {@link assignBars}), read its configuration
 * space, and decide. Touches configuration space only.
 */
export async function probe(bus: PciBus, fn: Bdf, options: ProbeOptions = {}): Promise<ProbeResult> {
  const bars = await assignBars(bus, fn);
  const cfg = await readConfigSpace(bus, fn);
  return decideTransport(cfg, bars, options);
}
