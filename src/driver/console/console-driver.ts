/**
 * The virtio-console driver (spec 5.3) on the VirtioDriver core: console size, emergency write, and
 * with VIRTIO_CONSOLE_F_MULTIPORT the control-queue handshake (DEVICE_READY, then PORT_READY for each
 * DEVICE_ADD) that tells it port names, console ports and whether the host end is open.
 * Received bytes stay in their receive buffers until read, so a slow reader holds the device back
 * (and the device holds its host stream back) instead of losing bytes.
 */

import { DeviceFaultError, UsageError, type VirtioError } from '../../errors.js';
import { featureSet, hasFeature } from '../../spec/features.js';
import { VIRTIO_ID_CONSOLE } from '../../spec/ids.js';
import * as C from '../../spec/console.js';
import { allocBuffers, freeAll, LentBuffers } from '../dma-buffers.js';
import { waitUsedOrIdle, type Completion, type DriverQueue } from '../driver-queue.js';
import type { Bdf, PciBus } from '../../bus/pci-bus.js';
import type { DmaBuffer } from '../../memory/dma.js';
import { loopFault, VirtioDriver, type VirtioDriverOptions } from '../virtio-driver.js';
import { DRIVER_CORE_FEATURES } from '../feature-negotiation.js';

/** Default queue size cap: what a device offers (up to 32768) does not decide the driver's memory. */
const DEFAULT_MAX_QUEUE_SIZE = 128;

export interface VirtioConsoleDriverOptions extends VirtioDriverOptions {
  /** Use VIRTIO_CONSOLE_F_MULTIPORT when offered (default true). */
  readonly multiport?: boolean;
  /** Bytes per receive buffer (default 4096, as Linux's PAGE_SIZE buffers). */
  readonly rxBufferSize?: number;
  /** Largest chunk a write puts in one transmit buffer (default 4096). */
  readonly txChunkSize?: number;
  /** Queue size (default the device's maximum, at most 128 here). */
  readonly queueSize?: number;
}

export interface ConsoleSize {
  readonly cols: number;
  readonly rows: number;
}

interface Received {
  readonly token: number;
  readonly bytes: Uint8Array;
  offset: number;
}

/** One port as the driver sees it. */
export class ConsoleDriverPort {
  /** Name from PORT_NAME (multiport), if the device gave one. */
  name: string | undefined;
  /** The device made it a console (CONSOLE_PORT; always port 0 without multiport). */
  isConsole: boolean;
  /** The host end is connected (PORT_OPEN from the device; always true without multiport). */
  hostConnected: boolean;
  /** The console size last sent with RESIZE for this port. */
  size: ConsoleSize | undefined;
  private readonly received: Received[] = [];
  /** Receive buffers the device returned empty, re-posted on the next read. */
  private readonly parked: number[] = [];
  private waiter: (() => void) | undefined;
  private writeChain: Promise<unknown> = Promise.resolve();
  private closed = false;
  /** The device removed the port (DEVICE_REMOVE) and has not added it again. */
  private removed = false;
  /** Why the receive loop stopped: reads fail with it at once. */
  private rxFault: VirtioError | undefined;
  private readonly multiport: boolean;

  /** @internal built by VirtioConsoleDriver */
  constructor(
    readonly id: number,
    private readonly driver: VirtioConsoleDriver,
    private readonly rx: DriverQueue<number>,
    private readonly tx: DriverQueue<DmaBuffer>,
    private readonly rxBuffers: DmaBuffer[],
    multiport: boolean,
  ) {
    this.multiport = multiport;
    this.isConsole = !multiport && id === 0;
    this.hostConnected = !multiport;
  }

  /** Tell the device the guest opened the port (PORT_OPEN 1; nothing to do without multiport). */
  open(): Promise<void> {
    return this.driver.sendControl(this.id, C.VIRTIO_CONSOLE_PORT_OPEN, 1);
  }

  /** Tell the device the guest closed the port (PORT_OPEN 0). */
  close(): Promise<void> {
    return this.driver.sendControl(this.id, C.VIRTIO_CONSOLE_PORT_OPEN, 0);
  }

  /**
   * Send `bytes` to the host, in buffers of txChunkSize: as many as the transmitq has room for go to
   * the device with one notification. Resolves when the device has taken all of them; while the host
   * end is slow the device takes nothing, and this waits, rejecting with ERR_DEVICE_TIMEOUT once the
   * device has taken nothing for `timeoutMs` (default the driver's timeout; finite).
   */
  write(bytes: Uint8Array, timeoutMs = this.driver.core.timeoutMs): Promise<void> {
    if (this.removed) return Promise.reject(this.removedError());
    const next = this.writeChain.then(() => this.writeNow(bytes, timeoutMs));
    this.writeChain = next.catch(() => undefined);
    return next;
  }

  /**
   * The next received bytes (at most `max`), waiting up to `timeoutMs` (default the driver's timeout).
   * Buffers go back to the device only as they are read.
   */
  async read(max = Infinity, timeoutMs = this.driver.core.timeoutMs): Promise<Uint8Array> {
    const deadline = Date.now() + timeoutMs;
    while (this.received.length === 0) {
      const fault = this.driver.core.fault ?? this.rxFault;
      if (fault) throw fault;
      if (this.closed) throw new UsageError('driver closed');
      if (this.removed) throw this.removedError();
      const remaining = deadline - Date.now();
      if (remaining <= 0) throw new DeviceFaultError('ERR_DEVICE_TIMEOUT', `port ${this.id}: nothing received within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, remaining);
        function done(): void {
          clearTimeout(timer);
          resolve();
        }
        this.waiter = done;
      });
      this.waiter = undefined;
    }
    const head = this.received[0]!;
    const n = Math.min(max, head.bytes.byteLength - head.offset);
    const out = head.bytes.slice(head.offset, head.offset + n);
    head.offset += n;
    if (head.offset === head.bytes.byteLength) {
      this.received.shift();
      if (!this.closed && !this.removed) {
        this.postRx(head.token);
        for (const token of this.parked.splice(0)) this.postRx(token);
        await this.rx.kick();
      }
    }
    return out;
  }

  /** Bytes received and not yet read. */
  get buffered(): number {
    return this.received.reduce((n, r) => n + r.bytes.byteLength - r.offset, 0);
  }

  /** @internal give every receive buffer to the device and start taking what it fills */
  start(): Promise<void> {
    for (let i = 0; i < this.rxBuffers.length; i++) this.postRx(i);
    const loop = this.receiveLoop();
    return this.rx.kick().then(() => void loop);
  }

  /** @internal */
  stop(): void {
    this.closed = true;
    this.waiter?.();
  }

  /**
   * @internal DEVICE_REMOVE: unread data is dropped (its buffers wait, parked, for a re-add) and
   * reads and writes fail. Buffers still posted stay the device's: without a queue reset it may
   * write them until the device is reset, so they are neither freed nor given to anyone else, and a
   * re-added port takes them back instead of allocating more.
   */
  detach(): void {
    this.removed = true;
    for (const r of this.received.splice(0)) this.parked.push(r.token);
    this.waiter?.();
  }

  /** @internal DEVICE_ADD of a removed port: a fresh port on the same queues and buffers. */
  async reattach(): Promise<void> {
    this.removed = false;
    this.name = undefined;
    this.isConsole = false;
    this.hostConnected = !this.multiport;
    this.size = undefined;
    for (const token of this.parked.splice(0)) this.postRx(token);
    await this.rx.kick();
  }

  /** @internal the device is reset: give the receive buffers back to DMA memory */
  freeBuffers(): void {
    freeAll(this.driver.core.bus.dma, this.rxBuffers);
  }

  private removedError(): DeviceFaultError {
    return new DeviceFaultError('ERR_DEVICE_PORT_REMOVED', `console port ${this.id} was removed by the device`);
  }

  private postRx(token: number): void {
    if (this.closed) return; // the buffers are being freed
    const buf = this.rxBuffers[token]!;
    this.rx.submit([], [{ addr: buf.addr, len: buf.bytes.byteLength }], token);
  }

  private async receiveLoop(): Promise<void> {
    const dma = this.driver.core.bus.dma;
    try {
      while (!this.closed) {
        const used = await waitUsedOrIdle(this.rx);
        if (used === undefined) continue;
        for (const u of used) {
          // close() frees the receive buffers while this loop awaits: never look at freed memory.
          if (this.closed) break;
          // An empty buffer carries nothing: park it until a read makes progress, so that a device
          // returning every buffer empty cannot keep the driver re-posting in a loop. Data for a
          // removed port is dropped the same way.
          if (u.len === 0 || this.removed) {
            this.parked.push(u.token);
            continue;
          }
          const buf = this.rxBuffers[u.token]!;
          await dma.refresh(buf.addr, u.len);
          this.received.push({ token: u.token, bytes: buf.bytes.subarray(0, u.len), offset: 0 });
        }
        this.waiter?.();
      }
    } catch (err) {
      // Only this port's receiveq is broken (the others, and its transmitq, may still work).
      if (!this.closed) this.rxFault = loopFault(err, `console port ${this.id} receiveq`);
    } finally {
      this.stop();
    }
  }

  private async writeNow(bytes: Uint8Array, timeoutMs: number): Promise<void> {
    const dma = this.driver.core.bus.dma;
    const lent = this.driver.lent;
    const chunk = this.driver.txChunkSize;
    let inFlight = 0;
    const reclaim = (used: Completion<DmaBuffer>[]): void => {
      for (const u of used) lent.free(u.token);
      inFlight -= used.length;
    };
    const waitSome = async (): Promise<void> => reclaim(await this.tx.waitUsed(timeoutMs));
    let at = 0;
    while (at < bytes.byteLength) {
      while (this.tx.numFree < 1) await waitSome();
      // Every chunk the ring has room for, then one kick: the device takes them in one notification.
      for (; at < bytes.byteLength && this.tx.numFree >= 1; at += chunk) {
        const part = bytes.subarray(at, Math.min(bytes.byteLength, at + chunk));
        const buf = lent.alloc(part.byteLength, 16);
        buf.bytes.set(part);
        await dma.flush(buf.addr, part.byteLength);
        this.tx.submit([{ addr: buf.addr, len: part.byteLength }], [], buf);
        inFlight++;
      }
      await this.tx.kick();
    }
    while (inFlight > 0) await waitSome();
  }
}

export class VirtioConsoleDriver {
  private readonly ports = new Map<number, ConsoleDriverPort>();
  /** Ports the device removed, kept (with their buffers) for a re-add until close. */
  private readonly removedPorts = new Map<number, ConsoleDriverPort>();
  private readonly portListeners = new Set<(port: ConsoleDriverPort) => void>();
  private controlChain: Promise<unknown> = Promise.resolve();
  private closed = false;
  /** Control messages the device sent that named a port we do not have, or made no sense. */
  badControl = 0;
  /** Why the control receiveq loop stopped: no port can appear any more. */
  private controlFault: VirtioError | undefined;
  /** @internal transmit and control buffers the device holds, freed after the reset at close */
  readonly lent: LentBuffers;

  private constructor(
    /** The core driver, for anything not wrapped here. */
    readonly core: VirtioDriver,
    readonly multiport: boolean,
    /** max_nr_ports (1 without multiport). */
    readonly maxPorts: number,
    readonly txChunkSize: number,
    private readonly rxBufferSize: number,
    /** Every queue, set up at open (Linux does the same for all max_nr_ports). */
    private readonly queues: ReadonlyMap<number, DriverQueue<never>>,
  ) {
    this.controlRx = multiport ? queues.get(C.VIRTIO_CONSOLE_CONTROL_RECEIVEQ) : undefined;
    this.controlTx = multiport ? queues.get(C.VIRTIO_CONSOLE_CONTROL_TRANSMITQ) : undefined;
    this.lent = new LentBuffers(core.bus.dma);
  }

  private readonly controlRx: DriverQueue<number> | undefined;
  /** The control receiveq's buffers, freed at close. */
  private readonly controlBuffers: DmaBuffer[] = [];
  private readonly controlTx: DriverQueue<DmaBuffer> | undefined;

  /** Find virtio-console functions on `bus`. */
  static find(bus: PciBus): Promise<Bdf[]> {
    return VirtioDriver.find(bus, VIRTIO_ID_CONSOLE);
  }

  /** Initialise the device at `fn`; with multiport, ports appear as the device adds them (see {@link waitPort}). */
  static async open(bus: PciBus, fn: Bdf, options: VirtioConsoleDriverOptions = {}): Promise<VirtioConsoleDriver> {
    const core = await VirtioDriver.open(bus, fn, { ...options, deviceType: VIRTIO_ID_CONSOLE });
    try {
      return await VirtioConsoleDriver.init(core, options);
    } catch (err) {
      await core.close();
      throw err;
    }
  }

  private static async init(core: VirtioDriver, options: VirtioConsoleDriverOptions): Promise<VirtioConsoleDriver> {
    let wanted = DRIVER_CORE_FEATURES | featureSet(C.VIRTIO_CONSOLE_F_SIZE, C.VIRTIO_CONSOLE_F_EMERG_WRITE);
    if (options.multiport ?? true) wanted |= featureSet(C.VIRTIO_CONSOLE_F_MULTIPORT);
    const features = await core.negotiate(wanted);
    const multiport = hasFeature(features, C.VIRTIO_CONSOLE_F_MULTIPORT);
    const maxPorts = multiport ? await core.readConfig(C.VIRTIO_CONSOLE_CONFIG_MAX_NR_PORTS, 4) : 1;
    const queueCount = multiport ? C.consoleQueueCount(maxPorts) : 2;
    // Bound what a device can make us allocate: queues exist for every port the device may add.
    if (maxPorts < 1 || queueCount > 2 * 64) throw new DeviceFaultError('ERR_DEVICE_CONFIG', `max_nr_ports ${maxPorts} is outside 1..63`);
    const qo = { ...(options.queueSize !== undefined ? { size: options.queueSize } : {}), maxSize: DEFAULT_MAX_QUEUE_SIZE };
    const queues = new Map<number, DriverQueue<never>>();
    for (let i = 0; i < queueCount; i++) queues.set(i, await core.setupQueue<never>(i, qo));
    const drv = new VirtioConsoleDriver(core, multiport, maxPorts, options.txChunkSize ?? 4096, options.rxBufferSize ?? 4096, queues);
    try {
      await core.driverOk();
      if (multiport) {
        await drv.startControl();
        await drv.sendControl(0, C.VIRTIO_CONSOLE_DEVICE_READY, 1);
      } else {
        await drv.addPort(0);
      }
    } catch (err) {
      await drv.close(); // resets the device, then frees every buffer taken so far
      throw err;
    }
    return drv;
  }

  /** The ports the device has added so far. */
  get portList(): ConsoleDriverPort[] {
    return [...this.ports.values()];
  }

  /** Port `id` if the device added it. */
  port(id: number): ConsoleDriverPort | undefined {
    return this.ports.get(id);
  }

  /**
   * Wait until a port matching `which` (an id, or a name from PORT_NAME) exists and, for a name,
   * has been named; rejects after `timeoutMs`.
   */
  waitPort(which: number | string, timeoutMs = this.core.timeoutMs): Promise<ConsoleDriverPort> {
    const match = (p: ConsoleDriverPort): boolean => (typeof which === 'number' ? p.id === which : p.name === which);
    const found = this.portList.find(match);
    if (found) return Promise.resolve(found);
    if (this.controlFault) return Promise.reject(this.controlFault);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.portListeners.delete(check);
        reject(new DeviceFaultError('ERR_DEVICE_TIMEOUT', `console port ${which} did not appear within ${timeoutMs} ms`));
      }, timeoutMs);
      const check = (p: ConsoleDriverPort): void => {
        if (!match(p)) return;
        clearTimeout(timer);
        this.portListeners.delete(check);
        resolve(p);
      };
      this.portListeners.add(check);
    });
  }

  /** The console size from config (VIRTIO_CONSOLE_F_SIZE), or undefined when not offered. */
  async size(): Promise<ConsoleSize | undefined> {
    if (!hasFeature(this.core.features, C.VIRTIO_CONSOLE_F_SIZE)) return undefined;
    return this.core.readConfigStable(async () => ({
      cols: await this.core.readConfig(C.VIRTIO_CONSOLE_CONFIG_COLS, 2),
      rows: await this.core.readConfig(C.VIRTIO_CONSOLE_CONFIG_ROWS, 2),
    }));
  }

  /** Write bytes through emerg_wr, one config write each (VIRTIO_CONSOLE_F_EMERG_WRITE): works before any queue does. */
  async emergencyWrite(bytes: Uint8Array): Promise<void> {
    if (!hasFeature(this.core.features, C.VIRTIO_CONSOLE_F_EMERG_WRITE))
      throw new UsageError('VIRTIO_CONSOLE_F_EMERG_WRITE was not negotiated');
    for (const b of bytes) await this.core.writeConfig(C.VIRTIO_CONSOLE_CONFIG_EMERG_WR, 4, b);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const ports = [...this.ports.values(), ...this.removedPorts.values()];
    for (const p of ports) p.stop();
    await this.core.close();
    for (const p of ports) p.freeBuffers();
    freeAll(this.core.bus.dma, this.controlBuffers);
    this.lent.close();
  }

  /** @internal send one control message (multiport only; a no-op otherwise). */
  sendControl(id: number, event: number, value: number): Promise<void> {
    const q = this.controlTx;
    if (!q) return Promise.resolve();
    const next = this.controlChain.then(async () => {
      // Queued before close() and run after it: lent.alloc refuses then (UsageError).
      const dma = this.core.bus.dma;
      const buf = this.lent.alloc(C.VIRTIO_CONSOLE_CONTROL_SIZE, 16);
      const dv = new DataView(buf.bytes.buffer, buf.bytes.byteOffset, C.VIRTIO_CONSOLE_CONTROL_SIZE);
      dv.setUint32(C.VIRTIO_CONSOLE_CONTROL_ID, id, true);
      dv.setUint16(C.VIRTIO_CONSOLE_CONTROL_EVENT, event, true);
      dv.setUint16(C.VIRTIO_CONSOLE_CONTROL_VALUE, value, true);
      await dma.flush(buf.addr, C.VIRTIO_CONSOLE_CONTROL_SIZE);
      q.submit([{ addr: buf.addr, len: C.VIRTIO_CONSOLE_CONTROL_SIZE }], [], buf);
      await q.kick();
      for (const u of await q.waitUsed()) this.lent.free(u.token);
    });
    this.controlChain = next.catch(() => undefined);
    return next;
  }

  private async addPort(id: number): Promise<ConsoleDriverPort | undefined> {
    // A DEVICE_ADD handled while close() runs: buffers taken now would outlive its freeing.
    if (this.closed) return undefined;
    if (id >= this.maxPorts) {
      this.badControl++;
      return undefined;
    }
    const rx = this.queues.get(C.consoleRxQueueIndex(id)) as DriverQueue<number> | undefined;
    const tx = this.queues.get(C.consoleTxQueueIndex(id)) as DriverQueue<DmaBuffer> | undefined;
    if (!rx || !tx) throw new DeviceFaultError('ERR_DEVICE_QUEUE', `console port ${id} has no queues`);
    const buffers = this.allocRxBuffers(rx);
    const port = new ConsoleDriverPort(id, this, rx, tx, buffers, this.multiport);
    this.ports.set(id, port);
    await port.start();
    return port;
  }

  /** DEVICE_ADD of a port the device removed: the same queues and buffers, nothing allocated. */
  private async readdPort(id: number): Promise<ConsoleDriverPort> {
    const port = this.removedPorts.get(id)!;
    this.removedPorts.delete(id);
    this.ports.set(id, port);
    await port.reattach();
    return port;
  }

  private announce(port: ConsoleDriverPort): void {
    for (const l of [...this.portListeners]) l(port);
  }

  /** A receive buffer for each descriptor of `q`, or none (a device error: its queue size asks too much). */
  private allocRxBuffers(q: DriverQueue<number>): DmaBuffer[] {
    try {
      return allocBuffers(this.core.bus.dma, q.size, this.rxBufferSize, 16);
    } catch (cause) {
      throw new DeviceFaultError(
        'ERR_DEVICE_QUEUE',
        `queue ${q.index}: ${q.size} receive buffers of ${this.rxBufferSize} bytes do not fit in DMA memory`,
        { cause },
      );
    }
  }

  private async startControl(): Promise<void> {
    const q = this.controlRx!;
    const buffers = this.allocRxBuffers(q);
    for (const b of buffers) this.controlBuffers.push(b);
    const post = (i: number): void => {
      q.submit([], [{ addr: buffers[i]!.addr, len: buffers[i]!.bytes.byteLength }], i);
    };
    for (let i = 0; i < buffers.length; i++) post(i);
    await q.kick();
    void (async () => {
      try {
        while (!this.closed) {
          const used = await waitUsedOrIdle(q);
          if (used === undefined) continue;
          for (const u of used) {
            // close() frees the control buffers while this loop awaits: never look at freed memory.
            if (this.closed) break;
            const buf = buffers[u.token]!;
            await this.core.bus.dma.refresh(buf.addr, u.len);
            const bad = this.badControl;
            await this.handleControl(buf.bytes.slice(0, u.len)).catch(() => this.badControl++);
            // A buffer that carried nonsense is not given back: a device flooding nonsense runs dry.
            if (this.badControl === bad && !this.closed) post(u.token);
          }
          if (!this.closed) await q.kick();
        }
      } catch (err) {
        // Only the control receiveq is broken: ports keep their data queues (and v86's device
        // returns control buffers twice), but no port can appear or change any more.
        if (!this.closed) this.controlFault = loopFault(err, 'control receiveq');
      }
    })();
  }

  private async handleControl(bytes: Uint8Array): Promise<void> {
    if (bytes.byteLength < C.VIRTIO_CONSOLE_CONTROL_SIZE) {
      this.badControl++;
      return;
    }
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const id = dv.getUint32(C.VIRTIO_CONSOLE_CONTROL_ID, true);
    const event = dv.getUint16(C.VIRTIO_CONSOLE_CONTROL_EVENT, true);
    const value = dv.getUint16(C.VIRTIO_CONSOLE_CONTROL_VALUE, true);
    const data = bytes.subarray(C.VIRTIO_CONSOLE_CONTROL_SIZE);
    if (event === C.VIRTIO_CONSOLE_DEVICE_ADD) {
      if (this.ports.has(id)) {
        this.badControl++;
        return;
      }
      const port = this.removedPorts.get(id) !== undefined ? await this.readdPort(id) : await this.addPort(id);
      if (port) {
        await this.sendControl(id, C.VIRTIO_CONSOLE_PORT_READY, 1);
        this.announce(port);
      }
      return;
    }
    const port = this.ports.get(id);
    if (!port) {
      this.badControl++;
      return;
    }
    switch (event) {
      case C.VIRTIO_CONSOLE_CONSOLE_PORT:
        if (value !== 1) return;
        port.isConsole = true;
        // A console port is opened at once, as Linux's hvc does.
        await port.open();
        break;
      case C.VIRTIO_CONSOLE_PORT_NAME: {
        const end = data.indexOf(0);
        port.name = new TextDecoder().decode(end < 0 ? data : data.subarray(0, end));
        break;
      }
      case C.VIRTIO_CONSOLE_PORT_OPEN:
        port.hostConnected = value === 1;
        break;
      case C.VIRTIO_CONSOLE_RESIZE:
        if (data.byteLength < C.VIRTIO_CONSOLE_RESIZE_SIZE) {
          this.badControl++;
          return;
        }
        port.size = {
          cols: dv.getUint16(C.VIRTIO_CONSOLE_CONTROL_SIZE + C.VIRTIO_CONSOLE_RESIZE_COLS, true),
          rows: dv.getUint16(C.VIRTIO_CONSOLE_CONTROL_SIZE + C.VIRTIO_CONSOLE_RESIZE_ROWS, true),
        };
        break;
      case C.VIRTIO_CONSOLE_DEVICE_REMOVE:
        port.detach();
        this.ports.delete(id);
        this.removedPorts.set(id, port);
        return;
      default:
        this.badControl++;
        return;
    }
    this.announce(port);
  }
}
