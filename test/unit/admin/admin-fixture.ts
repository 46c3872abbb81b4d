/**
 * An owner device with an administration virtqueue for the admin tests: virtio-rng on the modern
 * interface whose SR-IOV group has `vfs` members, each a legacy-only virtio function over a small
 * device with an 8-byte configuration (bytes 0..7 read back as written), reached only through the
 * owner's legacy interface commands.
 */

import type { ActivateContext, VirtioDevice } from '../../../src/core/virtio-device.js';
import { AdminVirtqueue } from '../../../src/device/admin/admin-virtqueue.js';
import { SriovGroup } from '../../../src/device/admin/sriov-group.js';
import { RngDevice } from '../../../src/device/rng/rng-device.js';
import type { AccessSize } from '../../../src/memory/access-size.js';
import { ArrayGuestMemory } from '../../../src/memory/guest-memory.js';
import type { Bdf } from '../../../src/bus/pci-bus.js';
import { Machine } from '../../../src/platform/machine.js';
import { VirtioPciFunction, type VirtioPciFunctionOptions } from '../../../src/transport/pci/virtio-pci-function.js';

/** A device with one queue and 8 bytes of configuration that hold what is written. */
export class ConfigDevice implements VirtioDevice {
  readonly deviceType = 4;
  readonly deviceFeatures = 1n << 5n;
  readonly queueMaxSizes = [16];
  readonly configSize = 8;
  readonly config = new Uint8Array(8).map((_, i) => 0x10 + i);
  attach(): void {}
  readConfig(offset: number, size: AccessSize): number {
    let v = 0;
    for (let i = size - 1; i >= 0; i--) v = v * 256 + this.config[offset + i]!;
    return v;
  }
  writeConfig(offset: number, size: AccessSize, value: number): void {
    for (let i = 0; i < size; i++, value = Math.floor(value / 256)) this.config[offset + i] = value & 0xff;
  }
  activate(_ctx: ActivateContext): void {}
  queueNotify(): void {}
  reset(): void {}
}

/** `vfs` legacy-only member functions (never on a bus: as VFs whose BAR0 the guest cannot see). */
export function makeMembers(vfs: number): { fn: VirtioPciFunction; device: ConfigDevice }[] {
  const host = { memory: new ArrayGuestMemory(1 << 16), sendMsi() {}, setIntx() {} };
  return Array.from({ length: vfs }, () => {
    const device = new ConfigDevice();
    return { fn: new VirtioPciFunction(device, host, { mode: 'legacy' }), device };
  });
}

/** An administration virtqueue whose SR-IOV group has `members` (none: the owner has only the self group). */
export function makeAdmin(members: readonly { fn: VirtioPciFunction }[] | undefined): AdminVirtqueue {
  return new AdminVirtqueue(members === undefined ? {} : { groups: [new SriovGroup(members.map((m) => m.fn.legacy!))] });
}

export interface Owner {
  readonly machine: Machine;
  readonly bdf: Bdf;
  readonly owner: VirtioPciFunction;
  readonly admin: AdminVirtqueue;
  readonly members: { fn: VirtioPciFunction; device: ConfigDevice }[];
}

/** A machine with the owner plugged (with `options`, e.g. MSI-X vectors) and `vfs` members. */
export function ownerMachine(vfs = 2, options: VirtioPciFunctionOptions = {}): Owner {
  const machine = new Machine({ ramSize: 4 << 20 });
  const members = makeMembers(vfs);
  const admin = makeAdmin(vfs === 0 ? undefined : members);
  const { bdf, fn } = machine.plugVirtio(new RngDevice(), { ...options, adminQueue: admin });
  return { machine, bdf, owner: fn, admin, members };
}
