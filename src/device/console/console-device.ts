/**
 * The virtio-console device model (spec 5.3): ports whose host ends are byte ports, the console
 * size (VIRTIO_CONSOLE_F_SIZE), emergency write (VIRTIO_CONSOLE_F_EMERG_WRITE) and, with more than one
 * port, VIRTIO_CONSOLE_F_MULTIPORT and its control queues (control-queues.ts). No queued byte is
 * dropped when either side is slow: host input waits (paused) for guest receive buffers, and guest
 * output waits in the transmitq while the host end is full. Emergency writes cannot wait (a config write completes at
 * once), so those that meet a full host end are dropped and counted instead of queued.
 */

import { UsageError } from '../../errors.js';
import type { GuestMemory } from '../../memory/guest-memory.js';
import type { AccessSize } from '../../memory/access-size.js';
import type { DeviceQueue } from '../../queue/types.js';
import { featureSet, hasFeature } from '../../spec/features.js';
import { VIRTIO_ID_CONSOLE } from '../../spec/ids.js';
import { DRIVER_REQUIREMENTS as R } from '../../spec/driver-requirements.js';
import {
  consoleQueueCount,
  consoleRxQueueIndex,
  VIRTIO_CONSOLE_CONFIG_COLS,
  VIRTIO_CONSOLE_CONFIG_EMERG_WR,
  VIRTIO_CONSOLE_CONFIG_MAX_NR_PORTS,
  VIRTIO_CONSOLE_CONFIG_ROWS,
  VIRTIO_CONSOLE_CONFIG_SIZE,
  VIRTIO_CONSOLE_CONTROL_RECEIVEQ,
  VIRTIO_CONSOLE_CONTROL_TRANSMITQ,
  VIRTIO_CONSOLE_F_EMERG_WRITE,
  VIRTIO_CONSOLE_F_MULTIPORT,
  VIRTIO_CONSOLE_F_SIZE,
  VIRTIO_CONSOLE_PORT_OPEN,
} from '../../spec/console.js';
import { writeChain } from '../chain-bytes.js';
import { ConfigBytes } from '../config-bytes.js';
import type { ActivateContext, VirtioDevice, VirtioDeviceHost } from '../../core/virtio-device.js';
import type { ConsoleBytePort } from './byte-port.js';
import { ConsolePort } from './console-port.js';
import { ControlQueues } from './control-queues.js';
import { TxBatch } from './tx-batch.js';
import type { SnapshotReader } from '../../snapshot/snapshot-reader.js';
import { bytes, flag, list, struct, u16, type SnapshotStruct } from '../../snapshot/snapshot-value.js';

export interface ConsolePortOptions {
  /** Sent to the driver as PORT_NAME (multiport only; Linux shows it as /dev/virtio-ports/<name>). */
  readonly name?: string;
  /** Sent as CONSOLE_PORT: the driver makes it an hvc console. Port 0 is the console without multiport. */
  readonly console?: boolean;
  /** The host end: where guest output goes and host input comes from (none: output is discarded). */
  readonly host?: ConsoleBytePort;
}

export interface VirtioConsoleDeviceOptions {
  /** Ports 0..n-1; default one console port with no host end. More than one offers MULTIPORT. */
  readonly ports?: readonly ConsolePortOptions[];
  /** Force VIRTIO_CONSOLE_F_MULTIPORT even with one port (default: more than one port). */
  readonly multiport?: boolean;
  /** Console size; offers VIRTIO_CONSOLE_F_SIZE. */
  readonly size?: { readonly cols: number; readonly rows: number };
  /** Offer VIRTIO_CONSOLE_F_EMERG_WRITE (bytes go to port 0's output). Default true. */
  readonly emergWrite?: boolean;
  /** Maximum size of every queue. Default 128. */
  readonly queueSize?: number;
}

export interface ConsoleDeviceStats {
  /** Host -> guest bytes delivered. */
  rxBytes: number;
  /** Guest -> host bytes taken from the transmitqs. */
  txBytes: number;
  /** Bytes written to emerg_wr and handed to port 0's output. */
  emergBytes: number;
  /** Bytes written to emerg_wr while port 0's output was full, dropped (see writeConfig). */
  emergDropped: number;
  /** Chains refused for their shape, and malformed control messages. */
  badChains: number;
  /** Control messages dropped because the driver left too many unanswered. */
  controlDropped: number;
}

/** Largest chain the device copies from a transmitq; a longer one is refused. */
const CONSOLE_MAX_TX_CHAIN = 1 << 20;
/**
 * Most bytes of transmit chains gathered into one output write (also bounded by the room the output
 * has): one host write per batch instead of one per chain, since the per-write cost dominates
 * with small chains.
 */
const CONSOLE_TX_BATCH = 64 << 10;
/** Slab size for the buffers guest output is copied into (a few batches each). */
const CONSOLE_TX_SLAB = 256 << 10;

export class VirtioConsoleDevice implements VirtioDevice {
  readonly deviceType = VIRTIO_ID_CONSOLE;
  readonly deviceFeatures: bigint;
  readonly queueMaxSizes: readonly number[];
  readonly configSize = VIRTIO_CONSOLE_CONFIG_SIZE;
  readonly stats: ConsoleDeviceStats = { rxBytes: 0, txBytes: 0, emergBytes: 0, emergDropped: 0, badChains: 0, controlDropped: 0 };

  private host: VirtioDeviceHost | undefined;
  private readonly ports: ConsolePort[];
  private readonly config = new ConfigBytes(VIRTIO_CONSOLE_CONFIG_SIZE);
  private active = false;
  /** VIRTIO_CONSOLE_F_MULTIPORT offered, then as negotiated once active (read on every notify). */
  private multiport: boolean;
  /** Transmit chains popped and not yet given back, and their bytes (reused by every processTx). */
  private readonly txBatch: TxBatch;
  private queues: (DeviceQueue | null)[] = [];
  /** The control queues (MULTIPORT): messages both ways, and the port events they carry. */
  private readonly control: ControlQueues;

  constructor(options: VirtioConsoleDeviceOptions = {}) {
    const portOptions = options.ports ?? [{ console: true }];
    if (portOptions.length === 0) throw new UsageError('a console device needs at least one port');
    const multiport = options.multiport ?? portOptions.length > 1;
    if (!multiport && portOptions.length > 1) throw new UsageError('more than one port needs multiport');
    let features = 0n;
    if (multiport) features |= featureSet(VIRTIO_CONSOLE_F_MULTIPORT);
    if (options.size) features |= featureSet(VIRTIO_CONSOLE_F_SIZE);
    if (options.emergWrite ?? true) features |= featureSet(VIRTIO_CONSOLE_F_EMERG_WRITE);
    this.deviceFeatures = features;
    this.multiport = multiport;
    const queueSize = options.queueSize ?? 128;
    this.queueMaxSizes = new Array<number>(multiport ? consoleQueueCount(portOptions.length) : 2).fill(queueSize);
    this.txBatch = new TxBatch(queueSize, CONSOLE_MAX_TX_CHAIN, CONSOLE_TX_SLAB);
    this.config.set32(VIRTIO_CONSOLE_CONFIG_MAX_NR_PORTS, multiport ? portOptions.length : 1);
    if (options.size) this.setConfigSize(options.size.cols, options.size.rows);
    this.ports = portOptions.map(
      (p, id) =>
        new ConsolePort(id, p.name, p.console ?? (!multiport && id === 0), p.host, {
          onInput: () => this.guard(() => this.deliverInput(id)),
          onDrain: () => this.guard(() => this.processTx(id)),
          onHostConnected: (connected) => this.guard(() => this.hostConnected(id, connected)),
        }),
    );
    const active = (): boolean => this.active;
    this.control = new ControlQueues({
      ports: this.ports,
      get active() {
        return active();
      },
      stats: this.stats,
      queue: (index) => this.queues[index],
      usedBuffers: (index) => this.host?.usedBuffers(index),
      auditReadableInReceiveq: (queue, head) => this.auditReadableInReceiveq(queue, head),
      portOpened: (id) => {
        this.deliverInput(id);
        this.processTx(id);
      },
    });
  }

  /** Port `id`'s state, e.g. whether the guest opened it. */
  port(id: number): ConsolePort {
    const p = this.ports[id];
    if (!p) throw new UsageError(`no console port ${id}`);
    return p;
  }

  attach(host: VirtioDeviceHost): void {
    this.host = host;
  }

  readConfig(offset: number, size: AccessSize): number {
    return this.config.read(offset, size);
  }

  /**
   * Only emerg_wr is writable: its low byte goes out on port 0 at once (5.3.4). The write must be
   * allowed but cannot be stalled, so while port 0's output is full (where the transmitq would wait)
   * the byte is dropped and counted: 5.3.4 says the device SHOULD transmit it, and queueing every
   * one would let a guest grow the host's memory without bound.
   */
  writeConfig(offset: number, _size: AccessSize, value: number): void {
    if (offset !== VIRTIO_CONSOLE_CONFIG_EMERG_WR || !hasFeature(this.deviceFeatures, VIRTIO_CONSOLE_F_EMERG_WRITE)) return;
    const port = this.ports[0]!;
    if (!port.canWrite) {
      this.stats.emergDropped++;
      return;
    }
    this.stats.emergBytes++;
    port.write(Uint8Array.of(value & 0xff));
  }

  activate(ctx: ActivateContext): void {
    this.multiport = hasFeature(ctx.features, VIRTIO_CONSOLE_F_MULTIPORT);
    this.queues = [...ctx.queues];
    this.active = true;
    if (!this.multiport) {
      // One port, no control queue: the port is open from the start (5.3.6).
      const port = this.ports[0]!;
      port.ready = true;
      port.guestOpen = true;
    }
    this.guard(() => {
      for (const port of this.ports) {
        this.deliverInput(port.id);
        this.processTx(port.id);
      }
      if (this.multiport) this.control.processTransmitq();
    });
  }

  queueNotify(index: number): void {
    if (!this.active) return;
    // Not through guard(): no closure per notification on the hot path.
    try {
      this.dispatchNotify(index);
    } catch (err) {
      this.fail(err);
    }
  }

  private dispatchNotify(index: number): void {
    if (this.multiport && index === VIRTIO_CONSOLE_CONTROL_RECEIVEQ) this.control.flush();
    else if (this.multiport && index === VIRTIO_CONSOLE_CONTROL_TRANSMITQ) this.control.processTransmitq();
    else {
      const id = this.portOfQueue(index);
      if (id === undefined) return;
      if (index % 2 === 0) this.deliverInput(id);
      else this.processTx(id);
    }
  }

  /**
   * The model's state (docs/snapshots.md): each port's, whether the ports were added, control
   * messages not yet in the guest, the console size. Every request is answered in the call that pops
   * it, so the model holds no chain of its own.
   */
  snapshot(): SnapshotStruct {
    return struct({
      portsAdded: flag(this.control.portsAdded),
      cols: u16(this.config.read(VIRTIO_CONSOLE_CONFIG_COLS, 2)),
      rows: u16(this.config.read(VIRTIO_CONSOLE_CONFIG_ROWS, 2)),
      ports: list(this.ports.map((p) => p.snapshot())),
      controlOut: list(this.control.pending.map(bytes)),
    });
  }

  /** See VirtioDevice.prepareRestore. */
  prepareRestore(r: SnapshotReader): () => void {
    const portsAdded = r.flag('portsAdded');
    const cols = r.u16('cols');
    const rows = r.u16('rows');
    const ports = r.structs('ports', this.ports.length);
    if (ports.length !== this.ports.length)
      throw r.error('ERR_SNAPSHOT_QUEUE_COUNT', `${ports.length} ports, the device has ${this.ports.length}`);
    const applyPorts = ports.map((p, id) => this.ports[id]!.prepareRestore(p));
    const controlOut = this.control.readPending(r);
    return () => {
      this.setConfigSize(cols, rows);
      for (const apply of applyPorts) apply();
      this.control.restore(portsAdded, controlOut);
    };
  }

  reset(): void {
    this.active = false;
    this.control.reset();
    this.txBatch.clear();
    this.multiport = hasFeature(this.deviceFeatures, VIRTIO_CONSOLE_F_MULTIPORT);
    this.queues = [];
    for (const port of this.ports) {
      port.ready = false;
      port.guestOpen = false;
    }
  }

  /**
   * VIRTIO_F_RING_RESET: stop using queue `index`. Requests are answered within the call that pops
   * them, so none is in flight. No byte is lost: input waiting for a reset receiveq, and control
   * messages for a reset control receiveq, stay queued until it is back.
   */
  resetQueue(index: number): void {
    if (index < this.queues.length) this.queues[index] = null;
  }

  /** VIRTIO_F_RING_RESET: queue `queue.index` is back, on a new ring: serve what waited for it. */
  enableQueue(queue: DeviceQueue): void {
    if (queue.index >= this.queues.length) return;
    this.queues[queue.index] = queue;
    this.guard(() => this.dispatchNotify(queue.index));
  }

  /**
   * The console's size changed: with MULTIPORT a RESIZE control message for the console port (once
   * the driver has it), otherwise the config fields and a configuration change notification (when
   * VIRTIO_CONSOLE_F_SIZE is offered).
   */
  resize(cols: number, rows: number): void {
    if (this.multiport) {
      // Control messages only once the driver has the port (5.3.6.2: after DEVICE_READY and PORT_READY).
      const port = this.ports.find((p) => p.isConsole);
      if (!port || !port.ready) return;
      this.control.sendResize(port.id, cols, rows);
      return;
    }
    if (!hasFeature(this.deviceFeatures, VIRTIO_CONSOLE_F_SIZE)) return;
    this.setConfigSize(cols, rows);
    this.host?.configChanged();
  }

  private setConfigSize(cols: number, rows: number): void {
    this.config.set16(VIRTIO_CONSOLE_CONFIG_COLS, cols);
    this.config.set16(VIRTIO_CONSOLE_CONFIG_ROWS, rows);
  }

  /** The port whose receiveq or transmitq is queue `index` (5.3.2). */
  private portOfQueue(index: number): number | undefined {
    const id = index < 2 ? 0 : Math.floor(index / 2) - 1;
    if (id >= this.ports.length || (id > 0 && !this.multiport)) return undefined;
    return id;
  }

  /** A fatal guest fault (or an unexpected error) stops the device: DEVICE_NEEDS_RESET. */
  private guard(work: () => void): void {
    try {
      work();
    } catch (err) {
      this.fail(err);
    }
  }

  private fail(err: unknown): void {
    if (!this.active) return;
    this.active = false;
    this.host?.needsReset(err instanceof Error ? err : new Error(String(err)));
  }

  /** Audit (5.3.6.1): a device-readable buffer in a receiveq. */
  private auditReadableInReceiveq(queue: number, head: number): void {
    this.host?.audit?.(R.consoleBufferDirection, `receiveq ${queue} chain ${head} has device-readable descriptors`);
  }

  // ---- host -> guest ----

  private deliverInput(id: number): void {
    const port = this.ports[id]!;
    const q = this.queues[consoleRxQueueIndex(id)];
    if (!this.active || !port.guestOpen || !q) return;
    let used = 0;
    // Two passes at most: the second catches buffers added just before notifications were enabled.
    for (let pass = 0; pass < 2 && port.waiting; pass++) {
      for (let n = 0; n < q.size && port.waiting; n++) {
        const chain = q.pop();
        if (!chain) break;
        used++;
        if (chain.readable !== 0 || chain.writableBytes === 0) {
          if (chain.readable !== 0) this.auditReadableInReceiveq(q.index, chain.head);
          this.stats.badChains++;
          q.pushUsed(chain.head, 0);
          continue;
        }
        const bytes = port.waiting;
        const take = Math.min(bytes.byteLength, chain.writableBytes);
        writeChain(chain, 0, bytes.subarray(0, take));
        q.pushUsed(chain.head, take);
        this.stats.rxBytes += take;
        port.consumed(take);
      }
      // Hear about new receive buffers only while bytes are waiting for them.
      q.setNotification(port.waiting !== undefined);
      if (!q.hasAvailable()) break;
    }
    if (used > 0) this.host?.usedBuffers(q.index);
  }

  // ---- guest -> host ----

  private processTx(id: number): void {
    const port = this.ports[id]!;
    const q = this.queues[consoleRxQueueIndex(id) + 1];
    if (!this.active || !q) return;
    const memory = this.host!.memory;
    const batch = this.txBatch;
    let used = 0;
    // A batch ends once the output would be full (at least one chain, as before a write says it is
    // full), so it adds no more to the output's buffer than one chain would.
    while (used < q.size && port.canWrite) {
      const popped = batch.gather(q, memory, q.size - used, Math.min(port.room, CONSOLE_TX_BATCH));
      used += popped;
      this.writeTx(port, q, memory);
      if (popped === 0) break;
    }
    if (used > 0) this.host?.usedBuffers(q.index);
  }

  /** Finish the batch (its chains go back to the driver) and write its bytes, if any. */
  private writeTx(port: ConsolePort, q: DeviceQueue, memory: GuestMemory): void {
    const batch = this.txBatch;
    if (batch.empty) return;
    this.stats.badChains += batch.refused;
    // Counted here rather than from the array: typed-array length reads are not inlined (see TxBatch).
    const bytes = batch.bytes;
    const out = batch.finish(q, memory);
    this.stats.txBytes += bytes;
    if (bytes > 0) port.write(out);
  }

  private hostConnected(id: number, connected: boolean): void {
    const port = this.ports[id]!;
    if (this.active && this.multiport && port.ready) this.control.send(id, VIRTIO_CONSOLE_PORT_OPEN, connected ? 1 : 0);
  }
}
