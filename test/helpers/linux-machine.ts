/**
 * The one machine every Linux guest test boots: the probe function, modern virtio-rng, -blk,
 * -console and -net, and transitional virtio-rng and -blk, at fixed slots. Each test brings its own
 * device models (backends, entropy, streams), but the PCI view the kernel enumerates is always the
 * same, so one saved state (taken at /init's VT-READY by the first test to boot) serves every test.
 */

import { BlkDevice } from '../../src/device/blk/blk-device.js';
import { MemoryBlockBackend } from '../../src/device/blk/memory-backend.js';
import { VirtioConsoleDevice } from '../../src/device/console/console-device.js';
import { VirtioNetDevice } from '../../src/device/net/net-device.js';
import { RngDevice } from '../../src/device/rng/rng-device.js';
import type { VirtioDevice } from '../../src/core/virtio-device.js';
import { DriverAudit } from '../../src/core/driver-audit.js';
import type { DeviceHost } from '../../src/pci/function.js';
import { LinuxGuest, type LinuxGuestOptions } from '../../src/platform/v86/linux-guest.js';
import type { GuestResult } from '../../src/platform/v86/guest-protocol.js';
import { guestFeatures } from '../../src/platform/v86/guest-protocol.js';
export { guestFeatures } from '../../src/platform/v86/guest-protocol.js';
import { VirtioPciFunction, type VirtioPciMode } from '../../src/transport/pci/virtio-pci-function.js';
import { NetResponder } from './net-responder.js';
import { ProbeFunction } from './probe-function.js';
import { offering, type RingName } from './ring-formats.js';
import { hasFeature, VIRTIO_F_RING_PACKED } from '../../src/spec/features.js';

/** devfn of each function on bus 0 (slot 18 is v86's VGA). */
export const SLOT = {
  probe: 13 << 3,
  rng: 14 << 3,
  blk: 15 << 3,
  console: 16 << 3,
  net: 17 << 3,
  rngTransitional: 19 << 3,
  blkTransitional: 20 << 3,
} as const;

export type VirtioName = Exclude<keyof typeof SLOT, 'probe'>;

/** "0000:00:0d.0" for a devfn on bus 0, as sysfs names the function. */
export function pciName(devfn: number): string {
  return `0000:00:${(devfn >> 3).toString(16).padStart(2, '0')}.${devfn & 7}`;
}

/** Device models for the machine's virtio functions; the ones left out get idle defaults. */
export type MachineDevices = Partial<Record<VirtioName, VirtioDevice>>;

export interface TestMachine {
  readonly guest: LinuxGuest;
  readonly probe: ProbeFunction;
  readonly fns: Readonly<Record<VirtioName, VirtioPciFunction>>;
  /** Each virtio function's driver audit, with `audit: true` (empty otherwise). */
  readonly audits: Readonly<Partial<Record<VirtioName, DriverAudit>>>;
}

const MODES: Record<VirtioName, VirtioPciMode> = {
  rng: 'modern',
  blk: 'modern',
  console: 'modern',
  net: 'modern',
  rngTransitional: 'transitional',
  blkTransitional: 'transitional',
};

function defaultDevice(name: VirtioName): VirtioDevice {
  switch (name) {
    case 'rng':
    case 'rngTransitional':
      return new RngDevice();
    case 'blk':
    case 'blkTransitional':
      return new BlkDevice({ backend: new MemoryBlockBackend(1 << 20) });
    case 'console':
      return new VirtioConsoleDevice();
    case 'net':
      return new VirtioNetDevice({ backend: new NetResponder('10.0.2.2', Uint8Array.of(2, 0, 0, 0, 0, 2)) });
  }
}

export interface TestMachineOptions extends Omit<LinuxGuestOptions, 'devices'> {
  /**
   * The ring format Linux is to negotiate with every virtio function: 'packed' makes each offer
   * VIRTIO_F_RING_PACKED, which Linux takes whenever offered on the modern interface (default 'split').
   * Offers are read when the modules load, after VT-READY: both formats share one saved state.
   */
  readonly ring?: RingName;
  /** Every virtio function in audit mode (core/driver-audit.ts): what Linux's drivers break is recorded. */
  readonly audit?: boolean;
}

export async function bootTestMachine(devices: MachineDevices = {}, options: TestMachineOptions = {}): Promise<TestMachine> {
  const { ring = 'split', audit = false, ...guestOptions } = options;
  let probe: ProbeFunction | undefined;
  const fns: Partial<Record<VirtioName, VirtioPciFunction>> = {};
  const names = Object.keys(MODES) as VirtioName[];
  const audits: Partial<Record<VirtioName, DriverAudit>> = {};
  if (audit) for (const name of names) audits[name] = new DriverAudit();
  const guest = await LinuxGuest.boot({
    ...guestOptions,
    devices: [
      { name: 'probe', devfn: SLOT.probe, create: (host: DeviceHost) => (probe = new ProbeFunction(host)) },
      ...names.map((name) => ({
        name,
        devfn: SLOT[name],
        create: (host: DeviceHost) =>
          (fns[name] = new VirtioPciFunction(devices[name] ?? defaultDevice(name), host, {
            mode: MODES[name],
            ...offering(ring),
            ...(audits[name] === undefined ? {} : { audit: audits[name] }),
          })),
      })),
    ],
  });
  // Before /init the devices saw only the firmware (SeaBIOS drives virtio-blk on a cold boot; a
  // restored state has none of it): the audits are of Linux's drivers, which load after this.
  for (const a of Object.values(audits)) a.clear();
  return { guest, probe: probe!, fns: fns as Record<VirtioName, VirtioPciFunction>, audits };
}

/** The single result of `kind` whose fields match `where`; fails the test when there is none. */
export function resultOf(results: readonly GuestResult[], kind: string, where: Readonly<Record<string, string>> = {}): GuestResult {
  const found = results.filter((r) => r.kind === kind && Object.entries(where).every(([k, v]) => r.fields[k] === v));
  if (found.length !== 1) {
    throw new Error(
      `expected one "${kind}" result matching ${JSON.stringify(where)}, got ${found.length}:\n${results.map((r) => `${r.kind} ${r.text}`).join('\n')}`,
    );
  }
  return found[0]!;
}

/**
 * The ring format Linux negotiated with `fn`, read on both sides: bit 34 (VIRTIO_F_RING_PACKED) of the
 * guest's features string and of what the device accepted. Throws when the two disagree.
 */
export function negotiatedRing(virtio: GuestResult, fn: VirtioPciFunction): RingName {
  const guest = hasFeature(guestFeatures(virtio), VIRTIO_F_RING_PACKED);
  const device = hasFeature(fn.core.negotiatedFeatures, VIRTIO_F_RING_PACKED);
  if (guest !== device) throw new Error(`RING_PACKED: the guest says ${guest}, the device accepted ${device}`);
  return guest ? 'packed' : 'split';
}
