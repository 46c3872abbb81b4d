/**
 * What the PCI transport's checks (families pci-*) share: configuration space and the virtio
 * capabilities read straight from it (not through the probe, which refuses what a check must see),
 * register access to a structure in its BAR's space, the common-cfg fields, and MSI-X on and off.
 * Everything goes through the check's bus, so it works as well against QEMU over qtest.
 */

import type { PciBus } from '../bus/pci-bus.js';
import { sizeBars } from '../bus/bars.js';
import { ProbeError } from '../errors.js';
import { walkCapabilities, type MsixCapability } from '../bus/capabilities.js';
import { readConfigSpace, type ConfigSpaceSnapshot } from '../bus/config-space-reader.js';
import type { AccessSize } from '../memory/access-size.js';
import { PCI_CAP_ID_VNDR, PCI_MSIX_FLAGS, PCI_MSIX_FLAGS_ENABLE, PCI_MSIX_FLAGS_MASKALL } from '../spec/pci.js';
import { readVirtioCap, type ModernProbe, type ProbeResult, type VirtioCap, type VirtioStructure } from '../transport/pci/probe.js';
import { VIRTIO_F_VERSION_1 } from '../spec/features.js';
import { VIRTIO_PCI_CAP_COMMON_CFG, VIRTIO_PCI_COMMON_DF, VIRTIO_PCI_COMMON_DFSELECT } from '../spec/virtio-pci.js';
import { VIRTIO_CONFIG_S_ACKNOWLEDGE, VIRTIO_CONFIG_S_DRIVER, VIRTIO_CONFIG_S_FEATURES_OK } from '../spec/status.js';
import type { DriverTransport } from '../transport/pci/driver-transport.js';
import type { CheckContext } from './statement.js';

export const hex = (n: number): string => `0x${n.toString(16)}`;

/** All 256 bytes of the function's configuration space. */
export function configSnapshot(ctx: CheckContext): Promise<ConfigSpaceSnapshot> {
  return readConfigSpace(ctx.bus, ctx.fn);
}

/** Every vendor-specific capability on the list, read as a virtio capability, in list order. */
export function virtioCaps(cfg: ConfigSpaceSnapshot): VirtioCap[] {
  return walkCapabilities(cfg)
    .caps.filter((c) => c.id === PCI_CAP_ID_VNDR)
    .map((c) => readVirtioCap(cfg, c.offset));
}

/** The virtio capabilities of `cfgType`. */
export async function capsOfType(ctx: CheckContext, cfgType: number): Promise<VirtioCap[]> {
  return virtioCaps(await configSnapshot(ctx)).filter((c) => c.cfgType === cfgType);
}

/** `applies` of a check on the modern interface: why it does not apply when the check talks through legacy. */
export async function modernOnly(ctx: CheckContext): Promise<string | undefined> {
  return ctx.via === 'modern'
    ? undefined
    : 'the check talks through the modern interface (capabilities), the function through its legacy one';
}

/** `applies` of a check on the legacy interface. */
export async function legacyOnly(ctx: CheckContext): Promise<string | undefined> {
  return ctx.via === 'legacy'
    ? undefined
    : 'the check is about the legacy interface, which the function does not offer or the check does not use';
}

/** The probe's modern result; the check fails when the probe chose legacy although the check talks modern. */
export async function modernProbe(ctx: CheckContext): Promise<ModernProbe> {
  const result = await ctx.probe();
  ctx.require(result.kind === 'modern', `the probe found no usable modern interface (${result.explanation})`);
  return result;
}

/** Register access inside one structure, in the space (memory or I/O) of its BAR. */
export interface Registers {
  read(offset: number, size: AccessSize): Promise<number>;
  write(offset: number, size: AccessSize, value: number): Promise<void>;
}

export function registers(bus: PciBus, s: Pick<VirtioStructure, 'address' | 'space'>): Registers {
  const io = s.space === 'io';
  return {
    read: (offset, size) => (io ? bus.ioRead(s.address + offset, size) : bus.memRead(s.address + offset, size)),
    write: (offset, size, value) => (io ? bus.ioWrite(s.address + offset, size, value) : bus.memWrite(s.address + offset, size, value)),
  };
}

/**
 * The common configuration structure's registers (modern interface). When the probe refuses the
 * function (often for the very structure a check is about, e.g. a misaligned notify capability),
 * the first common-cfg capability naming an assigned BAR is taken as it stands.
 */
export async function commonCfg(ctx: CheckContext): Promise<Registers> {
  try {
    const result = await ctx.probe();
    if (result.kind === 'modern') return registers(ctx.bus, result.layout.common);
  } catch (error) {
    if (!(error instanceof ProbeError)) throw error;
  }
  const bars = await sizeBars(ctx.bus, ctx.fn);
  const caps = await capsOfType(ctx, VIRTIO_PCI_CAP_COMMON_CFG);
  const found = caps.flatMap((cap) => bars.filter((b) => b.index === cap.bar && b.base !== 0).map((bar) => ({ cap, bar })))[0];
  ctx.require(found !== undefined, 'no common-cfg capability naming an assigned BAR');
  return registers(ctx.bus, { address: found.bar.base + found.cap.offset, space: found.bar.kind });
}

/** device_feature at window `select` (modern). */
export async function deviceFeatureWindow(common: Registers, select: number): Promise<number> {
  await common.write(VIRTIO_PCI_COMMON_DFSELECT, 4, select);
  return (await common.read(VIRTIO_PCI_COMMON_DF, 4)) >>> 0;
}

/** Whether the device offers feature `bit` through the modern interface. */
export async function offersFeature(ctx: CheckContext, bit: number): Promise<boolean> {
  const word = await deviceFeatureWindow(await commonCfg(ctx), bit >> 5);
  return (word & (1 << (bit & 31))) !== 0;
}

/** The legacy header in BAR0 (legacy interface). */
export async function legacyHeader(ctx: CheckContext): Promise<Registers> {
  const result = await ctx.probe();
  ctx.require(result.kind === 'legacy', `the probe found no legacy interface (${result.explanation})`);
  return registers(ctx.bus, { address: result.bar0.base, space: 'io' });
}

const transports = new WeakMap<CheckContext, Promise<DriverTransport>>();

/**
 * The check's one transport: the legacy one keeps state (whether MSI-X is on moves the device
 * configuration and enables the vector registers), so every helper of a check must share it.
 */
export function transportOf(ctx: CheckContext): Promise<DriverTransport> {
  let t = transports.get(ctx);
  if (t === undefined) {
    t = ctx.transport();
    transports.set(ctx, t);
  }
  return t;
}

/** Reset through the check's interface, then ACKNOWLEDGE and DRIVER (3.1.1 steps 1-3). */
export async function resetToDriver(ctx: CheckContext): Promise<void> {
  const t = await transportOf(ctx);
  await t.reset();
  await t.setStatus(VIRTIO_CONFIG_S_ACKNOWLEDGE);
  await t.setStatus(VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
}

/**
 * After {@link resetToDriver}: offer `features` (VERSION_1 always on the modern interface) and set
 * FEATURES_OK; whether the device kept FEATURES_OK (legacy: always, it has no such step).
 */
export async function featuresOk(ctx: CheckContext, features = 0n): Promise<boolean> {
  await resetToDriver(ctx);
  const t = await transportOf(ctx);
  if (t.kind === 'legacy') {
    await t.setDriverFeatures(features);
    return true;
  }
  await t.setDriverFeatures(features | (1n << BigInt(VIRTIO_F_VERSION_1)));
  const status = await t.getStatus();
  await t.setStatus(status | VIRTIO_CONFIG_S_FEATURES_OK);
  return ((await t.getStatus()) & VIRTIO_CONFIG_S_FEATURES_OK) !== 0;
}

/** The MSI-X capability, or why a check on MSI-X does not apply. */
export async function msixOf(ctx: CheckContext): Promise<MsixCapability | string> {
  const result: ProbeResult = await ctx.probe();
  return result.msix ?? 'the function has no MSI-X capability';
}

/**
 * Turn MSI-X on (function-masked unless `deliver`, so that nothing is sent) and tell the transport
 * (the legacy header grows the vector registers); returns how to turn it off again.
 */
export async function enableMsix(ctx: CheckContext, msix: MsixCapability, deliver = false): Promise<() => Promise<void>> {
  const at = msix.offset + PCI_MSIX_FLAGS;
  const control = await ctx.bus.configRead(ctx.fn, at, 2);
  const on = (control | PCI_MSIX_FLAGS_ENABLE) & ~(deliver ? PCI_MSIX_FLAGS_MASKALL : 0);
  await ctx.bus.configWrite(ctx.fn, at, 2, deliver ? on : on | PCI_MSIX_FLAGS_MASKALL);
  const t = await transportOf(ctx);
  t.msixChanged(true);
  return async () => {
    await ctx.bus.configWrite(ctx.fn, at, 2, control & ~(PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL));
    t.msixChanged(false);
  };
}

/** A short pause, for what a device does asynchronously (interrupt delivery over a remote bus). */
export function settle(ms = 50): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
