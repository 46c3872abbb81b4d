/**
 * Building blocks of the facilities' mutants: our four device types as plugged by default, a
 * VirtioPciFunction whose register accesses a mutant can intercept, and a VirtioDevice wrapper
 * that changes what the device offers or accepts.
 */

import type { Bdf } from '../../../../src/bus/pci-bus.js';
import type { AccessSize } from '../../../../src/memory/access-size.js';
import type { DeviceHost } from '../../../../src/pci/function.js';
import type { Machine } from '../../../../src/platform/machine.js';
import type { ActivateContext, ResetCompletion, VirtioDevice, VirtioDeviceHost } from '../../../../src/core/virtio-device.js';
import type { DeviceQueue } from '../../../../src/queue/types.js';
import { VirtioPciFunction, type VirtioPciFunctionOptions } from '../../../../src/transport/pci/virtio-pci-function.js';
import { MODERN_BAR } from '../../../../src/transport/pci/modern-device.js';
import { LEGACY_BAR } from '../../../../src/transport/pci/legacy-device.js';
import { RngDevice } from '../../../../src/device/rng/rng-device.js';
import { BlkDevice } from '../../../../src/device/blk/blk-device.js';
import { MemoryBlockBackend } from '../../../../src/device/blk/memory-backend.js';
import { VirtioNetDevice } from '../../../../src/device/net/net-device.js';
import { createMemoryNetPair } from '../../../../src/device/net/memory-pair.js';
import { VirtioConsoleDevice } from '../../../../src/device/console/console-device.js';
import type { Mutant } from './mutant.js';

export type DeviceKind = 'rng' | 'blk' | 'net' | 'console';

/** One of our devices with its defaults (blk: 64 KiB in memory, writeback switchable). */
export function makeDevice(kind: DeviceKind): VirtioDevice {
  switch (kind) {
    case 'rng':
      return new RngDevice();
    case 'blk':
      return new BlkDevice({ backend: new MemoryBlockBackend(new Uint8Array(64 << 10)) });
    case 'net':
      return new VirtioNetDevice({ backend: createMemoryNetPair()[0] });
    case 'console':
      return new VirtioConsoleDevice();
  }
}

/** Where an access lands, as a mutant sees it. */
export interface Access {
  /** 'common' (modern common cfg), 'isr', 'device' (device-specific config), 'notify', 'legacy' (BAR0 header incl. config), or 'other'. */
  readonly area: 'common' | 'isr' | 'device' | 'notify' | 'legacy' | 'other';
  /** Offset inside the area. */
  readonly offset: number;
  readonly size: AccessSize;
}

const MODERN_AREAS = [
  [0x0000, 'common'],
  [0x1000, 'isr'],
  [0x2000, 'device'],
  [0x3000, 'notify'],
] as const;

function locate(bar: number, offset: number, size: AccessSize): Access {
  if (bar === LEGACY_BAR) return { area: 'legacy', offset, size };
  if (bar !== MODERN_BAR) return { area: 'other', offset, size };
  for (const [base, area] of [...MODERN_AREAS].reverse()) if (offset >= base) return { area, offset: offset - base, size };
  return { area: 'other', offset, size };
}

/** What a mutant changes: a read's value, or a write (return true when it took the write itself). */
export interface Tampering {
  read?(fn: TamperedFunction, at: Access, value: number): number;
  write?(fn: TamperedFunction, at: Access, value: number): boolean;
}

/** A VirtioPciFunction whose BAR accesses go through a {@link Tampering}. */
export class TamperedFunction extends VirtioPciFunction {
  constructor(
    device: VirtioDevice,
    readonly deviceHost: DeviceHost,
    options: VirtioPciFunctionOptions,
    private readonly tampering: Tampering,
  ) {
    super(device, deviceHost, options);
  }

  override barRead(bar: number, offset: number, size: AccessSize): number {
    const value = super.barRead(bar, offset, size);
    return this.tampering.read?.(this, locate(bar, offset, size), value) ?? value;
  }

  override barWrite(bar: number, offset: number, size: AccessSize, value: number): void {
    if (this.tampering.write?.(this, locate(bar, offset, size), value) === true) return;
    super.barWrite(bar, offset, size, value);
  }
}

/** Options of a mutant's function: the device kind and how it is plugged. */
export interface Plugging extends VirtioPciFunctionOptions {
  readonly kind: DeviceKind;
}

/** The unmodified device, plugged. */
export function plugOriginal(machine: Machine, plugging: Plugging): Bdf {
  return machine.plugVirtio(makeDevice(plugging.kind), plugging).bdf;
}

/** A mutant whose function intercepts register accesses. */
export function tamperMutant(breaks: string, plugging: Plugging, tampering: Tampering): Mutant {
  return {
    breaks,
    original: (machine) => plugOriginal(machine, plugging),
    mutant: (machine) => machine.plug((host) => new TamperedFunction(makeDevice(plugging.kind), host, plugging, tampering)).bdf,
  };
}

/** A mutant whose device model is `wrap` of ours, on a function that intercepts register accesses. */
export function wrappedTamperMutant(
  breaks: string,
  plugging: Plugging,
  wrap: (device: VirtioDevice) => VirtioDevice,
  tampering: Tampering,
): Mutant {
  return {
    breaks,
    original: (machine) => plugOriginal(machine, plugging),
    mutant: (machine) => machine.plug((host) => new TamperedFunction(wrap(makeDevice(plugging.kind)), host, plugging, tampering)).bdf,
  };
}

/** A mutant whose device model is `wrap` of ours. */
export function deviceMutant(breaks: string, plugging: Plugging, wrap: (device: VirtioDevice) => VirtioDevice): Mutant {
  return {
    breaks,
    original: (machine) => plugOriginal(machine, plugging),
    mutant: (machine) => machine.plugVirtio(wrap(makeDevice(plugging.kind)), plugging).bdf,
  };
}

/** Changes to a device model: its offer, what it accepts, its queues. Everything else is the inner device's. */
export interface DeviceChanges {
  readonly addFeatures?: bigint;
  readonly removeFeatures?: bigint;
  acceptFeatures?(features: bigint, inner: VirtioDevice): boolean;
  /** The queues the device model gets at DRIVER_OK (and at a queue's re-enable). */
  queue?(queue: DeviceQueue): DeviceQueue;
  /** Called after the inner device's reset. */
  afterReset?(): void;
}

/** `inner` with `changes`; the queue reset hooks only where the inner device has them (the core offers RING_RESET by them). */
export function changedDevice(inner: VirtioDevice, changes: DeviceChanges): VirtioDevice {
  const queue = (q: DeviceQueue | null): DeviceQueue | null => (q === null || changes.queue === undefined ? q : changes.queue(q));
  const wrapped: VirtioDevice = {
    deviceType: inner.deviceType,
    deviceFeatures: (inner.deviceFeatures | (changes.addFeatures ?? 0n)) & ~(changes.removeFeatures ?? 0n),
    queueMaxSizes: inner.queueMaxSizes,
    configSize: inner.configSize,
    attach: (host: VirtioDeviceHost) => inner.attach(host),
    readConfig: (offset, size) => inner.readConfig(offset, size),
    writeConfig: (offset, size, value) => inner.writeConfig(offset, size, value),
    acceptFeatures: (features) =>
      changes.acceptFeatures !== undefined ? changes.acceptFeatures(features, inner) : (inner.acceptFeatures?.(features) ?? true),
    activate: (ctx: ActivateContext) => inner.activate({ features: ctx.features, queues: ctx.queues.map(queue) }),
    queueNotify: (index, next) => inner.queueNotify(index, next),
    reset: (): ResetCompletion => {
      const done = inner.reset();
      changes.afterReset?.();
      return done;
    },
  };
  if (inner.resetQueue !== undefined && inner.enableQueue !== undefined) {
    const resetQueue = inner.resetQueue.bind(inner);
    const enableQueue = inner.enableQueue.bind(inner);
    return { ...wrapped, resetQueue: (index) => resetQueue(index), enableQueue: (q) => enableQueue(queue(q)!) };
  }
  return wrapped;
}
