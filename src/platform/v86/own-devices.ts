/**
 * v86's own devices beside ours in a {@link LinuxGuest}, for like-for-like comparisons
 * (bench/guest-*.bench.ts): the emulator options that add them, what of them keys a saved state, and
 * the v86 internals a host reaches them through. Written against npm v86 0.5.462 (src/ide.js,
 * src/buffer.js SyncBuffer, src/virtio_net.js, src/virtio.js, src/bus.js); every member is checked
 * where it is taken, so another v86 fails with a BusError naming it, never with a TypeError.
 */

import { createHash } from 'node:crypto';
import type { V86, V86Options } from 'v86';
import { BusError } from '../../errors.js';
import { v86Internals, type V86PortEntry } from './internals.js';

export interface V86OwnDevices {
  /**
   * v86's IDE disk (primary master) over these bytes. v86 saves an in-memory image with the machine,
   * so a restored guest's disk is v86's copy from the state: reach it with `v86IdeDisk` (own-devices.ts).
   */
  readonly hda?: ArrayBuffer;
  /** v86's virtio-net; its frames are the emulator bus's "net0-send" and "net0-receive" events. */
  readonly virtioNet?: boolean;
  /** v86's virtio-console, with no host adapter: its bytes are "virtio-console0-output-bytes" events. */
  readonly virtioConsole?: boolean;
}

/** The emulator options that add `devices`. */
export function ownDeviceOptions(devices: V86OwnDevices): Partial<V86Options> {
  return {
    ...(devices.hda === undefined ? {} : { hda: { buffer: devices.hda } }),
    ...(devices.virtioNet ? { net_device: { type: 'virtio' as const } } : {}),
    ...(devices.virtioConsole ? { virtio_console: { type: 'none' as const } } : {}),
  };
}

/** What a saved state of a guest with `devices` depends on: which there are, and the disk's bytes (the state holds them). */
export function ownDeviceKey(devices: V86OwnDevices): Record<string, unknown> {
  const hda = devices.hda;
  return {
    hda: hda === undefined ? null : { bytes: hda.byteLength, sha256: createHash('sha256').update(new Uint8Array(hda)).digest('hex') },
    virtioNet: devices.virtioNet ?? false,
    virtioConsole: devices.virtioConsole ?? false,
  };
}

/** src/buffer.js `SyncBuffer`: an in-memory disk image; callbacks run synchronously. */
export interface V86SyncBuffer {
  buffer: ArrayBuffer;
  get(start: number, length: number, fn: (data: Uint8Array) => void): void;
  set(start: number, data: Uint8Array, fn: () => void): void;
}

/** The parts of v86's devices taken here. */
interface OwnDeviceInternals {
  readonly ide?: { readonly primary?: { readonly master?: { buffer?: unknown } } };
  readonly virtio_net?: { readonly virtio?: object & { readonly queues?: readonly { has_request?: () => boolean }[] } };
  readonly virtio_console?: { readonly virtio?: object };
}

function devicesOf(emulator: V86): OwnDeviceInternals {
  return v86Internals(emulator).devices as OwnDeviceInternals;
}

function missing(what: string): never {
  throw new BusError(`this v86 lacks ${what} (written for npm v86 0.5.462), or the guest was booted without that device`);
}

/** v86's IDE disk image as it is now (after a restore, the copy v86 made from the state). */
export function v86IdeDisk(emulator: V86): V86SyncBuffer {
  const buffer = devicesOf(emulator).ide?.primary?.master?.buffer as Partial<V86SyncBuffer> | undefined;
  if (!(buffer?.buffer instanceof ArrayBuffer) || typeof buffer.get !== 'function' || typeof buffer.set !== 'function') {
    missing('v86.cpu.devices.ide.primary.master.buffer (a SyncBuffer)');
  }
  return buffer as V86SyncBuffer;
}

/** The object v86 registers the I/O ports of `device` under (the one its handlers run on). */
export function v86DevicePortOwner(emulator: V86, device: 'ide' | 'virtio_net' | 'virtio_console'): object {
  const d = devicesOf(emulator);
  const owner = device === 'ide' ? d.ide?.primary : d[device]?.virtio;
  if (typeof owner !== 'object' || owner === null) missing(`v86.cpu.devices.${device === 'ide' ? 'ide.primary' : `${device}.virtio`}`);
  return owner;
}

/** Every port table entry whose handlers run on `owner` (v86's device objects register theirs with themselves). */
export function v86PortsOf(emulator: V86, owner: object): V86PortEntry[] {
  return v86Internals(emulator).io.ports.filter((entry) => entry.device === owner);
}

/** The host end of v86's virtio-net, resolved once (a frame at a time is the hot path). */
export interface V86NetPort {
  /** Whether the device has a receive buffer for the next frame (it drops it, and logs, otherwise). */
  rxReady(): boolean;
  /** Deliver an Ethernet frame, as v86's network adapters do ("net0-receive" on the emulator bus). */
  receive(frame: Uint8Array): void;
}

export function v86NetPort(emulator: V86): V86NetPort {
  const rx = devicesOf(emulator).virtio_net?.virtio?.queues?.[0];
  if (typeof rx?.has_request !== 'function') missing('v86.cpu.devices.virtio_net.virtio.queues[0].has_request');
  const bus = (emulator as unknown as { bus?: { send?: (name: string, data: unknown) => void } }).bus;
  if (typeof bus?.send !== 'function') missing('emulator.bus.send');
  const hasRequest = rx.has_request.bind(rx);
  const send = bus.send.bind(bus);
  return { rxReady: () => hasRequest(), receive: (frame) => send('net0-receive', frame) };
}
