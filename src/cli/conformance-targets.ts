/**
 * The targets of `virtio-ts conformance --target T`, built here because the engine may not import
 * platforms:
 *   ours:<type>[,mode=modern|transitional|legacy][,msix=on|off][,ring=split|packed][,admin=on|off]
 *       our device model (blk, net, console, rng) with in-memory backends, on the in-process machine;
 *       admin=on gives it an administration virtqueue whose SR-IOV group has two legacy members of
 *       the same type (docs/admin.md);
 *   qemu:<-device string>
 *       QEMU's device over qtest (--machine, --qemu), with the backends probe gives it;
 *   v86:<type>
 *       v86's own device (console, net, balloon) through the driver-side bus, no guest running.
 * Every session is a fresh device; closing it releases what it started.
 */

import type { Bdf, PciBus } from '../bus/pci-bus.js';
import type { ConformanceTarget, TargetSession } from '../conformance/target.js';
import { VirtioDriver } from '../driver/virtio-driver.js';
import { BusError, UsageError } from '../errors.js';
import { makeTempDir } from '../platform/cleanup.js';
import { Machine } from '../platform/machine.js';
import { findQemu, type QemuMachine } from '../platform/qtest/qemu-process.js';
import { isQemuPeer, qemuPeerBinary } from '../platform/qtest/qemu-versions.js';
import { QtestPciBus } from '../platform/qtest/qtest-pci-bus.js';
import { withFreeUdpPorts } from '../platform/qtest/udp-ports.js';
import { V86DriverBus } from '../platform/v86/v86-driver-bus.js';
import { VirtioPciFunction, type VirtioPciMode } from '../transport/pci/virtio-pci-function.js';
import { AdminVirtqueue } from '../device/admin/admin-virtqueue.js';
import { SriovGroup } from '../device/admin/sriov-group.js';
import { LegacyNotifyArea } from '../device/admin/legacy-notify-area.js';
import { LAYOUT_DEVICES, LAYOUT_MODES, ourDevice, type LayoutDevice } from './layout-devices.js';
import { deviceArgs, releaseBackends, type Backends } from './qemu-backends.js';
import { checkRingInterface, type RingOption } from './ring-option.js';

/** Where QEMU targets run: `--machine` and `--qemu` (a version the project installs, or a binary's path). */
export interface QemuChoice {
  readonly machine: QemuMachine;
  /** '7.2', '10.0', a path, or undefined for $VIRTIO_TS_QEMU / qemu-system-x86_64 on PATH. */
  readonly qemu?: string;
}

export const V86_TYPES = ['console', 'net', 'balloon'] as const;
export type V86Type = (typeof V86_TYPES)[number];

export interface OursOptions {
  readonly type: LayoutDevice;
  readonly mode: VirtioPciMode;
  readonly msix: boolean;
  readonly ring: RingOption;
  /** An administration virtqueue (VIRTIO_F_ADMIN_VQ) with two legacy members (default off). */
  readonly admin?: boolean;
}

/** Members of the `admin=on` owner's SR-IOV group: VFs no bus sees, on the owner's memory, with no interrupt lines of their own. */
const ADMIN_MEMBERS = 2;

const TARGET_FORMS = 'ours:<type>[,mode=..][,msix=on|off][,ring=split|packed][,admin=on|off], qemu:"<-device string>" or v86:<type>';

/** A target on the in-process machine: each session a new machine with what `plug` puts on it. */
export function machineTarget(label: string, describe: string, plug: (machine: Machine) => Bdf): ConformanceTarget {
  return {
    label,
    describe,
    open: () => {
      const machine = new Machine();
      const fn = plug(machine);
      return Promise.resolve({ bus: machine.bus, fn, close: () => machine.bus.close().catch(() => undefined) });
    },
  };
}

/** Our device model of `o.type` with the transport options of `o`, as the `ours:` target builds it. */
export function oursTarget(label: string, o: OursOptions): ConformanceTarget {
  const admin = o.admin === true ? `, an administration queue with ${ADMIN_MEMBERS} SR-IOV members` : '';
  const describe = `our virtio-${o.type} model, ${o.mode}, MSI-X ${o.msix ? 'on' : 'off'}, ${o.ring} ring${admin}`;
  return machineTarget(label, describe, (machine) => {
    const device = ourDevice(o.type);
    const msixVectors = o.msix ? device.queueMaxSizes.length + 1 : 0;
    const options = { mode: o.mode, msixVectors, packed: o.ring === 'packed' };
    if (o.admin !== true) return machine.plugVirtio(device, options).bdf;
    return machine.plug((host) => {
      const memberHost = { memory: host.memory, sendMsi: () => undefined, setIntx: () => undefined };
      const members = Array.from({ length: ADMIN_MEMBERS }, () => new VirtioPciFunction(ourDevice(o.type), memberHost, { mode: 'legacy' }));
      const legacy = members.map((m) => m.legacy!);
      // The members' notification addresses in the owner's BAR4 (LEGACY_NOTIFY_INFO), as docs/admin.md describes.
      const legacyNotifyArea = new LegacyNotifyArea(legacy);
      const adminQueue = new AdminVirtqueue({ groups: [new SriovGroup(legacy, legacyNotifyArea)] });
      // A legacy-only owner has no administration queue (nor BAR4): the area is left out with it.
      return new VirtioPciFunction(device, host, { ...options, adminQueue, ...(o.mode === 'legacy' ? {} : { legacyNotifyArea }) });
    }).bdf;
  });
}

function oneOf<T extends string>(label: string, what: string, value: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(value))
    throw new UsageError(`--target ${label}: ${what} ${value}: use one of ${allowed.join(', ')}`);
  return value as T;
}

function parseOurs(label: string, spec: string): ConformanceTarget {
  const [type = '', ...props] = spec.split(',');
  const o = {
    type: oneOf(label, 'type', type, LAYOUT_DEVICES),
    mode: 'modern' as VirtioPciMode,
    msix: true,
    ring: 'split' as RingOption,
    admin: false,
  };
  for (const prop of props) {
    const [key = '', value = ''] = prop.split('=', 2);
    if (key === 'mode') o.mode = oneOf(label, 'mode', value, LAYOUT_MODES);
    else if (key === 'msix') o.msix = oneOf(label, 'msix', value, ['on', 'off']) === 'on';
    else if (key === 'ring') o.ring = oneOf<RingOption>(label, 'ring', value, ['split', 'packed']);
    else if (key === 'admin') o.admin = oneOf(label, 'admin', value, ['on', 'off']) === 'on';
    else throw new UsageError(`--target ${label}: unknown property ${JSON.stringify(key)}: use mode, msix, ring or admin`);
  }
  checkRingInterface(o.ring, o.mode === 'legacy' ? 'mode=legacy' : undefined);
  return oursTarget(label, o);
}

/** The QEMU binary of `--qemu`: an installed version by number, or a path. */
function qemuBinary(qemu: string | undefined): string {
  if (qemu === undefined) return findQemu();
  if (isQemuPeer(qemu)) return qemuPeerBinary(qemu);
  if (!qemu.includes('/')) throw new UsageError(`--qemu ${qemu}: use 7.2, 10.0 or the path of a QEMU binary`);
  return findQemu(qemu);
}

/** The first virtio function on `bus`; a BusError when there is none. */
async function firstVirtio(bus: PciBus, what: string): Promise<Bdf> {
  const found = await VirtioDriver.find(bus);
  if (found[0] === undefined) throw new BusError(`${what}: no virtio PCI function found`);
  return found[0];
}

function qemuTarget(label: string, device: string, choice: QemuChoice): ConformanceTarget {
  if (device === '') throw new UsageError(`--target ${label}: give a -device string, e.g. qemu:virtio-blk-pci,disable-legacy=on`);
  const binary = qemuBinary(choice.qemu);
  const version = choice.qemu !== undefined && isQemuPeer(choice.qemu) ? `QEMU ${choice.qemu}` : `QEMU (${binary})`;
  return {
    label,
    describe: `${version} -M ${choice.machine} -device ${device}`,
    open: async (): Promise<TargetSession> => {
      const scratch = await makeTempDir('virtio-ts-conformance-');
      const backends: Backends = {};
      const release = async (): Promise<void> => {
        releaseBackends(backends);
        await scratch.remove();
      };
      try {
        const bus = await withFreeUdpPorts(async (pickPort) =>
          QtestPciBus.launch({ machine: choice.machine, binary, args: await deviceArgs(device, scratch.path, backends, pickPort) }),
        );
        const close = async (): Promise<void> => {
          await bus.close().catch(() => undefined);
          await release();
        };
        try {
          const fn = await firstVirtio(bus, `QEMU -device ${device}`);
          return { bus, fn, ended: bus.qemu.exited.then(() => 'QEMU exited'), close };
        } catch (err) {
          await close();
          throw err;
        }
      } catch (err) {
        await release();
        throw err;
      }
    },
  };
}

function v86Target(label: string, type: string): ConformanceTarget {
  const t = oneOf(label, 'type', type, V86_TYPES);
  return {
    label,
    describe: `v86's own virtio-${t}`,
    open: async (): Promise<TargetSession> => {
      const bus = await V86DriverBus.create({ virtioConsole: t === 'console', virtioNet: t === 'net', virtioBalloon: t === 'balloon' });
      const close = (): Promise<void> => bus.close().catch(() => undefined);
      try {
        return { bus, fn: await firstVirtio(bus, `v86 virtio-${t}`), close };
      } catch (err) {
        await close();
        throw err;
      }
    },
  };
}

/** One `--target` value; a UsageError (one line) when it is malformed. */
export function parseTarget(text: string, choice: QemuChoice): ConformanceTarget {
  const colon = text.indexOf(':');
  const kind = colon < 0 ? text : text.slice(0, colon);
  const rest = colon < 0 ? '' : text.slice(colon + 1);
  switch (kind) {
    case 'ours':
      return parseOurs(text, rest);
    case 'qemu':
      return qemuTarget(text, rest.replace(/^"(.*)"$/, '$1'), choice);
    case 'v86':
      return v86Target(text, rest);
    default:
      throw new UsageError(`--target ${text}: use ${TARGET_FORMS}`);
  }
}
