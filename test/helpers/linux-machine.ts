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
import type { DeviceHost } from '../../src/pci/function.js';
import { LinuxGuest, type LinuxGuestOptions } from '../../src/platform/v86/linux-guest.js';
import type { GuestResult } from '../../src/platform/v86/guest-protocol.js';
export { guestFeatures } from '../../src/platform/v86/guest-protocol.js';
import { VirtioPciFunction, type VirtioPciFunctionOptions, type VirtioPciMode } from '../../src/transport/pci/virtio-pci-function.js';
import { NetResponder } from './net-responder.js';
import { ProbeFunction } from './probe-function.js';

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

type VirtioName = Exclude<keyof typeof SLOT, 'probe'>;

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

/**
 * Boot the machine with `devices`; `functions` applies to every virtio function (e.g. `packed: true`,
 * which Linux takes on the modern interface: it negotiates the packed ring whenever offered).
 */
export async function bootTestMachine(
  devices: MachineDevices = {},
  options: Omit<LinuxGuestOptions, 'devices'> = {},
  functions: Pick<VirtioPciFunctionOptions, 'packed'> = {},
): Promise<TestMachine> {
  let probe: ProbeFunction | undefined;
  const fns: Partial<Record<VirtioName, VirtioPciFunction>> = {};
  const names = Object.keys(MODES) as VirtioName[];
  const guest = await LinuxGuest.boot({
    ...options,
    devices: [
      { name: 'probe', devfn: SLOT.probe, create: (host: DeviceHost) => (probe = new ProbeFunction(host)) },
      ...names.map((name) => ({
        name,
        devfn: SLOT[name],
        create: (host: DeviceHost) =>
          (fns[name] = new VirtioPciFunction(devices[name] ?? defaultDevice(name), host, { ...functions, mode: MODES[name] })),
      })),
    ],
  });
  return { guest, probe: probe!, fns: fns as Record<VirtioName, VirtioPciFunction> };
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
