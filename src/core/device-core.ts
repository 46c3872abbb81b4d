/**
 * The transport-neutral virtio device state that every front-end (modern capabilities now, the
 * legacy BAR0 header) maps onto registers: device status (2.1, 3.1.1), feature negotiation (2.2),
 * per-queue configuration, activation at DRIVER_OK, driver notification dispatch,
 * config_generation, and the decision to send the driver a notification (2.3). How a notification
 * reaches the driver (PCI: ISR bits, MSI-X vectors, INTx) is the transport's: the core speaks no
 * transport's words. The core ties together what lives beside it, one concept a file: the status
 * table (device-status.ts), feature negotiation (feature-negotiation.ts), each queue's configuration
 * (virtqueue-config.ts), resets that wait for the old life (device-reset.ts), suspension
 * (device-suspend.ts, suspend-resume.ts), notifications both ways (notifications.ts) and the
 * core's snapshot (core-snapshot.ts).
 *
 * Front-ends only translate register accesses into calls here; the rules live here once.
 * Nothing the guest does makes a method throw: guest faults end in DEVICE_NEEDS_RESET.
 */

import { asError, type VirtioDevice, type VirtioDeviceHost } from './virtio-device.js';
import type { DeviceObserver } from './device-observer.js';
import type { GuestMemory } from '../memory/guest-memory.js';
import type { AccessSize } from '../memory/access-size.js';
import { QueueFaultError, UsageError } from '../errors.js';
import type { SnapshotReader } from '../snapshot/snapshot-reader.js';
import type { SnapshotStruct } from '../snapshot/snapshot-value.js';
import { DRIVER_REQUIREMENTS as R, type DriverAuditSink } from '../spec/driver-requirements.js';
import { ringFaultRequirement } from './driver-audit.js';
import { deviceRing, type DeviceRingOptions } from '../queue/rings.js';
import type { DeviceQueue, RingPosition } from '../queue/types.js';
import type { AdminQueueHandler } from './admin-queue-handler.js';
import { DeviceStatus, MODERN_STATUS_STEPS, auditStatusWrite } from './device-status.js';
import type { InterfaceRules } from './interface-rules.js';
import { FEATURE_WORDS, FeatureNegotiation, TRANSPORT_FEATURES } from './feature-negotiation.js';
import { PendingResets, RESET_PENDING_STATUS, whenSettled } from './device-reset.js';
import type { RingArea, VirtqueueConfig } from './virtqueue-config.js';
import { Virtqueues } from './virtqueues.js';
import { readCoreSnapshot, writeCoreSnapshot } from './core-snapshot.js';
import { Notifications, type NotificationSink, type NotificationsHost } from './notifications.js';
import { SuspendResume } from './suspend-resume.js';
import {
  VIRTIO_F_ADMIN_VQ,
  VIRTIO_F_RING_PACKED,
  VIRTIO_F_RING_RESET,
  VIRTIO_F_SUSPEND,
  bit,
  hasFeature,
  withFeatureWord,
} from '../spec/features.js';
import { VIRTIO_CONFIG_S_DEVICE_NEEDS_RESET, VIRTIO_CONFIG_S_DRIVER_OK, VIRTIO_CONFIG_S_FEATURES_OK } from '../spec/status.js';

export type { DriverNotification } from './device-observer.js';
export type { NotificationSink } from './notifications.js';

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

/** See the file comment. Implements the {@link VirtioDeviceHost} the device model is attached to. */
export class DeviceCore implements VirtioDeviceHost {
  /** Feature negotiation (2.2): what is offered, what the driver accepted. */
  private readonly features: FeatureNegotiation;
  /** The device's own queues (num_queues); the administration queue is {@link adminQueue}. */
  readonly queues: readonly VirtqueueConfig[];
  /** The administration queue's configuration, at index num_queues (VIRTIO_F_ADMIN_VQ offered), else undefined. */
  readonly adminQueue: VirtqueueConfig | undefined;
  /** The queues: their configuration, the rings live since activation, the suspend gate (virtqueues.ts). */
  private readonly vqs: Virtqueues;
  /** device_status and its transition table (2.1, 3.1.1). */
  private readonly deviceStatus = new DeviceStatus();
  private generation = 0;
  private usableBeforeDriverOk = false;
  /** Device and queue resets waiting for the old life's backend operations (see {@link reset}). */
  private readonly pendingResets = new PendingResets();
  /** Why DEVICE_NEEDS_RESET was set, for diagnostics; cleared by reset. */
  fault: Error | undefined;
  /** Where the driver's broken statements go (the driver audit), when auditing. */
  readonly audit: DriverAuditSink | undefined;
  /** Whether the driver has reset the device since power-on (audit only: 3.1.1 starts with a reset). */
  private resetWritten = false;
  /** Who watches this device (a transport monitor), if anyone: see core/device-observer.ts. */
  private observer: DeviceObserver | undefined;
  /** Notifications from the driver to the device and back (notifications.ts). */
  private readonly notifier: Notifications;
  /** The core's part of suspend and resume (suspend-resume.ts). */
  private readonly suspension: SuspendResume;

  constructor(
    readonly device: VirtioDevice,
    readonly memory: GuestMemory,
    notifications: NotificationSink,
    options: DeviceCoreOptions = {},
  ) {
    const ringReset = device.resetQueue !== undefined && device.enableQueue !== undefined ? bit(VIRTIO_F_RING_RESET) : 0n;
    const packed = options.packed === true ? bit(VIRTIO_F_RING_PACKED) : 0n;
    const admin = options.adminQueue;
    const adminVq = admin !== undefined ? bit(VIRTIO_F_ADMIN_VQ) : 0n;
    const suspend = options.suspend === false ? 0n : bit(VIRTIO_F_SUSPEND);
    this.features = new FeatureNegotiation(
      device.deviceFeatures | TRANSPORT_FEATURES | ringReset | packed | adminVq | suspend | (options.transportFeatures ?? 0n),
    );
    this.useRules(options);
    this.audit = options.audit;
    this.vqs = new Virtqueues(this, this.deviceStatus, this.pendingResets, {
      maxSizes: device.queueMaxSizes,
      adminQueue: admin,
      buildRing: options.deviceRing ?? deviceRing,
    });
    this.queues = this.vqs.queues;
    this.adminQueue = this.vqs.adminQueue;
    const host = this.notificationsHost();
    this.notifier = new Notifications(host, this.deviceStatus, this.vqs, notifications);
    this.suspension = new SuspendResume(host, this.deviceStatus, this.vqs, this.notifier);
    device.attach(this);
  }

  /** This core as its notifications and its suspension see it. */
  private notificationsHost(): NotificationsHost {
    const negotiated = (): bigint => this.negotiatedFeatures;
    const needsResetSet = (): boolean => this.needsResetSet;
    const resetPending = (): boolean => this.resetPending;
    const usableBeforeDriverOk = (): boolean => this.usableBeforeDriverOk;
    const observer = (): DeviceObserver | undefined => this.observer;
    return {
      device: this.device,
      audit: this.audit,
      get negotiatedFeatures() {
        return negotiated();
      },
      get needsResetSet() {
        return needsResetSet();
      },
      get resetPending() {
        return resetPending();
      },
      get usableBeforeDriverOk() {
        return usableBeforeDriverOk();
      },
      get observer() {
        return observer();
      },
      needsReset: (cause) => this.needsReset(cause),
    };
  }

  /**
   * Switch to another interface's rules (a transitional device's front-ends do, when the driver
   * commits to one of them). Only while the device is reset (status 0): the rules never change under
   * a driver in the middle of initialisation.
   */
  useRules(rules: InterfaceRules): void {
    if (this.deviceStatus.value !== 0) throw new RangeError('interface rules change only while the device is reset');
    this.deviceStatus.useSteps(rules.statusSteps ?? MODERN_STATUS_STEPS);
    this.features.useRules(rules);
    this.usableBeforeDriverOk = rules.usableBeforeDriverOk ?? false;
  }

  /** Features offered: the device's, the transport's and the current interface's. */
  get offeredFeatures(): bigint {
    return this.features.offered;
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
    return this.vqs.active[index]?.position();
  }

  /** Run `listener` when every device reset completes (front-ends clear their select registers). */
  onReset(listener: () => void): void {
    this.pendingResets.onDeviceReset(listener);
  }

  /** device_status as the driver reads it: {@link RESET_PENDING_STATUS} until a reset completes. */
  get status(): number {
    return this.resetPending ? RESET_PENDING_STATUS : this.deviceStatus.value;
  }
  get driverFeatures(): bigint {
    return this.features.driver;
  }
  /** The negotiated features once FEATURES_OK is set, else 0. */
  get negotiatedFeatures(): bigint {
    return (this.deviceStatus.value & VIRTIO_CONFIG_S_FEATURES_OK) !== 0 ? this.features.driver : 0n;
  }
  get configGeneration(): number {
    return this.generation;
  }
  /** Whether a device reset waits for the old life's operations (driver writes other than a reset are ignored). */
  get resetPending(): boolean {
    return this.pendingResets.device;
  }
  /** Whether the device has stopped on a fault until reset. */
  get needsResetSet(): boolean {
    return (this.deviceStatus.value & VIRTIO_CONFIG_S_DEVICE_NEEDS_RESET) !== 0;
  }

  /** Every queue the transport addresses: the device's and, when offered, the administration queue. */
  get queueCount(): number {
    return this.vqs.count;
  }

  /**
   * admin_queue_index and admin_queue_num (4.1.4.3): valid once VIRTIO_F_ADMIN_VQ is negotiated,
   * undefined before (the fields then read 0).
   */
  get adminQueueRange(): { readonly index: number; readonly num: number } | undefined {
    return this.vqs.adminRange;
  }

  /**
   * Queue `index` as the driver can select it: one of the device's, or the administration queue
   * once VIRTIO_F_ADMIN_VQ is negotiated (before that it is unavailable: queue_size reads 0).
   */
  queueConfig(index: number): VirtqueueConfig | undefined {
    return this.vqs.config(index);
  }

  // ---- features (2.2) ----

  /** 32-bit word `select` of the offered features (0 beyond {@link FEATURE_WORDS}). */
  deviceFeatureWord(select: number): number {
    return this.features.deviceWord(select);
  }
  driverFeatureWord(select: number): number {
    return this.features.driverWord(select);
  }
  /** The driver writes word `select` of its features; ignored once FEATURES_OK is set (2.2). */
  setDriverFeatureWord(select: number, value: number): void {
    if (
      this.audit !== undefined &&
      (this.deviceStatus.value & VIRTIO_CONFIG_S_FEATURES_OK) !== 0 &&
      (value & ~this.driverFeatureWord(select)) !== 0
    )
      this.audit(
        R.initNoNewFeatures,
        `feature word ${select} written 0x${(value >>> 0).toString(16)} after FEATURES_OK (accepted 0x${this.driverFeatureWord(select).toString(16)})`,
      );
    if (this.resetPending || select < 0 || select >= FEATURE_WORDS || (this.deviceStatus.value & VIRTIO_CONFIG_S_FEATURES_OK) !== 0) return;
    this.features.driver = withFeatureWord(this.features.driver, select, value);
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
    if (this.resetPending) return;
    if (this.audit !== undefined) auditStatusWrite(this.audit, this.deviceStatus.value, value, this.resetWritten);
    const before = this.deviceStatus.value;
    this.suspension.statusWritten(value);
    const admit = (bit: number): boolean => this.admitStatusBit(bit);
    const entered = (bit: number): void => {
      // A device already in use (before DRIVER_OK, legacy) keeps running as it is.
      if (bit === VIRTIO_CONFIG_S_DRIVER_OK && !this.vqs.activated) this.vqs.activate();
    };
    this.deviceStatus.write(value, admit, entered, this.audit);
    if (this.observer !== undefined && this.deviceStatus.value !== before) this.observer.statusChanged(this.deviceStatus.value, 'driver');
  }

  /** Whether a status write may set `bit`: FEATURES_OK only for features the device accepts (2.2.2). */
  private admitStatusBit(bit: number): boolean {
    if (bit === VIRTIO_CONFIG_S_FEATURES_OK) {
      if (this.audit !== undefined) this.auditFeatures();
      return this.features.acceptable(this.device);
    }
    // The legacy interface has no FEATURES_OK: the features are final when the device goes live.
    if (bit === VIRTIO_CONFIG_S_DRIVER_OK && this.audit !== undefined && !this.deviceStatus.hasFeaturesOkStep) this.auditFeatures();
    return true;
  }

  /** Audit: the accepted features against the offer and their dependencies (2.2.1, 6.1). */
  private auditFeatures(): void {
    this.features.audit(this.audit!, this.device.deviceType, this.deviceStatus.hasFeaturesOkStep);
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
    this.deviceStatus.value = 0;
    this.vqs.stop();
    const completion = this.device.reset();
    this.vqs.resetAll();
    this.features.driver = 0n;
    this.fault = undefined;
    this.notifier.reset();
    const completed = this.pendingResets.beginDevice();
    this.observer?.statusChanged(0, 'reset');
    whenSettled(completion, completed);
  }

  /** Whether VIRTIO_F_RING_RESET was negotiated (queues can be reset and re-enabled while live). */
  get ringResetNegotiated(): boolean {
    return this.vqs.ringResetNegotiated;
  }

  // ---- queues (4.1.4.3, virtqueues.ts) ----

  /**
   * Queue configuration may change while the queue is disabled, once everything DRIVER_OK requires
   * is set and before DRIVER_OK itself (3.1.1 step 7): after FEATURES_OK on the modern interface;
   * the table decides for other interfaces.
   */
  queueWritable(index: number): boolean {
    return this.vqs.writable(index);
  }

  /** A size the negotiated ring format allows (2.6), no larger than the maximum; anything else is ignored. */
  setQueueSize(index: number, size: number): void {
    this.vqs.setSize(index, size);
  }
  setQueueRingHalf(index: number, area: RingArea, half: 0 | 1, value: number): void {
    this.vqs.setRingHalf(index, area, half, value);
  }
  enableQueue(index: number): void {
    this.vqs.enable(index);
  }

  /**
   * 2.6.1.1 queue reset (RING_RESET negotiated, device live): the device stops using the queue and
   * drops its requests; the queue is disabled with its default size and no rings (the transport's
   * notification settings for the queue, such as its MSI-X vector, are kept).
   * As with a device reset, the queue reset completes (queue_reset reads 0 again, the queue can be
   * set up) only once the queue's old backend operations have settled.
   */
  resetQueue(index: number): void {
    this.vqs.reset(index);
  }
  /**
   * Take an enabled queue back to disabled with no rings, in the states queue set-up is allowed
   * (the legacy interface's queue PFN 0, 4.1.4.10).
   */
  disableQueue(index: number): void {
    this.vqs.disable(index);
  }

  /**
   * The driver notified queue `index` (2.9). `next` (bits 16-31 of the notification: next_off and
   * next_wrap, see queue/notification-data.ts) comes only with VIRTIO_F_NOTIFICATION_DATA; a value
   * the negotiated ring format rules out is a guest fault. Faults set NEEDS_RESET.
   */
  notify(index: number, next?: number): void {
    this.notifier.notify(index, next);
  }

  /**
   * A driver notification for queue `index` that breaks the transport's rules (width, queue
   * identifier): a guest fault (QueueFaultError ERR_QUEUE_NOTIFICATION) while the device is live,
   * ignored otherwise (as every notification is then).
   */
  rejectNotification(index: number, why: string): void {
    this.notifier.reject(index, why);
  }

  // ---- device configuration (4.1.4.6) ----

  /** Device config read, or undefined when [offset, offset + size) is outside it. */
  readDeviceConfig(offset: number, size: AccessSize): number | undefined {
    if (offset < 0 || offset + size > this.device.configSize) return undefined;
    return this.device.readConfig(offset, size);
  }
  writeDeviceConfig(offset: number, size: AccessSize, value: number): void {
    if (this.audit !== undefined && this.deviceStatus.hasFeaturesOkStep && (this.deviceStatus.value & VIRTIO_CONFIG_S_FEATURES_OK) === 0)
      this.audit(R.initNoConfigWrite, `device configuration offset ${offset} written in status 0x${this.deviceStatus.value.toString(16)}`);
    if (this.deviceStatus.suspendSet) {
      // 3.4.2: ignored while suspended (and while a suspension is under way, which the driver may not disturb either).
      this.audit?.(R.suspendNoConfigWrite, `device configuration offset ${offset} written while SUSPEND is set`);
      return;
    }
    if (!this.resetPending && offset >= 0 && offset + size <= this.device.configSize) this.device.writeConfig(offset, size, value);
  }

  // ---- VirtioDeviceHost ----

  configChanged(): void {
    this.configChangedByDriver();
    this.notifier.configChanged();
  }

  configChangedByDriver(): void {
    this.generation = (this.generation + 1) & 0xff;
  }

  usedBuffers(index: number): void {
    this.notifier.usedBuffers(index);
  }

  // ---- snapshots (docs/snapshots.md, core-snapshot.ts) ----

  /**
   * The core's state: status, features, config_generation, each queue's configuration and, for a
   * live queue, its ring with the chains in flight. A reset that waits for the old life's operations
   * is taken as completed: nothing of that life is carried over.
   */
  snapshot(): SnapshotStruct {
    const state = {
      status: this.resetPending ? 0 : this.deviceStatus.value,
      features: this.features.driver,
      generation: this.generation,
      activated: this.vqs.activated,
      fault: this.fault,
    };
    return writeCoreSnapshot(state, this.queues, this.vqs.active);
  }

  /**
   * Check the snapshot `r` of the core and `device` of the device model against this core under the
   * interface `rules`, changing nothing (SnapshotError otherwise), and return what applies them: the
   * model's state, then the core's, then the model activated with the restored queues, each of
   * which hands the model its chains in flight again. Only a reset core takes a snapshot
   * ('ERR_SNAPSHOT_TARGET_BUSY' otherwise).
   */
  prepareRestore(r: SnapshotReader, device: SnapshotReader, rules: InterfaceRules): () => void {
    if (this.deviceStatus.value !== 0 || this.resetPending || this.vqs.activated)
      throw r.error('ERR_SNAPSHOT_TARGET_BUSY', `the device is in use (status 0x${this.status.toString(16)}): restore into a reset device`);
    const target = { queues: this.queues, offered: this.features.offeredUnder(rules), memory: this.memory, buildRing: this.vqs.buildRing };
    const { status, features, generation, activated, fault, suspend, queues } = readCoreSnapshot(r, rules, target);
    if (this.device.prepareRestore === undefined) throw device.error('ERR_SNAPSHOT_UNSUPPORTED', 'the device model cannot be restored');
    const applyDevice = this.device.prepareRestore(device);
    return () => {
      this.useRules(rules);
      applyDevice();
      this.features.driver = features;
      this.generation = generation;
      this.fault = fault === '' ? undefined : new Error(fault);
      this.vqs.restore(queues, activated);
      this.deviceStatus.value = status;
      if (!activated || this.needsResetSet) return;
      try {
        this.device.activate({ features, queues: this.vqs.active.map((q) => q && this.vqs.gate.wrap(q)) });
        // The model had requests in flight on these queues: it takes them back from the rings now.
        // A suspended device has nothing in flight: it stays suspended, and tells the driver at resume
        // whatever it may have held back (the snapshot does not keep that: one notification each, maybe spurious).
        if (suspend && (status & VIRTIO_CONFIG_S_DRIVER_OK) === 0)
          this.vqs.gate.restoreSuspended(this.vqs.active.flatMap((q, i) => (q === null ? [] : [i])));
        // A suspension under way carries on: the model takes back the chains it held, and no others.
        else if (suspend) this.suspension.start(queues.reduce((n, q) => n + q.redeliver, 0));
        queues.forEach((q, i) => q.redeliver > 0 && this.device.queueNotify(i));
      } catch (e) {
        this.needsReset(asError(e));
      }
    };
  }

  /** 2.1.2: set DEVICE_NEEDS_RESET, stop serving queues, and tell a live driver by a configuration change notification. */
  needsReset(cause: Error): void {
    // A reset device has no driver to tell and nothing in flight to stop.
    if (this.needsResetSet || this.deviceStatus.value === 0) return;
    if (this.audit !== undefined && cause instanceof QueueFaultError) {
      const broken = ringFaultRequirement(cause.code, hasFeature(this.features.driver, VIRTIO_F_RING_PACKED));
      if (broken !== undefined) this.audit(broken, cause.message);
    }
    this.fault = cause;
    this.deviceStatus.value |= VIRTIO_CONFIG_S_DEVICE_NEEDS_RESET;
    this.observer?.statusChanged(this.deviceStatus.value, 'device');
    if ((this.deviceStatus.value & VIRTIO_CONFIG_S_DRIVER_OK) !== 0) this.notifier.send({ kind: 'configuration-change' });
  }
}
