/**
 * A transport monitor: watches virtio PCI functions (device side) as a driver drives them and
 * answers, whenever asked, what a person learning virtio wants to see: each function's configuration
 * space decoded as lspci does, where its structures live (capability-map.ts), the interface the
 * driver committed to and any access through the other one, the features offered and accepted,
 * device status with a bounded history of its changes, and per queue its size, ring format, avail
 * and used indices, chains in flight, interrupts sent and notifications received.
 *
 * Events are recorded as they happen through the core's observer (core/device-observer.ts: counters
 * and the status history, O(1) each); everything else is read when {@link TransportMonitor.snapshot}
 * is called, without side effects (configuration space raw, no register read), so polling it a few
 * times a second costs little. Memory is bounded: counters per queue and at most `historyLimit`
 * status changes per function.
 *
 *   const monitor = new TransportMonitor();
 *   monitor.watch(fn, { bdf });                 // a VirtioPciFunction and where it sits
 *   setInterval(() => render(monitor.snapshot()), 200);
 *   monitor.dispose();                          // stops watching
 */

import type { DecodedBar } from '../pci/function.js';
import { ConfigSpaceSnapshot } from '../bus/config-space-reader.js';
import type { Bdf } from '../bus/pci-bus.js';
import type { DeviceObserver, DriverNotification, StatusCause } from '../core/device-observer.js';
import { formatLspci } from '../driver/lspci.js';
import { UsageError } from '../errors.js';
import { ringFormat } from '../queue/ring-format.js';
import { decodeDeviceFeatures } from '../spec/feature-names.js';
import { deviceTypeName, VIRTIO_ID_BLOCK, VIRTIO_ID_CONSOLE, VIRTIO_ID_NET, VIRTIO_ID_RNG } from '../spec/ids.js';
import { PCI_CONFIG_SPACE_SIZE } from '../spec/pci.js';
import { decodeStatus } from '../spec/status.js';
import type { VirtioInterface } from '../transport/pci/interface-arbiter.js';
import type { VirtioPciFunction, VirtioPciMode } from '../transport/pci/virtio-pci-function.js';
import { capabilityMap, type CapabilityMap } from './capability-map.js';

/** The interface a driver uses, or 'none' before it wrote anything. */
export type MonitoredInterface = VirtioInterface | 'none';

/** One change of device_status. */
export interface StatusChange {
  /** Milliseconds since the monitor was made (its clock). */
  readonly at: number;
  readonly status: number;
  /** The status bits named: "ACKNOWLEDGE|DRIVER|...". */
  readonly names: string;
  readonly cause: StatusCause;
  /** The interface the driver had committed to when it happened. */
  readonly via: MonitoredInterface;
}

/** A feature set and its bits named for the device type. */
export interface NamedFeatures {
  readonly bits: bigint;
  /** "VERSION_1 EVENT_IDX ..."; "(none)" when empty. */
  readonly names: string;
}

export interface QueueView {
  readonly index: number;
  readonly size: number;
  readonly maxSize: number;
  readonly enabled: boolean;
  /** The ring format the negotiated features select (split until the driver negotiates). */
  readonly format: 'split' | 'packed';
  /** Avail index, used index and chains in flight (see RingPosition), while the queue is live. */
  readonly avail: number | undefined;
  readonly used: number | undefined;
  readonly inFlight: number | undefined;
  /** Used buffer notifications the device sent for this queue (2.3). */
  readonly interrupts: number;
  /** Available buffer notifications the driver sent for this queue (2.9). */
  readonly notifications: number;
}

export interface FunctionView {
  /** The name given to {@link TransportMonitor.watch} (default: 'blk', 'console', 'rng', 'net' or 'type<N>'). */
  readonly name: string;
  readonly bdf: Bdf;
  readonly deviceType: number;
  /** The spec's name of the device type ("block device"). */
  readonly typeName: string;
  /** Which interfaces the function offers. */
  readonly mode: VirtioPciMode;
  /** The interface the driver committed to (the last one, after a reset until it writes again). */
  readonly interface: MonitoredInterface;
  /** Accesses through the other interface that the device ignored (transitional functions; never reset). */
  readonly otherInterfaceAccesses: number;
  /** The latest of them, described. */
  readonly lastOtherInterfaceAccess: string | undefined;
  /** Configuration space as `lspci -vv` shows it. */
  readonly lspci: string;
  readonly capabilities: CapabilityMap;
  readonly offeredFeatures: NamedFeatures;
  /** What the driver wrote so far. */
  readonly driverFeatures: NamedFeatures;
  /** The accepted features once FEATURES_OK is set (empty before). */
  readonly negotiatedFeatures: NamedFeatures;
  /** device_status as the driver reads it now. */
  readonly status: number;
  readonly statusNames: string;
  /** The latest status changes, oldest first (at most the monitor's `historyLimit`). */
  readonly statusHistory: readonly StatusChange[];
  /** Status changes since watching began (the history keeps only the latest). */
  readonly statusChanges: number;
  /** Configuration change notifications the device sent. */
  readonly configNotifications: number;
  readonly queues: readonly QueueView[];
}

export interface TransportSnapshot {
  /** Milliseconds since the monitor was made. */
  readonly at: number;
  readonly functions: readonly FunctionView[];
}

export interface TransportMonitorOptions {
  /** Status changes kept per function (default {@link DEFAULT_STATUS_HISTORY}). */
  readonly historyLimit?: number;
  /** Milliseconds, monotonic (default performance.now). */
  readonly clock?: () => number;
}

export interface WatchOptions {
  /** Where the function sits, for the lspci header. */
  readonly bdf: Bdf;
  /** Its name in snapshots (default by device type: 'blk', 'console', 'rng', 'net'). */
  readonly name?: string;
}

/** Status changes kept per function by default: a few initialisations' worth. */
export const DEFAULT_STATUS_HISTORY = 32;

const SHORT_NAMES: ReadonlyMap<number, string> = new Map([
  [VIRTIO_ID_BLOCK, 'blk'],
  [VIRTIO_ID_CONSOLE, 'console'],
  [VIRTIO_ID_RNG, 'rng'],
  [VIRTIO_ID_NET, 'net'],
]);

/** One watched function: the observer of its core and the counters it keeps. */
class Watched implements DeviceObserver {
  readonly history: StatusChange[] = [];
  changes = 0;
  configNotifications = 0;
  readonly interrupts: number[];
  readonly notifications: number[];
  /** The last interface seen committed (a transitional function forgets its commitment at reset). */
  lastInterface: MonitoredInterface = 'none';
  private cachedBytes: Uint8Array | undefined;
  private cachedLspci = '';
  readonly stop: () => void;

  constructor(
    readonly fn: VirtioPciFunction,
    readonly name: string,
    readonly bdf: Bdf,
    private readonly limit: number,
    private readonly clock: () => number,
  ) {
    const queues = fn.core.queues.length;
    this.interrupts = new Array<number>(queues).fill(0);
    this.notifications = new Array<number>(queues).fill(0);
    this.stop = fn.core.observe(this);
  }

  /** The interface the driver is committed to right now, if any. */
  committed(): MonitoredInterface {
    const fn = this.fn;
    if (fn.arbiter !== undefined) return fn.arbiter.committed ?? 'none';
    // A function with one interface: the driver uses it once it wrote anything.
    if (fn.core.status === 0 && this.changes === 0) return 'none';
    return fn.mode === 'legacy' ? 'legacy' : 'modern';
  }

  statusChanged(status: number, cause: StatusCause): void {
    const via = this.committed();
    if (via !== 'none') this.lastInterface = via;
    this.changes++;
    if (this.history.length === this.limit) this.history.shift();
    this.history.push({ at: this.clock(), status, names: decodeStatus(status), cause, via });
  }
  queueNotified(index: number): void {
    if (index >= 0 && index < this.notifications.length) this.notifications[index]!++;
  }
  notificationSent(notification: DriverNotification): void {
    if (notification.kind === 'configuration-change') this.configNotifications++;
    else if (notification.queue < this.interrupts.length) this.interrupts[notification.queue]!++;
  }

  /** The 256 configuration bytes as they are, without the read hooks (the PCI_CFG window's BAR access). */
  private configBytes(): Uint8Array {
    const bytes = new Uint8Array(PCI_CONFIG_SPACE_SIZE);
    const dv = new DataView(bytes.buffer);
    for (let off = 0; off < PCI_CONFIG_SPACE_SIZE; off += 4) dv.setUint32(off, this.fn.config.getRaw(off, 4), true);
    return bytes;
  }

  snapshot(): FunctionView {
    const fn = this.fn;
    const core = fn.core;
    const bytes = this.configBytes();
    const cfg = new ConfigSpaceSnapshot(bytes);
    const bars: DecodedBar[] = [];
    fn.bars.forEach((bar, index) => {
      if (bar !== undefined) bars.push({ ...bar, index, base: fn.config.barBase(index) });
    });
    // The decode changes only when configuration space does (the BARs are in it).
    if (this.cachedBytes === undefined || bytes.some((b, i) => b !== this.cachedBytes![i])) {
      this.cachedBytes = bytes;
      this.cachedLspci = formatLspci(this.bdf, cfg, bars);
    }
    const now = this.committed();
    if (now !== 'none') this.lastInterface = now;
    const type = fn.device.deviceType;
    const named = (bits: bigint): NamedFeatures => ({ bits, names: decodeDeviceFeatures(type, bits) });
    const format = ringFormat(core.negotiatedFeatures).name;
    return {
      name: this.name,
      bdf: this.bdf,
      deviceType: type,
      typeName: deviceTypeName(type),
      mode: fn.mode,
      interface: this.lastInterface,
      otherInterfaceAccesses: fn.arbiter?.ignoredAccesses ?? 0,
      lastOtherInterfaceAccess: fn.arbiter?.lastIgnored,
      lspci: this.cachedLspci,
      capabilities: capabilityMap(cfg, bars, fn.mode !== 'modern'),
      offeredFeatures: named(core.offeredFeatures),
      driverFeatures: named(core.driverFeatures),
      negotiatedFeatures: named(core.negotiatedFeatures),
      status: core.status,
      statusNames: decodeStatus(core.status),
      statusHistory: [...this.history],
      statusChanges: this.changes,
      configNotifications: this.configNotifications,
      queues: core.queues.map((q) => {
        const position = core.queuePosition(q.index);
        return {
          index: q.index,
          size: q.size,
          maxSize: q.maxSize,
          enabled: q.enabled,
          format,
          avail: position?.avail,
          used: position?.used,
          inFlight: position?.inFlight,
          interrupts: this.interrupts[q.index]!,
          notifications: this.notifications[q.index]!,
        };
      }),
    };
  }
}

/** See the file comment. */
export class TransportMonitor {
  private readonly watched: Watched[] = [];
  private readonly historyLimit: number;
  private readonly clock: () => number;
  private readonly start: number;

  constructor(options: TransportMonitorOptions = {}) {
    const limit = options.historyLimit ?? DEFAULT_STATUS_HISTORY;
    if (!Number.isInteger(limit) || limit < 1) throw new UsageError(`historyLimit ${limit}: a positive integer`);
    this.historyLimit = limit;
    const clock = options.clock ?? (() => performance.now());
    this.start = clock();
    this.clock = () => clock() - this.start;
  }

  /**
   * Watch `fn` from now on (its device core takes one observer: UsageError if something else
   * watches it already).
   */
  watch(fn: VirtioPciFunction, options: WatchOptions): void {
    const type = fn.device.deviceType;
    const name = options.name ?? SHORT_NAMES.get(type) ?? `type${type}`;
    if (this.watched.some((w) => w.fn === fn)) throw new UsageError(`function ${name} is watched already`);
    this.watched.push(new Watched(fn, name, options.bdf, this.historyLimit, this.clock));
  }

  /** Everything the monitor knows, now (see the file comment). */
  snapshot(): TransportSnapshot {
    return { at: this.clock(), functions: this.watched.map((w) => w.snapshot()) };
  }

  /** Stop watching every function. */
  dispose(): void {
    for (const w of this.watched.splice(0)) w.stop();
  }
}
