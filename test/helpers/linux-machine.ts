/**
 * The one machine every Linux guest test boots: the probe function, virtio-rng and virtio-blk at
 * fixed slots. Each test brings its own device models (backends, entropy), but the PCI view the
 * kernel enumerates is always the same, so one saved state (taken at /init's VT-READY by the first
 * test to boot) serves every test after it.
 */

import { BlkDevice } from '../../src/device/blk/blk-device.js';
import { MemoryBlockBackend } from '../../src/device/blk/memory-backend.js';
import { RngDevice } from '../../src/device/rng/rng-device.js';
import type { VirtioDevice } from '../../src/device/virtio-device.js';
import type { DeviceHost } from '../../src/pci/function.js';
import { LinuxGuest, type LinuxGuestOptions } from '../../src/platform/v86/linux-guest.js';
import type { GuestResult } from '../../src/platform/v86/guest-protocol.js';
import { VirtioPciFunction } from '../../src/transport/pci/virtio-pci-function.js';
import { ProbeFunction } from './probe-function.js';

/** devfn of each function (slots 13, 14, 15 on bus 0). */
export const SLOT = { probe: 13 << 3, rng: 14 << 3, blk: 15 << 3 } as const;

/** "0000:00:0d.0" for a devfn on bus 0, as sysfs names the function. */
export function pciName(devfn: number): string {
  return `0000:00:${(devfn >> 3).toString(16).padStart(2, '0')}.${devfn & 7}`;
}

export interface MachineDevices {
  readonly rng?: RngDevice;
  readonly blk?: BlkDevice;
}

export interface TestMachine {
  readonly guest: LinuxGuest;
  readonly probe: ProbeFunction;
  readonly rng: VirtioPciFunction;
  readonly blk: VirtioPciFunction;
}

export async function bootTestMachine(devices: MachineDevices = {}, options: Omit<LinuxGuestOptions, 'devices'> = {}): Promise<TestMachine> {
  let probe: ProbeFunction | undefined;
  const fns = new Map<string, VirtioPciFunction>();
  const virtio = (name: string, device: VirtioDevice) => ({
    name,
    devfn: SLOT[name as keyof typeof SLOT],
    create: (host: DeviceHost) => {
      const fn = new VirtioPciFunction(device, host);
      fns.set(name, fn);
      return fn;
    },
  });
  const guest = await LinuxGuest.boot({
    ...options,
    devices: [
      { name: 'probe', devfn: SLOT.probe, create: (host) => (probe = new ProbeFunction(host)) },
      virtio('rng', devices.rng ?? new RngDevice()),
      virtio('blk', devices.blk ?? new BlkDevice({ backend: new MemoryBlockBackend(1 << 20) })),
    ],
  });
  return { guest, probe: probe!, rng: fns.get('rng')!, blk: fns.get('blk')! };
}

/** The single result of `kind` whose fields match `where`; fails the test when there is none. */
export function resultOf(results: readonly GuestResult[], kind: string, where: Readonly<Record<string, string>> = {}): GuestResult {
  const found = results.filter((r) => r.kind === kind && Object.entries(where).every(([k, v]) => r.fields[k] === v));
  if (found.length !== 1) {
    throw new Error(`expected one "${kind}" result matching ${JSON.stringify(where)}, got ${found.length}:\n${results.map((r) => `${r.kind} ${r.text}`).join('\n')}`);
  }
  return found[0]!;
}
