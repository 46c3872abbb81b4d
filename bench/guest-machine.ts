/**
 * The guest the guest benchmarks share (bench/guest-*.bench.ts): the project's Linux guest in v86
 * (LinuxGuest, restored from its saved state after the first run) with one of each of our devices
 * (virtio-blk over memory, virtio-console, virtio-net) beside v86's own (IDE disk over the same bytes,
 * virtio-console, virtio-net), so that each figure of ours is taken in the same guest and run as
 * v86's, the two interleaved. One device configuration for every bench: one saved state.
 *
 * Where the time goes, per run: wall and process CPU time; the time inside each device's entry points
 * (ours: its PCI function's BAR accesses; v86's: the handlers of its I/O ports; both: frames the host
 * delivers), with the part spent in its backend (disk bytes, the host end of the link or console)
 * measured apart; the rest of the CPU time is the guest's emulation (v86's CPU, its other devices,
 * the event loop). Each clock read costs about 0.1 µs, charged to the device.
 */

import type { V86 } from 'v86';
import { BlkDevice } from '../src/device/blk/blk-device.js';
import type { MemoryBlockBackend } from '../src/device/blk/memory-backend.js';
import type { GuestIo } from '../src/device/blk/backend.js';
import type { ConsoleBytePort } from '../src/device/console/byte-port.js';
import { VirtioConsoleDevice } from '../src/device/console/console-device.js';
import type { NetBackend } from '../src/device/net/backend.js';
import { VirtioNetDevice, type VirtioNetDeviceOptions } from '../src/device/net/net-device.js';
import type { DeviceHost } from '../src/pci/function.js';
import type { V86PortEntry } from '../src/platform/v86/internals.js';
import { BusError } from '../src/errors.js';
import { findGuestAssets, guestAssetsCurrent } from '../src/platform/v86/assets.js';
import { LinuxGuest } from '../src/platform/v86/linux-guest.js';
import type { GuestResult } from '../src/platform/v86/guest-protocol.js';
import { v86DevicePortOwner, v86PortsOf } from '../src/platform/v86/own-devices.js';
import { VirtioPciFunction } from '../src/transport/pci/virtio-pci-function.js';

/** Each disk: 64 MiB, what every dd moves. */
export const DISK_BYTES = 64 << 20;
/** Runs of each case per device, ours and v86's alternating; the best of each is reported. */
export const REPEATS = 2;
/** Our functions' slots (v86's own sit at 00:0a.0 net, 00:0b-0c virtio, 00:1e.0 IDE). */
const SLOT = { blk: 13 << 3, console: 14 << 3, net: 15 << 3 } as const;

/** The guest benchmarks' peer check: the guest assets are built and current (they need vt-udp and the ATA modules). */
export function checkGuestAssets(): void {
  findGuestAssets();
  if (!guestAssetsCurrent()) throw new BusError('the Linux guest assets are out of date: run `npm run setup`');
}

/** Accumulated milliseconds inside wrapped functions. */
export class Stopwatch {
  ms = 0;

  /** `fn` timed into this stopwatch. */
  wrap<A extends unknown[], R>(fn: (...args: A) => R): (...args: A) => R {
    return (...args: A): R => {
      const t0 = performance.now();
      try {
        return fn(...args);
      } finally {
        this.ms += performance.now() - t0;
      }
    };
  }
}

/** One side of a comparison: its device and backend clocks, and the bytes its backend moved. */
export class Side {
  readonly device = new Stopwatch();
  readonly backend = new Stopwatch();
  bytes = 0;

  constructor(readonly name: string) {}
}

/** What one timed guest command cost. */
export interface Cost {
  readonly wallMs: number;
  readonly cpuMs: number;
  readonly deviceMs: number;
  readonly backendMs: number;
  readonly bytes: number;
}

/** Run `work` and measure it on `side`'s clocks. */
export async function measure<T>(side: Side, work: () => Promise<T>): Promise<{ value: T; cost: Cost }> {
  const d0 = side.device.ms;
  const b0 = side.backend.ms;
  const bytes0 = side.bytes;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const value = await work();
  const wallMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  return {
    value,
    cost: {
      wallMs,
      cpuMs: (cpu.user + cpu.system) / 1000,
      deviceMs: side.device.ms - d0,
      backendMs: side.backend.ms - b0,
      bytes: side.bytes - bytes0,
    },
  };
}

/** The columns every guest bench prints: the guest's figure, the host's, and where the time went. */
export function costColumns(cost: Cost): Record<string, string> {
  const device = cost.deviceMs - cost.backendMs;
  return {
    'wall s': (cost.wallMs / 1000).toFixed(2),
    'CPU s': (cost.cpuMs / 1000).toFixed(2),
    'device ms': device.toFixed(0),
    'backend ms': cost.backendMs.toFixed(0),
    'emulation ms': Math.max(0, cost.cpuMs - cost.deviceMs).toFixed(0),
  };
}

/** "1.23x (target >= 5x: met)" */
export function ratioText(ours: number, theirs: number, target: number): string {
  const r = ours / theirs;
  return `${r.toFixed(2)}x (target >= ${target}x: ${r >= target ? 'met' : 'NOT met'})`;
}

/** Alternate the two sides, starting with a different one each repeat (the machine's load drifts). */
export function interleaved<S>(sides: readonly [S, S], repeat: number): readonly [S, S] {
  return repeat % 2 === 0 ? sides : [sides[1], sides[0]];
}

/** A deterministic disk image: xorshift32 words, so that no two sectors are alike. */
export function diskImage(): ArrayBuffer {
  const words = new Uint32Array(DISK_BYTES / 4);
  let x = 0x2545f491;
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    words[i] = x >>> 0;
  }
  return words.buffer;
}

/** The result of `kind` in a command's output, or an error saying what the guest printed instead. */
export function one(results: readonly GuestResult[], kind: string): GuestResult {
  const r = results.find((x) => x.kind === kind);
  if (r === undefined) throw new Error(`the guest printed no "${kind}" result: ${results.map((x) => `${x.kind} ${x.text}`).join('; ')}`);
  return r;
}

/** Run a guest command that must succeed. */
export async function run(guest: LinuxGuest, line: string, onResult?: (r: GuestResult) => void): Promise<readonly GuestResult[]> {
  const out = await guest.command(line, 300_000, onResult);
  if (out.rc !== 0)
    throw new Error(`guest command "${line}" failed (rc=${out.rc}): ${out.results.map((r) => `${r.kind} ${r.text}`).join('; ')}`);
  return out.results;
}

/** Our blk backend, the console's host end and the net backend, each timed into its side. */
export interface OurBackends {
  readonly blk: MemoryBlockBackend;
  readonly console: ConsoleBytePort;
  readonly net: NetBackend;
}

export interface ComparisonGuest {
  readonly guest: LinuxGuest;
  readonly emulator: V86;
  /** Our functions, by device. */
  readonly fns: { readonly blk: VirtioPciFunction; readonly console: VirtioPciFunction; readonly net: VirtioPciFunction };
  /** What "load" printed (the virtio devices, with their block and net names). */
  readonly devices: readonly GuestResult[];
  /** The guest's name for v86's IDE disk ("sda"). */
  readonly ideDisk: string;
  /** Our virtio-net device (its counters tell a dropped frame). */
  readonly ourNet: VirtioNetDevice;
  /** How often and how long the guest sat halted. */
  readonly halts: HaltClock;
}

/** The guest's halts: waits v86's main loop asked for (it asks for none while the CPU runs), and their length until its next tick. */
export class HaltClock {
  count = 0;
  ms = 0;
}

/** Count `emulator`'s halts into a new HaltClock (v86's src/main.js: do_tick runs the CPU, then yield(t) waits t ms before the next). */
function timeHalts(emulator: V86): HaltClock {
  const clock = new HaltClock();
  const machine = (emulator as unknown as { v86: { yield(t: number, tick: number): void; do_tick(): void } }).v86;
  const v86Yield = machine.yield.bind(machine);
  const v86Tick = machine.do_tick.bind(machine);
  let since: number | undefined;
  machine.yield = (t, tick) => {
    if (t >= 1) {
      clock.count++;
      since = performance.now();
    }
    v86Yield(t, tick);
  };
  machine.do_tick = () => {
    if (since !== undefined) clock.ms += performance.now() - since;
    since = undefined;
    v86Tick();
  };
  return clock;
}

/** Time a function's BAR accesses (the device's entry points: notifications run the device inside them). */
function timeBars(fn: VirtioPciFunction, watch: Stopwatch): VirtioPciFunction {
  fn.barRead = watch.wrap(fn.barRead.bind(fn));
  fn.barWrite = watch.wrap(fn.barWrite.bind(fn));
  return fn;
}

/** A blk backend whose reads and writes are timed and counted into `side`. */
export function timedBlockBackend(inner: MemoryBlockBackend, side: Side): MemoryBlockBackend {
  const count = (f: (offset: number, io: GuestIo) => void) =>
    side.backend.wrap((offset: number, io: GuestIo) => {
      side.bytes += io.length;
      f(offset, io);
    });
  inner.read = count(inner.read.bind(inner));
  inner.write = count(inner.write.bind(inner));
  return inner;
}

/** Our virtio-net as a bench run configures it, beside the product's defaults: which receive path costs the guest what. */
export interface OurNetConfig {
  /** Net feature bits (a featureSet) our device does not offer. */
  readonly withheld: bigint;
  readonly queueSize?: VirtioNetDeviceOptions['queueSize'];
}

/**
 * Boot (restore) the comparison guest, load the virtio and ATA modules, and time v86's devices' ports
 * into `v86Sides` (by device: 'ide', 'virtio_net', 'virtio_console').
 */
export async function bootComparisonGuest(
  ours: OurBackends,
  oursSide: Readonly<Record<'blk' | 'console' | 'net', Side>>,
  v86Sides: Readonly<Record<'ide' | 'virtio_net' | 'virtio_console', Side>>,
  disk: ArrayBuffer,
  netConfig: OurNetConfig = { withheld: 0n },
): Promise<ComparisonGuest> {
  const fns: Partial<Record<'blk' | 'console' | 'net', VirtioPciFunction>> = {};
  const ourNet = new VirtioNetDevice({ backend: ours.net, mac: Uint8Array.of(0x02, 0, 0, 0, 0, 0x0f), queueSize: netConfig.queueSize });
  // Offering less is enough: the device acts on what was negotiated, and its function reads the offer when made (below).
  (ourNet as { deviceFeatures: bigint }).deviceFeatures &= ~netConfig.withheld;
  const plug = (name: 'blk' | 'console' | 'net', device: () => BlkDevice | VirtioConsoleDevice | VirtioNetDevice) => ({
    name,
    devfn: SLOT[name],
    create: (host: DeviceHost) => (fns[name] = timeBars(new VirtioPciFunction(device(), host, { mode: 'modern' }), oursSide[name].device)),
  });
  const guest = await LinuxGuest.boot({
    memoryMiB: 256,
    v86Devices: { hda: disk, virtioNet: true, virtioConsole: true },
    devices: [
      plug('blk', () => new BlkDevice({ backend: ours.blk })),
      plug('console', () => new VirtioConsoleDevice({ ports: [{ console: true, host: ours.console }] })),
      plug('net', () => ourNet),
    ],
  });
  try {
    for (const [device, side] of Object.entries(v86Sides) as ['ide' | 'virtio_net' | 'virtio_console', Side][]) {
      for (const entry of v86PortsOf(guest.emulator, v86DevicePortOwner(guest.emulator, device))) timePort(entry, side.device);
    }
    const devices = await run(guest, 'load');
    const ideDisk = one(await run(guest, 'ataload'), 'ataload').fields['disks']?.split(',')[0];
    if (!ideDisk) throw new Error("the guest found no disk on v86's IDE");
    return {
      guest,
      emulator: guest.emulator,
      fns: fns as ComparisonGuest['fns'],
      devices,
      ideDisk,
      ourNet,
      halts: timeHalts(guest.emulator),
    };
  } catch (err) {
    await guest.destroy();
    throw err;
  }
}

/**
 * Boot (restore) the guest with one virtio console only, timed into `side`, and load the virtio
 * modules: ours when `port` (its host end) is given, else v86's (its bytes are the emulator's
 * "virtio-console0-output-bytes" events). In a guest with both, only the console Linux brings up first gets a working hvc:
 * the console comparison runs two guests, one with each.
 */
export async function bootConsoleGuest(side: Side, port?: ConsoleBytePort): Promise<LinuxGuest> {
  const guest = await LinuxGuest.boot({
    memoryMiB: 256,
    v86Devices: { virtioConsole: port === undefined },
    devices:
      port !== undefined
        ? [
            {
              name: 'console',
              devfn: SLOT.console,
              create: (host: DeviceHost) =>
                timeBars(
                  new VirtioPciFunction(new VirtioConsoleDevice({ ports: [{ console: true, host: port }] }), host, { mode: 'modern' }),
                  side.device,
                ),
            },
          ]
        : [],
  });
  try {
    if (port === undefined) {
      for (const entry of v86PortsOf(guest.emulator, v86DevicePortOwner(guest.emulator, 'virtio_console'))) timePort(entry, side.device);
    }
    await run(guest, 'load');
    return guest;
  } catch (err) {
    await guest.destroy();
    throw err;
  }
}

const PORT_HANDLERS = ['read8', 'read16', 'read32', 'write8', 'write16', 'write32'] as const;

/** Time every handler of one of v86's ports (called with `this` bound to the device, as v86 does). */
function timePort(entry: V86PortEntry, watch: Stopwatch): void {
  for (const name of PORT_HANDLERS) {
    const handler: (this: unknown, arg: number) => number | void = entry[name];
    const device = entry.device;
    (entry as unknown as Record<string, unknown>)[name] = watch.wrap((arg: number) => handler.call(device, arg));
  }
}

/** The guest's name for the function at `devfn` ("vda", "eth1"), from what "load" printed. */
export function guestName(devices: readonly GuestResult[], devfn: number, key: 'block' | 'net'): string {
  const pci = `0000:00:${(devfn >> 3).toString(16).padStart(2, '0')}.${devfn & 7}`;
  const name = devices.find((r) => r.kind === 'virtio' && r.fields['pci'] === pci)?.fields[key];
  if (name === undefined) throw new Error(`no ${key} device at ${pci} in the guest: ${devices.map((r) => r.text).join('; ')}`);
  return name;
}

/** Every virtio net interface but ours (v86's virtio-net), from what "load" printed. */
export function otherNet(devices: readonly GuestResult[], devfn: number): string {
  const ours = guestName(devices, devfn, 'net');
  const other = devices.find((r) => r.kind === 'virtio' && r.fields['net'] !== undefined && r.fields['net'] !== ours)?.fields['net'];
  if (other === undefined) throw new Error(`no second virtio-net interface (v86's) in the guest`);
  return other;
}

export { SLOT as OUR_SLOTS };
