/**
 * The transport-neutral virtio device state that every front-end (modern capabilities now, the
 * legacy BAR0 header) maps onto registers: device status and its transition table (2.1,
 * 3.1.1), feature negotiation (2.2, in one place), per-queue configuration, activation at
 * DRIVER_OK, driver notification dispatch, config_generation, and the decision to send the driver
 * a notification (2.3). How a notification reaches the driver (PCI: ISR bits, MSI-X vectors, INTx)
 * is the transport's: the core speaks no transport's words.
 *
 * Front-ends only translate register accesses into calls here; the rules live here once.
 * Nothing the guest does makes a method throw: guest faults end in DEVICE_NEEDS_RESET.
 */

import type { ActivateContext, ResetCompletion, VirtioDevice, VirtioDeviceHost } from './virtio-device.js';
import type { DeviceObserver, DriverNotification } from './device-observer.js';
import { joinU64, type GuestMemory } from '../memory/guest-memory.js';
import type { AccessSize } from '../memory/access-size.js';
import { QueueFaultError, SnapshotError, UsageError, type QueueFaultCode } from '../errors.js';
import type { SnapshotReader } from '../snapshot/snapshot-reader.js';
import { flag, list, string, struct, u16, u64, u8, type SnapshotStruct } from '../snapshot/snapshot-value.js';
import { DRIVER_REQUIREMENTS as R, type DriverAuditSink, type DriverRequirement } from '../spec/driver-requirements.js';
import { deviceFeatureRequirements } from '../spec/feature-requirements.js';
import { checkQueueMaxSize, ringFormat } from '../queue/ring-format.js';
import { deviceRing, type DeviceRingOptions } from '../queue/rings.js';
import type { DeviceQueue, RingPosition } from '../queue/types.js';
import type { AdminQueueHandler } from './admin-queue-handler.js';
import { modelHeldChains } from '../queue/in-flight-snapshot.js';
import { SuspendGate } from './device-suspend.js';
import {
  VIRTIO_F_ADMIN_VQ,
  VIRTIO_F_EVENT_IDX,
  VIRTIO_F_IN_ORDER,
  VIRTIO_F_INDIRECT_DESC,
  VIRTIO_F_RING_PACKED,
  VIRTIO_F_RING_RESET,
  VIRTIO_F_SUSPEND,
  VIRTIO_F_VERSION_1,
  bit,
  featureBits,
  featureSet,
  featureWord,
  hasFeature,
  requirementMet,
  withFeatureWord,
} from '../spec/features.js';
import {
  VIRTIO_CONFIG_S_ACKNOWLEDGE,
  VIRTIO_CONFIG_S_DEVICE_NEEDS_RESET,
  VIRTIO_CONFIG_S_DRIVER,
  VIRTIO_CONFIG_S_DRIVER_OK,
  VIRTIO_CONFIG_S_FAILED,
  VIRTIO_CONFIG_S_FEATURES_OK,
  VIRTIO_CONFIG_S_SUSPEND,
} from '../spec/status.js';

export type { DriverNotification } from './device-observer.js';

/**
 * How the core sends notifications; each transport implements it on its own mechanism (the PCI
 * transport: ISR bits, MSI-X vectors or INTx, see transport/pci/pci-notifications.ts).
 */
export interface NotificationSink {
  /** The core decided to notify the driver (event suppression already applied). */
  notify(notification: DriverNotification): void;
  /** A device reset (2.4) began: the transport's notification state goes back to its power-on value. */
  reset(): void;
}

/**
 * One row of the status transition table: a driver write may add `bit` only when every bit of
 * `requires` is already set (earlier rows of the same write count) and FAILED is not.
 */
export interface StatusStep {
  readonly bit: number;
  readonly requires: number;
}

/**
 * Spec 3.1.1 (driver initialization) for the modern interface: ACKNOWLEDGE, then DRIVER, then
 * FEATURES_OK (if negotiation succeeds, 2.2.2), then DRIVER_OK; FAILED at any time. Writing 0
 * resets (2.4). DEVICE_NEEDS_RESET is the device's: a driver write neither sets nor clears it.
 * A driver may not clear bits (2.1.1): such a write keeps them. A legacy front-end passes its own
 * table (no FEATURES_OK step).
 */
export const MODERN_STATUS_STEPS: readonly StatusStep[] = [
  { bit: VIRTIO_CONFIG_S_ACKNOWLEDGE, requires: 0 },
  { bit: VIRTIO_CONFIG_S_DRIVER, requires: VIRTIO_CONFIG_S_ACKNOWLEDGE },
  { bit: VIRTIO_CONFIG_S_FEATURES_OK, requires: VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER },
  {
    bit: VIRTIO_CONFIG_S_DRIVER_OK,
    requires: VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK,
  },
  { bit: VIRTIO_CONFIG_S_FAILED, requires: 0 },
];

/**
 * Transport and ring features this implementation supports; offered on top of the device's.
 * VIRTIO_F_RING_RESET is added for devices that implement the queue reset hooks, and
 * VIRTIO_F_RING_PACKED when the device is made with `packed: true` ({@link DeviceCoreOptions}).
 * VIRTIO_F_IN_ORDER is safe for every device model: the queues rings.ts builds for it hold
 * completions back until they are in order (queue/in-order-queue.ts). Bit 35 is beyond the legacy
 * interface's 32 feature bits, so only a modern driver sees it.
 */
export const TRANSPORT_FEATURES = featureSet(VIRTIO_F_VERSION_1, VIRTIO_F_INDIRECT_DESC, VIRTIO_F_EVENT_IDX, VIRTIO_F_IN_ORDER);

/** Feature words a driver can select (bits 0..127: every bit the spec defines). Higher selects read 0. */
export const FEATURE_WORDS = 4;

/** The three ring areas (4.1.4.3: queue_desc, queue_driver, queue_device). */
export type RingArea = 'desc' | 'driver' | 'device';
const RING_AREAS: readonly RingArea[] = ['desc', 'driver', 'device'];

/**
 * What device_status reads while a device reset waits for the old life's backend operations
 * (4.1.4.3.2: the driver waits for a read of 0 before reinitializing). Any non-zero value keeps the
 * driver waiting; DEVICE_NEEDS_RESET also says that the device is not usable yet, and another 0
 * written meanwhile is simply part of the same reset.
 */
export const RESET_PENDING_STATUS = VIRTIO_CONFIG_S_DEVICE_NEEDS_RESET;

/** Track a {@link ResetCompletion}: `done` runs once it settled (at once when there is nothing to wait for). */
function whenSettled(completion: ResetCompletion, done: () => void): void {
  if (completion === undefined) done();
  else completion.then(done, done);
}

/** One virtqueue's configuration as the driver programs it. */
export class VirtqueueConfig {
  size: number;
  enabled = false;
  /** A queue reset (2.6.1.1) waiting for the queue's old operations: queue_reset reads 1 meanwhile. */
  resetPending = false;
  /** lo, hi halves of desc, driver, device. */
  private readonly halves = new Uint32Array(6);

  constructor(
    readonly index: number,
    readonly maxSize: number,
  ) {
    this.size = maxSize;
  }

  ringHalf(area: RingArea, half: 0 | 1): number {
    return this.halves[RING_AREAS.indexOf(area) * 2 + half]!;
  }
  setRingHalf(area: RingArea, half: 0 | 1, value: number): void {
    this.halves[RING_AREAS.indexOf(area) * 2 + half] = value >>> 0;
  }
  /** The 64-bit address (joined, never truncated). */
  ringAddress(area: RingArea): number {
    return joinU64(this.ringHalf(area, 0), this.ringHalf(area, 1));
  }

  reset(): void {
    this.size = this.maxSize;
    this.enabled = false;
    this.resetPending = false;
    this.halves.fill(0);
  }
}

/** The rules of one interface to the core: its status table and the features FEATURES_OK requires. */
export interface InterfaceRules {
  /** The status transition table (default {@link MODERN_STATUS_STEPS}). */
  readonly statusSteps?: readonly StatusStep[];
  /** Features the driver must accept for FEATURES_OK (default VERSION_1, as on the modern interface). */
  readonly requiredFeatures?: bigint;
  /**
   * Features offered through this interface only, on top of the device's and the transport's (the
   * legacy interface's VIRTIO_F_ANY_LAYOUT, 6.3; default none).
   */
  readonly interfaceFeatures?: bigint;
  /**
   * Whether the driver may use the device before DRIVER_OK (the legacy interface, 3.1.2: legacy
   * drivers often did): a notification once the queue set-up bits are set starts the device then,
   * with the features written so far, as if DRIVER_OK had come (default false: 2.1.2, the device
   * consumes no buffer before DRIVER_OK).
   */
  readonly usableBeforeDriverOk?: boolean;
}

export interface DeviceCoreOptions extends InterfaceRules {
  /** Transport features the transport implements beyond the core's own (VERSION_1, INDIRECT_DESC, EVENT_IDX), offered too. */
  readonly transportFeatures?: bigint;
  /**
   * Offer VIRTIO_F_RING_PACKED (2.8), as QEMU's `packed=on`; default false, as QEMU. The driver then
   * chooses the ring format: Linux takes the packed ring whenever it is offered. Feature bit 34 lies
   * beyond the legacy interface's 32-bit feature word, so a driver there never sees it (split ring).
   */
  readonly packed?: boolean;
  /**
   * Offer VIRTIO_F_SUSPEND (3.4, device-suspend.ts); default true: every device model can be
   * suspended, and a driver that does not know the bit (Linux, QEMU's view) simply leaves it. Bit 43
   * lies beyond the legacy interface's feature word.
   */
  readonly suspend?: boolean;
  /** Record the driver-side statements the driver breaks here (the driver audit, core/driver-audit.ts); default none. */
  readonly audit?: DriverAuditSink;
  /**
   * Builds each queue's device ring at DRIVER_OK (default queue/rings.ts's deviceRing): a seam for
   * conformance mutants, which wrap the ring to break one rule of it.
   */
  readonly deviceRing?: (options: DeviceRingOptions) => DeviceQueue;
  /**
   * An administration virtqueue (2.13): VIRTIO_F_ADMIN_VQ is offered and, once negotiated, queue
   * num_queues is the administration queue this handler serves (default none).
   */
  readonly adminQueue?: AdminQueueHandler;
}

/** The statement a ring fault (a guest fault the rings detect) shows broken, per ring format. */
const RING_FAULT_REQUIREMENTS: Partial<Record<QueueFaultCode, readonly [split: DriverRequirement, packed: DriverRequirement]>> = {
  ERR_QUEUE_RING_ADDRESS: [R.splitAlignment, R.packedAlignment],
  ERR_QUEUE_AVAIL_INDEX: [R.splitAvailIdx, R.splitAvailIdx],
  ERR_QUEUE_CHAIN_TOO_LONG: [R.splitChainLength, R.packedChainLength],
  ERR_QUEUE_CHAIN_PAST_AVAIL: [R.packedChainLength, R.packedChainLength],
  ERR_QUEUE_NESTED_INDIRECT: [R.splitIndirectNested, R.packedIndirectFlags],
  ERR_QUEUE_INDIRECT_WITH_NEXT: [R.splitIndirectNext, R.packedIndirectInList],
  ERR_QUEUE_INDIRECT_UNNEGOTIATED: [R.splitIndirectNegotiated, R.packedIndirectNegotiated],
  ERR_QUEUE_WRITE_BEFORE_READ: [R.splitFraming, R.packedFraming],
  ERR_QUEUE_HEAD_IN_USE: [R.cleanupExposedBuffers, R.cleanupExposedBuffers],
  ERR_QUEUE_BUFFER_ID_IN_USE: [R.cleanupExposedBuffers, R.cleanupExposedBuffers],
};

/** The exact 64-bit address of `area` of queue `q`. */
function ringAddress64(q: VirtqueueConfig, area: RingArea): bigint {
  return (BigInt(q.ringHalf(area, 1)) << 32n) | BigInt(q.ringHalf(area, 0));
}

/** Longest fault description a snapshot keeps. */
const SNAPSHOT_FAULT_MAX = 1024;

function asError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
}

/** See the file comment. Implements the {@link VirtioDeviceHost} the device model is attached to. */
export class DeviceCore implements VirtioDeviceHost {
  /** Features offered through every interface: the device's plus the transport's. */
  private readonly commonFeatures: bigint;
  /** Features offered through the current interface only (see {@link InterfaceRules.interfaceFeatures}). */
  private interfaceFeatures = 0n;
  /** The device's own queues (num_queues); the administration queue is {@link adminQueue}. */
  readonly queues: readonly VirtqueueConfig[];
  /** The administration queue's configuration, at index num_queues (VIRTIO_F_ADMIN_VQ offered), else undefined. */
  readonly adminQueue: VirtqueueConfig | undefined;
  private readonly adminHandler: AdminQueueHandler | undefined;
  private steps: readonly StatusStep[] = MODERN_STATUS_STEPS;
  private requiredFeatures = 0n;
  /** Status bits queue configuration needs: those DRIVER_OK requires. */
  private queueSetupRequires = 0;
  private statusValue = 0;
  private driverFeatureBits = 0n;
  private generation = 0;
  /** Queues live since DRIVER_OK (null where not enabled). */
  private active: (DeviceQueue | null)[] = [];
  /** Whether the device model was activated since the last reset (at DRIVER_OK, or at first use, see {@link InterfaceRules.usableBeforeDriverOk}). */
  private activated = false;
  private usableBeforeDriverOk = false;
  private readonly resetListeners: (() => void)[] = [];
  /** Resets written so far; a completion only finishes the latest one. */
  private resets = 0;
  /** A device reset waits for the old life's backend operations (see {@link reset}). */
  private resetting = false;
  /** Why DEVICE_NEEDS_RESET was set, for diagnostics; cleared by reset. */
  fault: Error | undefined;
  /** Where the driver's broken statements go (the driver audit), when auditing. */
  readonly audit: DriverAuditSink | undefined;
  /** Whether the driver has reset the device since power-on (audit only: 3.1.1 starts with a reset). */
  private resetWritten = false;
  private readonly buildRing: (options: DeviceRingOptions) => DeviceQueue;
  /** Who watches this device (a transport monitor), if anyone: see core/device-observer.ts. */
  private observer: DeviceObserver | undefined;
  /** The suspension state of this life's queues (3.4); a new gate at every activation and reset. */
  private gate = new SuspendGate();

  constructor(
    readonly device: VirtioDevice,
    readonly memory: GuestMemory,
    private readonly notifications: NotificationSink,
    options: DeviceCoreOptions = {},
  ) {
    this.useRules(options);
    this.audit = options.audit;
    this.buildRing = options.deviceRing ?? deviceRing;
    const ringReset = device.resetQueue !== undefined && device.enableQueue !== undefined ? bit(VIRTIO_F_RING_RESET) : 0n;
    const packed = options.packed === true ? bit(VIRTIO_F_RING_PACKED) : 0n;
    const admin = options.adminQueue;
    const adminVq = admin !== undefined ? bit(VIRTIO_F_ADMIN_VQ) : 0n;
    const suspend = options.suspend === false ? 0n : bit(VIRTIO_F_SUSPEND);
    this.commonFeatures =
      device.deviceFeatures | TRANSPORT_FEATURES | ringReset | packed | adminVq | suspend | (options.transportFeatures ?? 0n);
    this.queues = device.queueMaxSizes.map((max, i) => {
      checkQueueMaxSize(`queue ${i}: maximum size`, max);
      return new VirtqueueConfig(i, max);
    });
    if (admin !== undefined) checkQueueMaxSize('administration queue: maximum size', admin.queueMaxSize);
    this.adminHandler = admin;
    this.adminQueue = admin === undefined ? undefined : new VirtqueueConfig(this.queues.length, admin.queueMaxSize);
    device.attach(this);
  }

  /**
   * Switch to another interface's rules (a transitional device's front-ends do, when the driver
   * commits to one of them). Only while the device is reset (status 0): the rules never change under
   * a driver in the middle of initialisation.
   */
  useRules(rules: InterfaceRules): void {
    if (this.statusValue !== 0) throw new RangeError('interface rules change only while the device is reset');
    const steps = rules.statusSteps ?? MODERN_STATUS_STEPS;
    const driverOk = steps.find((step) => step.bit === VIRTIO_CONFIG_S_DRIVER_OK);
    if (driverOk === undefined) throw new RangeError('the status table has no DRIVER_OK step');
    this.steps = steps;
    this.queueSetupRequires = driverOk.requires;
    this.requiredFeatures = rules.requiredFeatures ?? bit(VIRTIO_F_VERSION_1);
    this.interfaceFeatures = rules.interfaceFeatures ?? 0n;
    this.usableBeforeDriverOk = rules.usableBeforeDriverOk ?? false;
  }

  /** Features offered: the device's, the transport's and the current interface's. */
  get offeredFeatures(): bigint {
    return this.commonFeatures | this.interfaceFeatures;
  }

  /**
   * Let `observer` watch the device (one at a time: UsageError if another watches); returns the
   * function that stops it.
   */
  observe(observer: DeviceObserver): () => void {
    if (this.observer !== undefined) throw new UsageError('the device already has an observer');
    this.observer = observer;
    return () => {
      if (this.observer === observer) this.observer = undefined;
    };
  }

  /** Where live queue `index`'s ring stands (for monitors), or undefined while the queue is not live. */
  queuePosition(index: number): RingPosition | undefined {
    return this.active[index]?.position();
  }

  /** Run `listener` when every device reset completes (front-ends clear their select registers). */
  onReset(listener: () => void): void {
    this.resetListeners.push(listener);
  }

  /** device_status as the driver reads it: {@link RESET_PENDING_STATUS} until a reset completes. */
  get status(): number {
    return this.resetting ? RESET_PENDING_STATUS : this.statusValue;
  }
  get driverFeatures(): bigint {
    return this.driverFeatureBits;
  }
  /** The negotiated features once FEATURES_OK is set, else 0. */
  get negotiatedFeatures(): bigint {
    return (this.statusValue & VIRTIO_CONFIG_S_FEATURES_OK) !== 0 ? this.driverFeatureBits : 0n;
  }
  get configGeneration(): number {
    return this.generation;
  }
  /** Whether a device reset waits for the old life's operations (driver writes other than a reset are ignored). */
  get resetPending(): boolean {
    return this.resetting;
  }
  /** Whether the device has stopped on a fault until reset. */
  get needsResetSet(): boolean {
    return (this.statusValue & VIRTIO_CONFIG_S_DEVICE_NEEDS_RESET) !== 0;
  }

  /** Every queue the transport addresses: the device's and, when offered, the administration queue. */
  get queueCount(): number {
    return this.queues.length + (this.adminQueue === undefined ? 0 : 1);
  }

  /**
   * admin_queue_index and admin_queue_num (4.1.4.3): valid once VIRTIO_F_ADMIN_VQ is negotiated,
   * undefined before (the fields then read 0).
   */
  get adminQueueRange(): { readonly index: number; readonly num: number } | undefined {
    return this.adminQueue !== undefined && hasFeature(this.negotiatedFeatures, VIRTIO_F_ADMIN_VQ)
      ? { index: this.adminQueue.index, num: 1 }
      : undefined;
  }

  /**
   * Queue `index` as the driver can select it: one of the device's, or the administration queue
   * once VIRTIO_F_ADMIN_VQ is negotiated (before that it is unavailable: queue_size reads 0).
   */
  queueConfig(index: number): VirtqueueConfig | undefined {
    if (index >= 0 && index < this.queues.length) return this.queues[index];
    return this.adminQueueRange !== undefined && index === this.adminQueue!.index ? this.adminQueue : undefined;
  }

  // ---- features (2.2) ----

  /** 32-bit word `select` of the offered features (0 beyond {@link FEATURE_WORDS}). */
  deviceFeatureWord(select: number): number {
    return select >= 0 && select < FEATURE_WORDS ? featureWord(this.offeredFeatures, select) : 0;
  }
  driverFeatureWord(select: number): number {
    return select >= 0 && select < FEATURE_WORDS ? featureWord(this.driverFeatureBits, select) : 0;
  }
  /** The driver writes word `select` of its features; ignored once FEATURES_OK is set (2.2). */
  setDriverFeatureWord(select: number, value: number): void {
    if (
      this.audit !== undefined &&
      (this.statusValue & VIRTIO_CONFIG_S_FEATURES_OK) !== 0 &&
      (value & ~this.driverFeatureWord(select)) !== 0
    )
      this.audit(
        R.initNoNewFeatures,
        `feature word ${select} written 0x${(value >>> 0).toString(16)} after FEATURES_OK (accepted 0x${this.driverFeatureWord(select).toString(16)})`,
      );
    if (this.resetting || select < 0 || select >= FEATURE_WORDS || (this.statusValue & VIRTIO_CONFIG_S_FEATURES_OK) !== 0) return;
    this.driverFeatureBits = withFeatureWord(this.driverFeatureBits, select, value);
  }

  /** 2.2.2: FEATURES_OK only for a subset of the offer with the required bits, that the device accepts. */
  private featuresAcceptable(): boolean {
    const f = this.driverFeatureBits;
    if ((f & ~this.offeredFeatures) !== 0n || (f & this.requiredFeatures) !== this.requiredFeatures) return false;
    try {
      return this.device.acceptFeatures?.(f) ?? true;
    } catch {
      return false;
    }
  }

  // ---- status (2.1, 3.1.1) ----

  /** A driver write of device_status: 0 resets; while a reset is pending nothing else is taken. */
  writeStatus(value: number): void {
    value &= 0xff;
    if (value === 0) {
      this.resetWritten = true;
      this.reset();
      return;
    }
    if (this.resetting) return;
    if (this.audit !== undefined) this.auditStatusWrite(value);
    const before = this.statusValue;
    this.suspendOrResume(value);
    for (const step of this.steps) {
      const s = this.statusValue;
      if ((value & step.bit) === 0 || (s & step.bit) !== 0) continue;
      if ((s & step.requires) !== step.requires) {
        this.audit?.(
          R.initStatusOrder,
          `status bit 0x${step.bit.toString(16)} set while status is 0x${s.toString(16)} (it needs 0x${step.requires.toString(16)})`,
        );
        continue;
      }
      if (step.bit !== VIRTIO_CONFIG_S_FAILED && (s & VIRTIO_CONFIG_S_FAILED) !== 0) continue;
      if (step.bit === VIRTIO_CONFIG_S_FEATURES_OK) {
        if (this.audit !== undefined) this.auditFeatures();
        if (!this.featuresAcceptable()) continue;
      }
      // The legacy interface has no FEATURES_OK: the features are final when the device goes live.
      if (step.bit === VIRTIO_CONFIG_S_DRIVER_OK && this.audit !== undefined && !this.hasFeaturesOkStep) this.auditFeatures();
      this.statusValue |= step.bit;
      // A device already in use (before DRIVER_OK, legacy) keeps running as it is.
      if (step.bit === VIRTIO_CONFIG_S_DRIVER_OK && !this.activated) this.activate();
    }
    if (this.observer !== undefined && this.statusValue !== before) this.observer.statusChanged(this.statusValue, 'driver');
  }

  /**
   * 3.4: SUSPEND set by the driver of a live device with VIRTIO_F_SUSPEND starts a suspension (any
   * other SUSPEND write is ignored, 3.4.2); once the chains in flight are used the device shows
   * DRIVER_OK clear. DRIVER_OK written to a suspended device resumes it. A driver cannot cancel a
   * suspension under way: only reset or the resume end it.
   */
  private suspendOrResume(value: number): void {
    const s = this.statusValue;
    if (this.gate.state === 'suspended') {
      if ((value & VIRTIO_CONFIG_S_DRIVER_OK) !== 0) this.resume();
      return;
    }
    if ((value & VIRTIO_CONFIG_S_SUSPEND) === 0 || (s & VIRTIO_CONFIG_S_SUSPEND) !== 0) return;
    const negotiated = hasFeature(this.negotiatedFeatures, VIRTIO_F_SUSPEND);
    if (!negotiated || (s & VIRTIO_CONFIG_S_DRIVER_OK) === 0 || (s & (VIRTIO_CONFIG_S_FAILED | VIRTIO_CONFIG_S_DEVICE_NEEDS_RESET)) !== 0) {
      this.audit?.(
        R.suspendWhenLive,
        `SUSPEND set in status 0x${s.toString(16)}${negotiated ? '' : ' without VIRTIO_F_SUSPEND negotiated'}`,
      );
      return;
    }
    this.statusValue |= VIRTIO_CONFIG_S_SUSPEND;
    this.startSuspension();
  }

  /**
   * SUSPEND is set: stop taking chains (but for the first `takeBack` pops: the chains a restored model
   * held); once those in flight are used, show DRIVER_OK clear.
   */
  private startSuspension(takeBack = 0): void {
    const gate = this.gate;
    gate.suspend(takeBack, () => {
      if (gate === this.gate && !this.needsResetSet) this.statusValue &= ~VIRTIO_CONFIG_S_DRIVER_OK;
    });
    try {
      this.device.suspend?.();
    } catch (e) {
      this.needsReset(asError(e));
    }
  }

  /** 3.4: the suspended device runs again, sends what it held back and looks at every live ring. */
  private resume(): void {
    this.statusValue = (this.statusValue & ~VIRTIO_CONFIG_S_SUSPEND) | VIRTIO_CONFIG_S_DRIVER_OK;
    const held = this.gate.resume();
    for (const queue of held.usedQueues) this.send({ kind: 'used-buffer', queue });
    if (held.configChange) this.send({ kind: 'configuration-change' });
    for (const q of this.active) {
      if (q === null || !this.live) continue;
      try {
        this.device.queueNotify(q.index);
      } catch (e) {
        this.needsReset(asError(e));
      }
    }
  }

  /** Whether SUSPEND shows: a suspension under way or complete (3.4). */
  private get suspendSet(): boolean {
    return (this.statusValue & VIRTIO_CONFIG_S_SUSPEND) !== 0;
  }

  /** Whether the interface has the FEATURES_OK step (the modern interface does, the legacy one not). */
  private get hasFeaturesOkStep(): boolean {
    return this.steps.some((step) => step.bit === VIRTIO_CONFIG_S_FEATURES_OK);
  }

  /** Audit: the status rules a non-zero write can break (2.1.1, 3.1.1). */
  private auditStatusWrite(value: number): void {
    const audit = this.audit!;
    const s = this.statusValue;
    // DEVICE_NEEDS_RESET is the device's bit: a driver write neither keeps nor clears it.
    // SUSPEND: the device clears it on resume (3.4), so the resume write may leave it 0.
    const cleared = s & ~value & ~(VIRTIO_CONFIG_S_DEVICE_NEEDS_RESET | VIRTIO_CONFIG_S_SUSPEND);
    if (cleared !== 0)
      audit(R.statusNoClear, `status 0x${s.toString(16)} written 0x${value.toString(16)}: clears 0x${cleared.toString(16)}`);
    const added = value & ~s & ~VIRTIO_CONFIG_S_FAILED;
    if ((s & VIRTIO_CONFIG_S_FAILED) !== 0 && added !== 0)
      audit(R.statusResetAfterFailed, `status 0x${s.toString(16)} (FAILED) written 0x${value.toString(16)} without a reset`);
    if ((added & VIRTIO_CONFIG_S_ACKNOWLEDGE) !== 0 && !this.resetWritten)
      audit(R.initResetFirst, `ACKNOWLEDGE set with no reset written since power-on`);
  }

  /** Audit: the accepted features against the offer and their dependencies (2.2.1, 6.1). */
  private auditFeatures(): void {
    const audit = this.audit!;
    const f = this.driverFeatureBits;
    const unoffered = f & ~this.offeredFeatures;
    if (unoffered !== 0n) audit(R.featuresOnlyOffered, `accepted feature bits ${featureBits(unoffered).join(' ')} that were not offered`);
    for (const r of deviceFeatureRequirements(this.device.deviceType))
      if (!requirementMet(f, r))
        audit(
          R.featuresDependencies,
          `accepted feature ${r.feature} without ${r.requires.map((group) => group.join(' or ')).join(' and ')}`,
        );
    if (hasFeature(this.offeredFeatures, VIRTIO_F_VERSION_1) && !hasFeature(f, VIRTIO_F_VERSION_1) && this.hasFeaturesOkStep)
      audit(R.featuresVersion1, `FEATURES_OK with VIRTIO_F_VERSION_1 offered but not accepted`);
  }

  /**
   * 2.4 device reset: back to the power-on state, queues, features and the transport's notification
   * state included. The
   * device stops using its queues at once; when its backends still have operations of the old life
   * outstanding, the reset completes only once they have all settled, so that after device_status
   * reads 0 nothing of the old life touches guest memory or the backend any more. Until then
   * device_status reads {@link RESET_PENDING_STATUS} and every driver write except another reset is
   * ignored (4.1.4.3.2: the driver waits for 0 first), so no new request starts either.
   */
  reset(): void {
    // Status first: whatever the device does while resetting (configChanged, a late usedBuffers)
    // then meets a reset device and sends no notification.
    this.statusValue = 0;
    this.active = [];
    this.activated = false;
    this.gate = new SuspendGate();
    const completion = this.device.reset();
    this.adminHandler?.reset();
    this.driverFeatureBits = 0n;
    this.fault = undefined;
    for (const q of this.queues) q.reset();
    this.adminQueue?.reset();
    this.notifications.reset();
    const serial = ++this.resets;
    this.resetting = true;
    this.observer?.statusChanged(0, 'reset');
    whenSettled(completion, () => {
      if (serial !== this.resets) return;
      this.resetting = false;
      for (const listener of this.resetListeners) listener();
    });
  }

  /** Whether VIRTIO_F_RING_RESET was negotiated (queues can be reset and re-enabled while live). */
  get ringResetNegotiated(): boolean {
    return hasFeature(this.negotiatedFeatures, VIRTIO_F_RING_RESET);
  }

  /** A live queue over `q`'s rings (the constructor validates them; throws QueueFaultError). */
  private buildQueue(q: VirtqueueConfig): DeviceQueue {
    const areas = { desc: q.ringAddress('desc'), driver: q.ringAddress('driver'), device: q.ringAddress('device') };
    return this.buildRing({ index: q.index, size: q.size, memory: this.memory, areas, features: this.driverFeatureBits });
  }

  /** DRIVER_OK: build the enabled queues (validating their rings) and hand them to the device. */
  private activate(): void {
    const features = this.driverFeatureBits;
    this.activated = true;
    this.gate = new SuspendGate();
    try {
      this.active = this.queues.map((q) => (q.enabled ? this.buildQueue(q) : null));
      // The model sees its queues through the suspend gate (device-suspend.ts); the administration
      // queue lives beside them, never among them.
      const ctx: ActivateContext = { features, queues: this.active.map((q) => q && this.gate.wrap(q)) };
      if (this.adminQueue?.enabled === true) this.active[this.adminQueue.index] = this.buildQueue(this.adminQueue);
      this.device.activate(ctx);
    } catch (e) {
      this.needsReset(asError(e));
    }
  }

  // ---- queues (4.1.4.3) ----

  /**
   * Queue configuration may change while the queue is disabled, once everything DRIVER_OK requires
   * is set and before DRIVER_OK itself (3.1.1 step 7): after FEATURES_OK on the modern interface;
   * the table decides for other interfaces.
   */
  queueWritable(index: number): boolean {
    const q = this.queueConfig(index);
    // 3.4.2: a suspended device ignores configuration writes.
    if (q === undefined || q.enabled || q.resetPending || this.suspendSet) return false;
    // 2.6.1.2: with RING_RESET a disabled (reset) queue is set up again while the device is live.
    if ((this.statusValue & VIRTIO_CONFIG_S_DRIVER_OK) !== 0) return this.ringResetNegotiated && !this.needsResetSet;
    return this.inQueueSetup();
  }
  private inQueueSetup(): boolean {
    const s = this.statusValue;
    return (s & this.queueSetupRequires) === this.queueSetupRequires && (s & (VIRTIO_CONFIG_S_DRIVER_OK | VIRTIO_CONFIG_S_SUSPEND)) === 0;
  }

  /** A size the negotiated ring format allows (2.6), no larger than the maximum; anything else is ignored. */
  setQueueSize(index: number, size: number): void {
    const q = this.queueConfig(index);
    if (this.audit !== undefined) this.auditQueueSetup(index, 'queue_size');
    if (q !== undefined && this.queueWritable(index) && ringFormat(this.negotiatedFeatures).isQueueSize(size) && size <= q.maxSize)
      q.size = size;
  }
  setQueueRingHalf(index: number, area: RingArea, half: 0 | 1, value: number): void {
    if (this.audit !== undefined) this.auditQueueSetup(index, `the ${area} area address`);
    if (this.queueWritable(index)) this.queueConfig(index)!.setRingHalf(area, half, value);
  }
  /** Audit: queue fields change only while the queue is disabled, in the set-up state (3.1.1, 4.1.4.3.2). */
  private auditQueueSetup(index: number, field: string): void {
    const q = this.queueConfig(index);
    // With ADMIN_VQ every index past num_queues is an administration queue's: only the range reported may be set up.
    if (q === undefined && index >= this.queues.length && this.adminQueueRange !== undefined)
      this.audit!(
        R.commonAdminQueueRange,
        `${field} of queue ${index} written; the administration queues are ${this.adminQueueRange.index}..${this.adminQueueRange.index + this.adminQueueRange.num - 1}`,
      );
    if (q === undefined || q.resetPending || this.queueWritable(index)) return;
    if (this.suspendSet) this.audit!(R.suspendNoConfigWrite, `${field} of queue ${index} written while SUSPEND is set`);
    else if (q.enabled) this.audit!(R.commonConfigureBeforeEnable, `${field} of queue ${index} written after the queue was enabled`);
    else this.audit!(R.initQueueSetupState, `${field} of queue ${index} written in status 0x${this.statusValue.toString(16)}`);
  }
  enableQueue(index: number): void {
    if (this.audit !== undefined) this.auditQueueSetup(index, 'queue_enable');
    if (!this.queueWritable(index)) return;
    const q = this.queueConfig(index)!;
    q.enabled = true;
    if (!this.activated) return;
    // Re-enabled after a queue reset (2.6.1.2), or enabled in a device used before DRIVER_OK: live at once.
    try {
      const queue = this.buildQueue(q);
      this.active[index] = queue;
      if (q !== this.adminQueue) this.device.enableQueue?.(this.gate.wrap(queue));
    } catch (e) {
      this.needsReset(asError(e));
    }
  }

  /**
   * 2.6.1.1 queue reset (RING_RESET negotiated, device live): the device stops using the queue and
   * drops its requests; the queue is disabled with its default size and no rings (the transport's
   * notification settings for the queue, such as its MSI-X vector, are kept).
   * As with a device reset, the queue reset completes (queue_reset reads 0 again, the queue can be
   * set up) only once the queue's old backend operations have settled.
   */
  resetQueue(index: number): void {
    const q = this.queueConfig(index);
    if (q === undefined || q.resetPending || !this.ringResetNegotiated || (this.statusValue & VIRTIO_CONFIG_S_DRIVER_OK) === 0) return;
    if (this.suspendSet) {
      this.audit?.(R.suspendNoConfigWrite, `queue_reset of queue ${index} written while SUSPEND is set`);
      return;
    }
    this.active[index] = null;
    let completion: ResetCompletion = undefined;
    try {
      // The administration queue answers each command as it is notified: nothing of it is in flight.
      if (q !== this.adminQueue) completion = this.device.resetQueue?.(index);
    } catch (e) {
      this.needsReset(asError(e));
    }
    q.reset();
    const serial = this.resets;
    q.resetPending = true;
    // A device reset meanwhile has reset the queue (and waits for the device's operations itself).
    whenSettled(completion, () => {
      if (serial === this.resets) q.resetPending = false;
    });
  }
  /**
   * Take an enabled queue back to disabled with no rings, in the states queue set-up is allowed
   * (the legacy interface's queue PFN 0, 4.1.4.10).
   */
  disableQueue(index: number): void {
    const q = this.queues[index];
    if (q === undefined || !this.inQueueSetup()) return;
    if (q.enabled && this.active[index]) {
      // Live in a device used before DRIVER_OK: the device model stops using it first.
      this.active[index] = null;
      try {
        whenSettled(this.device.resetQueue?.(index), () => undefined);
      } catch (e) {
        this.needsReset(asError(e));
      }
    }
    q.enabled = false;
    for (const area of RING_AREAS) for (const half of [0, 1] as const) q.setRingHalf(area, half, 0);
  }

  /**
   * Whether the device serves its queues: activated (at DRIVER_OK, or before it on an interface
   * that allows that, on the first notification), DEVICE_NEEDS_RESET not set and not suspending (3.4).
   */
  private get live(): boolean {
    return this.activated && !this.needsResetSet && !this.suspendSet;
  }

  /** A notification before DRIVER_OK on an interface that allows use then: start the device now. */
  private activateOnFirstUse(): void {
    if (this.activated || !this.usableBeforeDriverOk || this.resetting || !this.inQueueSetup()) return;
    if ((this.statusValue & (VIRTIO_CONFIG_S_FAILED | VIRTIO_CONFIG_S_DEVICE_NEEDS_RESET)) !== 0) return;
    this.activate();
  }

  /**
   * The driver notified queue `index` (2.9). `next` (bits 16-31 of the notification: next_off and
   * next_wrap, see queue/notification-data.ts) comes only with VIRTIO_F_NOTIFICATION_DATA; a value
   * the negotiated ring format rules out is a guest fault. Faults set NEEDS_RESET.
   */
  notify(index: number, next?: number): void {
    // The legacy interface lets a driver use the queues before DRIVER_OK (3.1.2).
    if (this.suspendSet) this.audit?.(R.suspendNoNotify, `queue ${index} notified while SUSPEND is set`);
    else if (this.audit !== undefined && (this.statusValue & VIRTIO_CONFIG_S_DRIVER_OK) === 0 && !this.usableBeforeDriverOk)
      this.audit(R.initNoNotifyBeforeDriverOk, `queue ${index} notified in status 0x${this.statusValue.toString(16)}`);
    this.observer?.queueNotified(index);
    this.activateOnFirstUse();
    if (!this.live) return;
    const q = this.queueConfig(index);
    const live = this.active[index];
    if (!live || q === undefined) return;
    if (next !== undefined && !ringFormat(this.negotiatedFeatures).isNotificationNext(next, q.size)) {
      this.rejectNotification(index, `notification data next 0x${next.toString(16)} is impossible for a queue of size ${q.size}`);
      return;
    }
    try {
      if (q === this.adminQueue) this.serveAdmin(live);
      else this.device.queueNotify(index, next);
    } catch (e) {
      this.needsReset(asError(e));
    }
  }

  /** The administration queue was notified: its handler answers every command queued (throws on a ring fault). */
  private serveAdmin(queue: DeviceQueue): void {
    if (this.adminHandler!.serve(queue, this.audit)) this.usedBuffers(queue.index);
  }

  /**
   * A driver notification for queue `index` that breaks the transport's rules (width, queue
   * identifier): a guest fault (QueueFaultError ERR_QUEUE_NOTIFICATION) while the device is live,
   * ignored otherwise (as every notification is then).
   */
  rejectNotification(index: number, why: string): void {
    if (this.live) this.needsReset(new QueueFaultError('ERR_QUEUE_NOTIFICATION', index, why));
  }

  // ---- device configuration (4.1.4.6) ----

  /** Device config read, or undefined when [offset, offset + size) is outside it. */
  readDeviceConfig(offset: number, size: AccessSize): number | undefined {
    if (offset < 0 || offset + size > this.device.configSize) return undefined;
    return this.device.readConfig(offset, size);
  }
  writeDeviceConfig(offset: number, size: AccessSize, value: number): void {
    if (this.audit !== undefined && this.hasFeaturesOkStep && (this.statusValue & VIRTIO_CONFIG_S_FEATURES_OK) === 0)
      this.audit(R.initNoConfigWrite, `device configuration offset ${offset} written in status 0x${this.statusValue.toString(16)}`);
    if (this.suspendSet) {
      // 3.4.2: ignored while suspended (and while a suspension is under way, which the driver may not disturb either).
      this.audit?.(R.suspendNoConfigWrite, `device configuration offset ${offset} written while SUSPEND is set`);
      return;
    }
    if (!this.resetting && offset >= 0 && offset + size <= this.device.configSize) this.device.writeConfig(offset, size, value);
  }

  // ---- VirtioDeviceHost ----

  configChanged(): void {
    this.configChangedByDriver();
    // Suspended (DRIVER_OK clear, SUSPEND set): told when the device resumes (3.4.2).
    if ((this.statusValue & (VIRTIO_CONFIG_S_DRIVER_OK | VIRTIO_CONFIG_S_SUSPEND)) !== 0 && this.gate.admitConfigChange())
      this.send({ kind: 'configuration-change' });
  }

  configChangedByDriver(): void {
    this.generation = (this.generation + 1) & 0xff;
  }

  usedBuffers(index: number): void {
    if (this.needsResetSet) return;
    const q = this.active[index];
    if (!q) return;
    let wanted: boolean;
    try {
      wanted = q.needsInterrupt();
    } catch (e) {
      this.needsReset(asError(e));
      return;
    }
    if (wanted && this.gate.admitUsed(index)) this.send({ kind: 'used-buffer', queue: index });
  }

  /** Send the driver a notification through the transport (and tell the observer). */
  private send(notification: DriverNotification): void {
    this.notifications.notify(notification);
    this.observer?.notificationSent(notification);
  }

  // ---- snapshots (docs/snapshots.md) ----

  /**
   * The core's state: status, features, config_generation, each queue's configuration and, for a
   * live queue, its ring with the chains in flight. A reset that waits for the old life's operations
   * is taken as completed: nothing of that life is carried over.
   */
  snapshot(): SnapshotStruct {
    return struct({
      status: u8(this.resetting ? 0 : this.statusValue),
      driverFeatures: u64(this.driverFeatureBits),
      generation: u8(this.generation),
      activated: flag(this.activated),
      fault: string(this.fault?.message.slice(0, SNAPSHOT_FAULT_MAX) ?? ''),
      queues: list(
        this.queues.map((q, i) => {
          const ring = this.active[i];
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

  /**
   * Check the snapshot `r` of the core and `device` of the device model against this core under the
   * interface `rules`, changing nothing (SnapshotError otherwise), and return what applies them: the
   * model's state, then the core's, then the model activated with the restored queues, each of
   * which hands the model its chains in flight again. Only a reset core takes a snapshot
   * ('ERR_SNAPSHOT_TARGET_BUSY' otherwise).
   */
  prepareRestore(r: SnapshotReader, device: SnapshotReader, rules: InterfaceRules): () => void {
    if (this.statusValue !== 0 || this.resetting || this.activated)
      throw r.error('ERR_SNAPSHOT_TARGET_BUSY', `the device is in use (status 0x${this.status.toString(16)}): restore into a reset device`);
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
    const offered = this.commonFeatures | (rules.interfaceFeatures ?? 0n);
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
    const queueStates = r.structs('queues', this.queues.length);
    if (queueStates.length !== this.queues.length)
      throw r.error('ERR_SNAPSHOT_QUEUE_COUNT', `${queueStates.length} queues, the device has ${this.queues.length}`);
    const queues = queueStates.map((qr, i) => {
      const q = this.queues[i]!;
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
        const ring = this.buildRing({ index: i, size, memory: this.memory, areas: ringAreas, features, state });
        return { size, enabled, areas, ring, redeliver: modelHeldChains(state) };
      } catch (e) {
        if (e instanceof QueueFaultError) throw qr.rangeError('ring', e.message);
        throw e;
      }
    });
    if (this.device.prepareRestore === undefined) throw device.error('ERR_SNAPSHOT_UNSUPPORTED', 'the device model cannot be restored');
    const applyDevice = this.device.prepareRestore(device);
    return () => {
      this.useRules(rules);
      applyDevice();
      this.driverFeatureBits = features;
      this.generation = generation;
      this.fault = fault === '' ? undefined : new Error(fault);
      queues.forEach(({ size, enabled, areas }, i) => {
        const q = this.queues[i]!;
        q.size = size;
        q.enabled = enabled;
        for (const area of RING_AREAS) {
          q.setRingHalf(area, 0, Number(areas[area] & 0xffff_ffffn));
          q.setRingHalf(area, 1, Number(areas[area] >> 32n));
        }
      });
      this.active = queues.map((q) => q.ring);
      this.statusValue = status;
      this.activated = activated;
      this.gate = new SuspendGate();
      if (!activated || this.needsResetSet) return;
      try {
        this.device.activate({ features, queues: this.active.map((q) => q && this.gate.wrap(q)) });
        // The model had requests in flight on these queues: it takes them back from the rings now.
        // A suspended device has nothing in flight: it stays suspended, and tells the driver at resume
        // whatever it may have held back (the snapshot does not keep that: one notification each, maybe spurious).
        if (suspend && (status & VIRTIO_CONFIG_S_DRIVER_OK) === 0)
          this.gate.restoreSuspended(this.active.flatMap((q, i) => (q === null ? [] : [i])));
        // A suspension under way carries on: the model takes back the chains it held, and no others.
        else if (suspend) this.startSuspension(queues.reduce((n, q) => n + q.redeliver, 0));
        queues.forEach((q, i) => q.redeliver > 0 && this.device.queueNotify(i));
      } catch (e) {
        this.needsReset(asError(e));
      }
    };
  }

  /** 2.1.2: set DEVICE_NEEDS_RESET, stop serving queues, and tell a live driver by a configuration change notification. */
  needsReset(cause: Error): void {
    // A reset device has no driver to tell and nothing in flight to stop.
    if (this.needsResetSet || this.statusValue === 0) return;
    if (this.audit !== undefined && cause instanceof QueueFaultError) {
      const broken = RING_FAULT_REQUIREMENTS[cause.code]?.[hasFeature(this.driverFeatureBits, VIRTIO_F_RING_PACKED) ? 1 : 0];
      if (broken !== undefined) this.audit(broken, cause.message);
    }
    this.fault = cause;
    this.statusValue |= VIRTIO_CONFIG_S_DEVICE_NEEDS_RESET;
    this.observer?.statusChanged(this.statusValue, 'device');
    if ((this.statusValue & VIRTIO_CONFIG_S_DRIVER_OK) !== 0) this.send({ kind: 'configuration-change' });
  }
}
