/**
 * One virtio-console port as the driver sees it (5.3.6): its receiveq, whose buffers stay filled until
 * read so a slow reader holds the device back instead of losing bytes, and its transmitq.
 */

import { DeviceFaultError, UsageError, type VirtioError } from '../../errors.js';
import * as C from '../../spec/console.js';
import type { DmaBuffer } from '../../memory/dma.js';
import { freeAll, type LentBuffers } from '../dma-buffers.js';
import { waitUsedOrIdle, type DriverQueue } from '../driver-queue.js';
import { SerialWork } from '../serial-work.js';
import { loopFault } from '../loop-fault.js';
import type { VirtioDriver } from '../virtio-driver.js';
import { transmit } from './transmitq.js';

/** What a port uses of its driver (VirtioConsoleDriver; named here so this file does not import it). */
interface PortDriver {
  readonly core: VirtioDriver;
  /** Where transmit buffers are lent from. */
  readonly lent: LentBuffers;
  readonly txChunkSize: number;
  sendControl(id: number, event: number, value: number): Promise<void>;
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
  private readonly writes = new SerialWork();
  private closed = false;
  /** The device removed the port (DEVICE_REMOVE) and has not added it again. */
  private removed = false;
  /** Why the receive loop stopped: reads fail with it at once. */
  private rxFault: VirtioError | undefined;
  private readonly multiport: boolean;

  /** @internal built by VirtioConsoleDriver */
  constructor(
    readonly id: number,
    private readonly driver: PortDriver,
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
    const d = this.driver;
    return this.writes.run(() => transmit(this.tx, d.lent, d.core.bus.dma, d.txChunkSize, bytes, timeoutMs));
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
}
