/**
 * The device core's part of a snapshot (docs/snapshots.md): status, features, config_generation,
 * each queue's configuration and, for a live queue, its ring with the chains in flight. Writing it,
 * and reading it back checked against the core it is restored into; the device core applies what
 * was read.
 */

import type { GuestMemory } from '../memory/guest-memory.js';
import { QueueFaultError, SnapshotError } from '../errors.js';
import type { SnapshotReader } from '../snapshot/snapshot-reader.js';
import { flag, list, string, struct, u16, u64, u8, type SnapshotStruct } from '../snapshot/snapshot-value.js';
import { ringFormat } from '../queue/ring-format.js';
import type { DeviceRingOptions } from '../queue/rings.js';
import type { DeviceQueue } from '../queue/types.js';
import { modelHeldChains } from '../queue/in-flight-snapshot.js';
import { VIRTIO_F_SUSPEND, featureBits, hasFeature } from '../spec/features.js';
import {
  VIRTIO_CONFIG_S_DEVICE_NEEDS_RESET,
  VIRTIO_CONFIG_S_DRIVER_OK,
  VIRTIO_CONFIG_S_FAILED,
  VIRTIO_CONFIG_S_FEATURES_OK,
  VIRTIO_CONFIG_S_SUSPEND,
} from '../spec/status.js';
import { MODERN_STATUS_STEPS } from './device-status.js';
import type { InterfaceRules } from './interface-rules.js';
import type { RingArea, VirtqueueConfig } from './virtqueue-config.js';

/** Longest fault description a snapshot keeps. */
const SNAPSHOT_FAULT_MAX = 1024;

/** The exact 64-bit address of `area` of queue `q`. */
function ringAddress64(q: VirtqueueConfig, area: RingArea): bigint {
  return (BigInt(q.ringHalf(area, 1)) << 32n) | BigInt(q.ringHalf(area, 0));
}

/** The core's own state a snapshot holds, beside its queues. */
export interface CoreState {
  /** device_status (0 for a reset still waiting: nothing of the old life is carried over). */
  readonly status: number;
  readonly features: bigint;
  readonly generation: number;
  /** Whether the device model was activated (see DeviceCore). */
  readonly activated: boolean;
  /** Why DEVICE_NEEDS_RESET was set, if it is. */
  readonly fault: Error | undefined;
}

/** The snapshot of a core in `state` with queues `queues`, of which those in `active` are live. */
export function writeCoreSnapshot(
  state: CoreState,
  queues: readonly VirtqueueConfig[],
  active: readonly (DeviceQueue | null)[],
): SnapshotStruct {
  return struct({
    status: u8(state.status),
    driverFeatures: u64(state.features),
    generation: u8(state.generation),
    activated: flag(state.activated),
    fault: string(state.fault?.message.slice(0, SNAPSHOT_FAULT_MAX) ?? ''),
    queues: list(
      queues.map((q, i) => {
        const ring = active[i];
        if (ring && ring.snapshot === undefined)
          throw new SnapshotError('ERR_SNAPSHOT_UNSUPPORTED', `queue ${i}: its device ring cannot be snapshotted`);
        return struct({
          size: u16(q.size),
          enabled: flag(q.enabled),
          // From the halves: the joined number is not exact beyond 2^53.
          desc: u64(ringAddress64(q, 'desc')),
          driver: u64(ringAddress64(q, 'driver')),
          device: u64(ringAddress64(q, 'device')),
          ring: ring ? ring.snapshot!() : undefined,
        });
      }),
    ),
  });
}

/** What a snapshot is restored into: the core's queues, what it offers, and how it builds a ring. */
export interface RestoreTarget {
  readonly queues: readonly VirtqueueConfig[];
  /** The features offered under the snapshot's interface rules. */
  readonly offered: bigint;
  readonly memory: GuestMemory;
  readonly buildRing: (options: DeviceRingOptions) => DeviceQueue;
}

/** One queue as a snapshot has it, checked, its ring (when live) built from the snapshot. */
export interface QueueImage {
  readonly size: number;
  readonly enabled: boolean;
  readonly areas: Readonly<Record<RingArea, bigint>>;
  readonly ring: DeviceQueue | null;
  /** Chains the device model held in flight: it takes them back from the ring first. */
  readonly redeliver: number;
}

/** A core snapshot, checked; see {@link readCoreSnapshot}. */
export interface CoreImage extends Omit<CoreState, 'fault'> {
  readonly fault: string;
  /** SUSPEND set (3.4): a suspension under way or complete. */
  readonly suspend: boolean;
  readonly queues: readonly QueueImage[];
}

/**
 * Read the core snapshot `r` and check it against `target` under the interface `rules`, changing
 * nothing (SnapshotError otherwise).
 */
export function readCoreSnapshot(r: SnapshotReader, rules: InterfaceRules, target: RestoreTarget): CoreImage {
  const steps = rules.statusSteps ?? MODERN_STATUS_STEPS;
  const status = r.u8('status');
  const known = steps.reduce((bits, step) => bits | step.bit, VIRTIO_CONFIG_S_DEVICE_NEEDS_RESET | VIRTIO_CONFIG_S_SUSPEND);
  if ((status & ~known) !== 0) throw r.rangeError('status', `0x${status.toString(16)} has bits this interface does not define`);
  const broken = steps.find(
    (step) => (status & step.bit) !== 0 && step.bit !== VIRTIO_CONFIG_S_FAILED && (status & step.requires) !== step.requires,
  );
  if (broken !== undefined)
    throw r.rangeError('status', `0x${status.toString(16)} has 0x${broken.bit.toString(16)} without 0x${broken.requires.toString(16)}`);
  const features = r.u64('driverFeatures');
  const offered = target.offered;
  // Before FEATURES_OK the driver may have written anything; accepted features were all offered.
  if ((status & (VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK)) !== 0 && (features & ~offered) !== 0n)
    throw r.rangeError('driverFeatures', `bits ${featureBits(features & ~offered).join(' ')} were never offered`);
  const generation = r.u8('generation');
  const activated = r.flag('activated');
  // SUSPEND (3.4): only on a device live with VIRTIO_F_SUSPEND; suspended, it shows DRIVER_OK clear.
  const suspend = (status & VIRTIO_CONFIG_S_SUSPEND) !== 0;
  if (suspend && (!activated || !hasFeature(features, VIRTIO_F_SUSPEND) || (status & VIRTIO_CONFIG_S_FEATURES_OK) === 0))
    throw r.rangeError('status', `0x${status.toString(16)}: SUSPEND on a device not live with VIRTIO_F_SUSPEND`);
  // DRIVER_OK activates the device; only an interface usable before it (legacy) is live without.
  if (activated !== ((status & VIRTIO_CONFIG_S_DRIVER_OK) !== 0 || suspend) && !(activated && rules.usableBeforeDriverOk === true))
    throw r.rangeError('activated', `${activated ? 'live' : 'not live'} in status 0x${status.toString(16)}`);
  const fault = r.string('fault', SNAPSHOT_FAULT_MAX);
  const queueStates = r.structs('queues', target.queues.length);
  if (queueStates.length !== target.queues.length)
    throw r.error('ERR_SNAPSHOT_QUEUE_COUNT', `${queueStates.length} queues, the device has ${target.queues.length}`);
  const queues = queueStates.map((qr, i): QueueImage => {
    const q = target.queues[i]!;
    const size = qr.int('size', 'u16', 1, q.maxSize);
    if (size !== q.maxSize && !ringFormat(features).isQueueSize(size))
      throw qr.rangeError('size', `${size} is not a ${ringFormat(features).name} ring size`);
    const enabled = qr.flag('enabled');
    const areas = { desc: qr.u64('desc'), driver: qr.u64('driver'), device: qr.u64('device') };
    if (!qr.has('ring')) return { size, enabled, areas, ring: null, redeliver: 0 };
    if (!activated || !enabled) throw qr.error('ERR_SNAPSHOT_IN_FLIGHT', 'a ring for a queue that is not live');
    const addr = (v: bigint): number => (v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : Number.MAX_SAFE_INTEGER);
    const ringAreas = { desc: addr(areas.desc), driver: addr(areas.driver), device: addr(areas.device) };
    try {
      const state = qr.struct('ring');
      const ring = target.buildRing({ index: i, size, memory: target.memory, areas: ringAreas, features, state });
      return { size, enabled, areas, ring, redeliver: modelHeldChains(state) };
    } catch (e) {
      if (e instanceof QueueFaultError) throw qr.rangeError('ring', e.message);
      throw e;
    }
  });
  return { status, features, generation, activated, fault, suspend, queues };
}
