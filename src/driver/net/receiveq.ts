/**
 * The net driver's receiveqs (5.1.9.3, 5.1.9.4): kept full of receive buffers, the used ones
 * assembled into frames (with VIRTIO_NET_F_MRG_RXBUF a frame spans num_buffers of them), and the
 * frames handed to the caller, a promise per frame or as they come. A device returning nonsense
 * cannot make the driver loop or grow: such buffers are parked, counted, and the frames held for a
 * slow caller are bounded.
 */

import { DeviceFaultError, UsageError, type VirtioError } from '../../errors.js';
import type { DmaBuffer } from '../../memory/dma.js';
import { ByteSlab } from '../../memory/byte-slab.js';
import * as N from '../../spec/net.js';
import { allocBuffers } from '../dma-buffers.js';
import { IDLE_WAIT_SLICE_MS, waitUsedOrIdle, type Completion, type DmaSpan, type DriverQueue } from '../driver-queue.js';
import { loopFault } from '../loop-fault.js';
import type { VirtioDriver } from '../virtio-driver.js';
import { frameSpans, type Framing } from './framing.js';

/** Bytes per slab received frames are copied into (a thousand small frames, forty full-size ones). */
const RX_SLAB_BYTES = 64 << 10;

/** How the driver takes received frames apart (fixed at open). */
export interface RxLayout {
  readonly hdrSize: number;
  /** MRG_RXBUF: num_buffers says how many buffers a frame takes; otherwise always one (5.1.9.4). */
  readonly mergeable: boolean;
  /** The most buffers one frame may take: the largest frame this driver accepts, in its buffers. */
  readonly maxFrameBuffers: number;
}

/** The receive counters (NetDriverStats'). */
export interface RxStats {
  rxFrames: number;
  rxBuffers: number;
  rxOverflow: number;
  rxErrors: number;
}

interface RxQueue {
  readonly queue: DriverQueue<number>;
  readonly buffers: DmaBuffer[];
  /** Each buffer's spans, built once (the ring keeps them until the buffer comes back). */
  readonly spans: DmaSpan[][];
  /** Used buffers not yet assembled into a frame (MRG_RXBUF frames arrive as several). */
  readonly pending: Completion<number>[];
  /** Buffers the device returned with nonsense, held back until a good frame arrives. */
  readonly parked: number[];
}

/** See the file comment. */
export class Receiveqs {
  private readonly queues: RxQueue[];
  private readonly frames: Uint8Array[] = [];
  private readonly frameWaiters: { resolve: (f: Uint8Array) => void; reject: (e: Error) => void }[] = [];
  /** Where received frames are copied to (the caller keeps them). */
  private readonly rxSlab = new ByteSlab(RX_SLAB_BYTES);
  private readonly loops: Promise<void>[] = [];
  /** Why a receive loop stopped: frames can no longer arrive (whole). */
  private rxFault: VirtioError | undefined;
  private closed = false;

  constructor(
    queues: readonly DriverQueue<number>[],
    private readonly core: VirtioDriver,
    private readonly rx: RxLayout,
    private readonly framing: Framing,
    private readonly maxQueuedFrames: number,
    private readonly stats: RxStats,
  ) {
    this.queues = queues.map((queue) => ({ queue, buffers: [], spans: [], pending: [], parked: [] }));
  }

  /** Fill every receiveq with buffers of `bufferSize` bytes (each also kept in `rxBuffers`, freed at close) and notify the device. */
  async fill(bufferSize: number, rxBuffers: DmaBuffer[]): Promise<void> {
    const hdrSize = this.rx.hdrSize;
    for (const rq of this.queues) {
      // Legacy framing takes two descriptors per receive buffer.
      const count = this.framing === 'legacy' ? Math.floor(rq.queue.size / 2) : rq.queue.size;
      try {
        for (const b of allocBuffers(this.core.bus.dma, count, bufferSize, 16)) rq.buffers.push(b);
      } catch (cause) {
        throw new DeviceFaultError(
          'ERR_DEVICE_QUEUE',
          `receiveq ${rq.queue.index}: ${count} buffers of ${bufferSize} bytes do not fit in DMA memory`,
          { cause },
        );
      }
      for (const b of rq.buffers) {
        rxBuffers.push(b);
        rq.spans.push(frameSpans(this.framing, hdrSize, b.addr, b.bytes.length - hdrSize));
      }
      for (let i = 0; i < count; i++) this.postRx(rq, i);
      await rq.queue.kick();
    }
  }

  /** Start taking frames from every receiveq. */
  start(): void {
    for (const rq of this.queues) this.loops.push(this.receiveLoop(rq));
  }

  /** The driver closes: no buffer is posted again, the loops end (wait for them with {@link stopped}). */
  close(): void {
    this.closed = true;
  }

  /** Settles once every receive loop has ended (after {@link close} and the device's reset). */
  async stopped(): Promise<void> {
    await Promise.allSettled(this.loops);
  }

  /** Fail every pending receive with `error` (the driver closed). */
  failWaiters(error: Error): void {
    for (const w of this.frameWaiters.splice(0)) w.reject(error);
  }

  /** See VirtioNetDriver.receive. */
  receive(timeoutMs: number): Promise<Uint8Array> {
    const ready = this.frames.shift();
    if (ready) return Promise.resolve(ready);
    // A receive loop that stopped recorded why: nothing will arrive, so say so now, not by a timeout.
    const fault = this.core.fault ?? this.rxFault;
    if (fault) return Promise.reject(fault);
    if (this.closed) return Promise.reject(new UsageError('driver closed'));
    return new Promise((resolve, reject) => {
      const waiter = {
        resolve: (f: Uint8Array) => {
          clearTimeout(timer);
          resolve(f);
        },
        reject: (e: Error) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      const timer = setTimeout(() => {
        this.frameWaiters.splice(this.frameWaiters.indexOf(waiter), 1);
        reject(new DeviceFaultError('ERR_DEVICE_TIMEOUT', `no frame received within ${timeoutMs} ms`));
      }, timeoutMs);
      this.frameWaiters.push(waiter);
    });
  }

  /** See VirtioNetDriver.receiveAll. */
  receiveAll(timeoutMs: number): Promise<Uint8Array[]> {
    if (this.frames.length > 0) return Promise.resolve(this.frames.splice(0));
    return this.receive(timeoutMs).then((first) => {
      const rest = this.frames.splice(0);
      rest.unshift(first);
      return rest;
    });
  }

  /** Received frames as they come, until the driver closes. */
  async *received(): AsyncGenerator<Uint8Array> {
    while (!this.closed || this.frames.length > 0) {
      try {
        yield await this.receive(IDLE_WAIT_SLICE_MS);
      } catch (err) {
        if (err instanceof DeviceFaultError && err.code === 'ERR_DEVICE_TIMEOUT') continue;
        if (this.closed) return;
        throw err;
      }
    }
  }

  private postRx(rq: RxQueue, index: number): void {
    if (this.closed) return; // the buffers are being freed
    rq.queue.submit([], rq.spans[index]!, index);
  }

  private async receiveLoop(rq: RxQueue): Promise<void> {
    try {
      while (!this.closed) {
        const used = await waitUsedOrIdle(rq.queue);
        if (used === undefined) continue;
        for (const u of used) rq.pending.push(u); // at most the queue size, but no spread of a device-sized array
        const reposted = await this.assembleFrames(rq);
        if (reposted > 0 && !this.closed) await rq.queue.kick();
      }
    } catch (err) {
      if (this.closed) return;
      const fault = (this.rxFault ??= loopFault(err, `receiveq ${rq.queue.index}`));
      for (const w of this.frameWaiters.splice(0)) w.reject(fault);
    }
  }

  /**
   * Take whole frames from the front of `pending`, deliver them and re-post their buffers; returns
   * how many buffers were re-posted. One pass over the pending buffers, however many the device
   * returned. A buffer with a nonsensical header or length (shorter than the header, num_buffers 0
   * or more than the largest frame takes) is parked instead of re-posted, until the next good frame,
   * so that a device returning garbage cannot keep the driver re-posting in a loop.
   */
  private async assembleFrames(rq: RxQueue): Promise<number> {
    const dma = this.core.bus.dma;
    const { hdrSize, mergeable, maxFrameBuffers } = this.rx;
    let at = 0;
    let reposted = 0;
    while (at < rq.pending.length) {
      const first = rq.pending[at]!;
      let count = 1;
      if (first.len >= hdrSize && mergeable) {
        const firstBuf = rq.buffers[first.token]!;
        if (!dma.coherent) await dma.refresh(firstBuf.addr, hdrSize);
        count = N.decodeVirtioNetHdr(firstBuf.bytes, hdrSize).numBuffers;
      }
      if (first.len < hdrSize || count < 1 || count > Math.min(maxFrameBuffers, rq.queue.size)) {
        this.stats.rxErrors++;
        rq.parked.push(first.token);
        at++;
        continue;
      }
      if (rq.pending.length - at < count) break; // the rest of the frame is still to come
      this.deliver(dma.coherent ? this.frameOf(rq, at, count) : await this.refreshedFrameOf(rq, at, count));
      this.stats.rxBuffers += count;
      for (let k = at; k < at + count; k++) this.postRx(rq, rq.pending[k]!.token);
      at += count;
      for (const token of rq.parked) this.postRx(rq, token);
      reposted += count + rq.parked.length;
      rq.parked.length = 0;
    }
    rq.pending.splice(0, at);
    return reposted;
  }

  /** {@link frameOf} after the used buffers' bytes are fetched from a remote bus. */
  private async refreshedFrameOf(rq: RxQueue, at: number, count: number): Promise<Uint8Array> {
    for (let k = at; k < at + count; k++) {
      const p = rq.pending[k]!;
      await this.core.bus.dma.refresh(rq.buffers[p.token]!.addr, p.len);
    }
    return this.frameOf(rq, at, count);
  }

  /** The frame in the used buffers pending[at, at + count), after the first one's header (a copy the caller keeps). */
  private frameOf(rq: RxQueue, at: number, count: number): Uint8Array {
    const pending = rq.pending;
    const hdrSize = this.rx.hdrSize;
    let total = 0;
    for (let k = at; k < at + count; k++) total += pending[k]!.len;
    const frame = this.rxSlab.take(total - hdrSize);
    let to = 0;
    for (let k = at; k < at + count; k++) {
      const p = pending[k]!;
      const from = k === at ? hdrSize : 0;
      frame.set(rq.buffers[p.token]!.bytes.subarray(from, p.len), to);
      to += p.len - from;
    }
    return frame;
  }

  private deliver(frame: Uint8Array): void {
    this.stats.rxFrames++;
    const waiter = this.frameWaiters.shift();
    if (waiter) waiter.resolve(frame);
    else if (this.frames.length < this.maxQueuedFrames) this.frames.push(frame);
    else this.stats.rxOverflow++;
  }
}
