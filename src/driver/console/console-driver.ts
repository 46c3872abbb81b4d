/**
 * The virtio-console driver (spec 5.3) on the VirtioDriver core: console size, emergency write, and
 * with VIRTIO_CONSOLE_F_MULTIPORT the control-queue handshake (DEVICE_READY, then PORT_READY for each
 * DEVICE_ADD) that tells it port names, console ports and whether the host end is open.
 * A port's receiveq and transmitq are console-port.ts's; the control queues are control-queues.ts's.
 */

import { DeviceFaultError, UsageError } from '../../errors.js';
import { featureSet, hasFeature } from '../../spec/features.js';
import { VIRTIO_ID_CONSOLE } from '../../spec/ids.js';
import * as C from '../../spec/console.js';
import { allocBuffers, LentBuffers } from '../dma-buffers.js';
import type { DriverQueue } from '../driver-queue.js';
import type { Bdf, PciBus } from '../../bus/pci-bus.js';
import type { DmaBuffer } from '../../memory/dma.js';
import { VirtioDriver, type VirtioDriverOptions } from '../virtio-driver.js';
import { DRIVER_CORE_FEATURES } from '../feature-negotiation.js';
import { ConsoleDriverPort, type ConsoleSize } from './console-port.js';
import { ControlQueues } from './control-queues.js';

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

export class VirtioConsoleDriver {
  private readonly ports = new Map<number, ConsoleDriverPort>();
  /** Ports the device removed, kept (with their buffers) for a re-add until close. */
  private readonly removedPorts = new Map<number, ConsoleDriverPort>();
  private readonly portListeners = new Set<(port: ConsoleDriverPort) => void>();
  private closed = false;
  /** Control messages the device sent that named a port we do not have, or made no sense. */
  badControl = 0;
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
    this.lent = new LentBuffers(core.bus.dma);
    const rx = queues.get(C.VIRTIO_CONSOLE_CONTROL_RECEIVEQ);
    const tx = queues.get(C.VIRTIO_CONSOLE_CONTROL_TRANSMITQ);
    this.control = multiport && rx && tx ? new ControlQueues(rx, tx, this.lent, core.bus.dma) : undefined;
  }

  /** The control queues (multiport only). */
  private readonly control: ControlQueues | undefined;

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
    if (this.control?.fault) return Promise.reject(this.control.fault);
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
    this.control?.stop();
    const ports = [...this.ports.values(), ...this.removedPorts.values()];
    for (const p of ports) p.stop();
    await this.core.close();
    for (const p of ports) p.freeBuffers();
    this.control?.freeBuffers();
    this.lent.close();
  }

  /** @internal send one control message (multiport only; a no-op otherwise). */
  sendControl(id: number, event: number, value: number): Promise<void> {
    return this.control?.send(id, event, value) ?? Promise.resolve();
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

  private startControl(): Promise<void> {
    const control = this.control!;
    return control.start(this.allocRxBuffers(control.rx), async (bytes) => {
      const bad = this.badControl;
      await this.handleControl(bytes).catch(() => this.badControl++);
      return this.badControl === bad;
    });
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
