/**
 * A VirtioDevice wrapper for mutants (every family): it passes everything to one of our devices and
 * lets a mutant change one thing: the features offered or accepted, a configuration read or write,
 * the queues it gets or a queue reset, or what the
 * device wrote into a chain just before its used element is pushed (the chain's buffers are copied
 * at pop, so the hook sees them after the device is done with the chain).
 */

import type { Bdf } from '../../../../src/bus/pci-bus.js';
import type { ActivateContext, ResetCompletion, VirtioDevice, VirtioDeviceHost } from '../../../../src/core/virtio-device.js';
import type { Machine } from '../../../../src/platform/machine.js';
import type { AccessSize } from '../../../../src/memory/access-size.js';
import type { GuestMemory } from '../../../../src/memory/guest-memory.js';
import type { DescriptorChain, DeviceQueue, RingPosition } from '../../../../src/queue/types.js';
import type { Mutant } from './mutant.js';
import { concat } from '../../../helpers/net-frames.js';

/** One buffer of a popped chain. */
export interface ChainBuffer {
  readonly addr: number;
  readonly len: number;
  readonly writable: boolean;
}

/** A used element about to be pushed: the chain's buffers, the len the device reports, guest memory. */
export interface UsedChain {
  readonly queue: number;
  readonly buffers: readonly ChainBuffer[];
  readonly len: number;
  readonly memory: GuestMemory;
}

export interface WrapHooks {
  /** The features offered, from the device's. */
  features?(offered: bigint): bigint;
  /** The configuration size (default the device's). */
  configSize?: number;
  /** A configuration read; `inner` reads the device's (only below its configSize). */
  readConfig?(offset: number, size: AccessSize, inner: () => number): number;
  /** A configuration write; `inner` writes the device's. */
  writeConfig?(offset: number, size: AccessSize, value: number, inner: () => void, host: VirtioDeviceHost): void;
  /** Whether the device accepts `features` at FEATURES_OK; `inner` asks the device. */
  acceptFeatures?(features: bigint, inner: () => boolean): boolean;
  /** Configuration changes the device reports are dropped (config_generation stays, no notification). */
  silentConfigChanges?: boolean;
  /** The queues the device model gets at DRIVER_OK (and at a queue's re-enable), from ours. */
  queue?(queue: DeviceQueue): DeviceQueue;
  /** A queue reset (where the device has queue reset); `inner` resets the device's queue. */
  resetQueue?(index: number, inner: () => ResetCompletion): ResetCompletion;
  /** Just before a used element is pushed: may rewrite guest memory; returns the len to push. */
  used?(chain: UsedChain): number;
}

/** Bytes of the device-readable part of a chain, concatenated. */
export function readablePart(chain: UsedChain): Uint8Array {
  return concat(...chain.buffers.filter((b) => !b.writable).map((b) => chain.memory.view(b.addr, b.len)));
}

/** The device-writable buffers of a chain. */
export function writableBuffers(chain: UsedChain): ChainBuffer[] {
  return chain.buffers.filter((b) => b.writable);
}

class WrappedQueue implements DeviceQueue {
  private readonly popped = new Map<number, ChainBuffer[]>();

  constructor(
    private readonly inner: DeviceQueue,
    private readonly hooks: WrapHooks,
    private readonly memory: () => GuestMemory,
  ) {}

  get index(): number {
    return this.inner.index;
  }
  get size(): number {
    return this.inner.size;
  }

  pop(): DescriptorChain | null {
    const chain = this.inner.pop();
    if (chain) {
      const buffers: ChainBuffer[] = [];
      for (let i = 0; i < chain.count; i++) buffers.push({ addr: chain.addr(i), len: chain.len(i), writable: i >= chain.readable });
      this.popped.set(chain.head, buffers);
    }
    return chain;
  }

  pushUsed(head: number, len: number): void {
    const buffers = this.popped.get(head) ?? [];
    this.popped.delete(head);
    const pushed = this.hooks.used ? this.hooks.used({ queue: this.index, buffers, len, memory: this.memory() }) : len;
    this.inner.pushUsed(head, pushed);
  }

  needsInterrupt(): boolean {
    return this.inner.needsInterrupt();
  }
  setNotification(enabled: boolean): void {
    this.inner.setNotification(enabled);
  }
  hasAvailable(): boolean {
    return this.inner.hasAvailable();
  }
  position(): RingPosition {
    return this.inner.position();
  }
}

/** `device` with `hooks` applied. */
export class WrappedDevice implements VirtioDevice {
  readonly deviceType: number;
  readonly deviceFeatures: bigint;
  readonly queueMaxSizes: readonly number[];
  readonly configSize: number;
  readonly resetQueue?: (index: number) => ResetCompletion;
  readonly enableQueue?: (queue: DeviceQueue) => void;
  private host: VirtioDeviceHost | undefined;

  constructor(
    readonly inner: VirtioDevice,
    private readonly hooks: WrapHooks,
  ) {
    this.deviceType = inner.deviceType;
    this.deviceFeatures = hooks.features ? hooks.features(inner.deviceFeatures) : inner.deviceFeatures;
    this.queueMaxSizes = inner.queueMaxSizes;
    this.configSize = hooks.configSize ?? inner.configSize;
    if (inner.resetQueue && inner.enableQueue) {
      this.resetQueue = (index) => (hooks.resetQueue ? hooks.resetQueue(index, () => inner.resetQueue!(index)) : inner.resetQueue!(index));
      this.enableQueue = (queue) => inner.enableQueue!(this.wrap(queue));
    }
  }

  private wrap(queue: DeviceQueue): DeviceQueue {
    return new WrappedQueue(this.hooks.queue ? this.hooks.queue(queue) : queue, this.hooks, () => this.host!.memory);
  }

  attach(host: VirtioDeviceHost): void {
    this.host = host;
    const silent: VirtioDeviceHost = {
      memory: host.memory,
      configChanged: () => undefined,
      usedBuffers: (index) => host.usedBuffers(index),
      needsReset: (cause) => host.needsReset(cause),
    };
    this.inner.attach(this.hooks.silentConfigChanges ? silent : host);
  }

  readConfig(offset: number, size: AccessSize): number {
    const inner = (): number => (offset + size <= this.inner.configSize ? this.inner.readConfig(offset, size) : 0);
    return this.hooks.readConfig ? this.hooks.readConfig(offset, size, inner) : inner();
  }

  writeConfig(offset: number, size: AccessSize, value: number): void {
    const inner = (): void => {
      if (offset + size <= this.inner.configSize) this.inner.writeConfig(offset, size, value);
    };
    if (this.hooks.writeConfig) this.hooks.writeConfig(offset, size, value, inner, this.host!);
    else inner();
  }

  acceptFeatures(features: bigint): boolean {
    const inner = (): boolean => (this.inner.acceptFeatures ? this.inner.acceptFeatures(features) : true);
    return this.hooks.acceptFeatures ? this.hooks.acceptFeatures(features, inner) : inner();
  }

  activate(ctx: ActivateContext): void {
    this.inner.activate({ features: ctx.features, queues: ctx.queues.map((q) => (q ? this.wrap(q) : null)) });
  }

  queueNotify(index: number, next?: number): void {
    this.inner.queueNotify(index, next);
  }

  reset(): ResetCompletion {
    return this.inner.reset();
  }
}

/** `device` as a transitional function (both interfaces), under `hooks` when given. */
export function plugWrapped(machine: Machine, device: VirtioDevice, hooks?: WrapHooks): Bdf {
  return machine.plugVirtio(hooks ? new WrappedDevice(device, hooks) : device, { mode: 'transitional' }).bdf;
}

/** A mutant: `device()` as it is, and under `hooks` (a function gives each mutant plugged fresh hooks, with their own state). */
export function wrappedMutant(breaks: string, device: () => VirtioDevice, hooks: WrapHooks | (() => WrapHooks)): Mutant {
  return {
    breaks,
    original: (machine) => plugWrapped(machine, device()),
    mutant: (machine) => plugWrapped(machine, device(), typeof hooks === 'function' ? hooks() : hooks),
  };
}
