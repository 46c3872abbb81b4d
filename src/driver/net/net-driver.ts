/**
 * The virtio-net driver (spec 5.1) on the VirtioDriver core: negotiates, keeps the receiveqs full,
 * sends frames, hands received frames to the caller (a promise per frame, or an async iterator),
 * and speaks the control queue (rx modes, MAC table, MAC address, announce ack, queue pairs).
 * Works against our device and against QEMU's virtio-net-pci.
 */

import { DeviceFaultError, UsageError, type VirtioError } from '../../errors.js';
import { allocBuffers, freeAll, LentBuffers } from '../dma-buffers.js';
import { ByteSlab } from '../../memory/byte-slab.js';
import { featureSet, hasFeature, VIRTIO_F_ANY_LAYOUT, VIRTIO_F_VERSION_1 } from '../../spec/features.js';
import { VIRTIO_ID_NET } from '../../spec/ids.js';
import * as N from '../../spec/net.js';
import type { Completion, DmaSpan, DriverQueue } from '../driver-queue.js';
import type { Bdf, PciBus } from '../../bus/pci-bus.js';
import type { DmaBuffer } from '../../memory/dma.js';
import { loopFault, VirtioDriver, type VirtioDriverOptions } from '../virtio-driver.js';
import { DRIVER_CORE_FEATURES } from '../feature-negotiation.js';

/** Receive buffer without MRG_RXBUF: header + 1514-byte frame + VLAN tag (Linux's GOOD_PACKET_LEN). */
const SMALL_RX_BUFFER = N.VIRTIO_NET_HDR_SIZE + 1518;
/** Idle waits for received frames are sliced so that a quiet link is not a timeout. */
const WAIT_SLICE_MS = 60_000;
/** Bytes per slab received frames are copied into (a thousand small frames, forty full-size ones). */
const RX_SLAB_BYTES = 64 << 10;
/** Default queue size cap: what a device offers (up to 32768) does not decide the driver's memory. */
const DEFAULT_MAX_QUEUE_SIZE = 256;

export interface VirtioNetDriverOptions extends VirtioDriverOptions {
  /** Use VIRTIO_NET_F_MRG_RXBUF when offered (default true). */
  readonly mergeableRxBuffers?: boolean;
  /** Bytes per receive buffer with MRG_RXBUF (default 2048). Without it each buffer holds a whole frame. */
  readonly rxBufferSize?: number;
  /** Queue pairs to use when the device offers VIRTIO_NET_F_MQ (default 1). */
  readonly queuePairs?: number;
  /** Queue size (default the device's maximum, at most 256). */
  readonly queueSize?: number;
  /** Received frames held for the caller before newer ones are dropped (default 1024). */
  readonly maxQueuedFrames?: number;
}

/** How the driver takes received frames apart (fixed at open). */
interface RxLayout {
  readonly hdrSize: number;
  /** MRG_RXBUF: num_buffers says how many buffers a frame takes; otherwise always one (5.1.9.4). */
  readonly mergeable: boolean;
  /** The most buffers one frame may take: the largest frame this driver accepts, in its buffers. */
  readonly maxFrameBuffers: number;
}

/**
 * How the driver lays out its chains. On the legacy interface without VIRTIO_F_ANY_LAYOUT
 * (5.1.9.8): the virtio_net_hdr in a descriptor of its own, the frame in the next; a control
 * command's class and command in one 2-byte descriptor, its data in one more (two for
 * VIRTIO_NET_CTRL_MAC_TABLE_SET: one per table), the ack in a 1-byte one. Otherwise free, and the
 * driver uses one descriptor per buffer.
 */
type Framing = 'any-layout' | 'legacy';

export interface NetDriverStats {
  rxFrames: number;
  /** Receive buffers the frames took (more than rxFrames when MRG_RXBUF spreads frames). */
  rxBuffers: number;
  /** Frames dropped because the caller did not take them (maxQueuedFrames). */
  rxOverflow: number;
  /** Used buffers whose header or length made no sense (a broken device). */
  rxErrors: number;
  txFrames: number;
}

/** Features this driver can use; the device's offer narrows them. */
const WANTED =
  DRIVER_CORE_FEATURES |
  featureSet(
    N.VIRTIO_NET_F_MAC,
    N.VIRTIO_NET_F_STATUS,
    N.VIRTIO_NET_F_CTRL_VQ,
    N.VIRTIO_NET_F_CTRL_RX,
    N.VIRTIO_NET_F_CTRL_RX_EXTRA,
    N.VIRTIO_NET_F_CTRL_MAC_ADDR,
    N.VIRTIO_NET_F_GUEST_ANNOUNCE,
  );

/** What VIRTIO_NET_CTRL_MAC_ADDR_SET needs negotiated (5.1.3, 5.1.9.5.2.2). */
const MAC_ADDR_SET_NEEDS: readonly number[] = [N.VIRTIO_NET_F_CTRL_MAC_ADDR, N.VIRTIO_NET_F_CTRL_RX];

/**
 * A transmit buffer. Frames up to a full Ethernet frame with a VLAN tag go in buffers of the
 * queue's own pool, taken when first needed and kept until close (at most one per descriptor, so
 * bounded by the queue size); larger ones in a buffer lent for that frame alone.
 */
interface TxSlot {
  readonly buf: DmaBuffer;
  /** The pool it goes back to when the device returns it; undefined for a lent buffer. */
  readonly home: TxSlot[] | undefined;
}

/** A transmitq with its pool of buffers and the kick queued for this tick. */
interface TxLane {
  readonly queue: DriverQueue<TxSlot>;
  readonly free: TxSlot[];
  /** Pool buffers taken so far. */
  pooled: number;
  kick: Promise<void> | undefined;
}

/** Largest frame a pooled transmit buffer holds: 1514 bytes and a VLAN tag. */
const TX_POOL_FRAME = 1518;

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

export class VirtioNetDriver {
  readonly stats: NetDriverStats = { rxFrames: 0, rxBuffers: 0, rxOverflow: 0, rxErrors: 0, txFrames: 0 };
  private macAddress: Uint8Array;
  private readonly frames: Uint8Array[] = [];
  private readonly frameWaiters: { resolve: (f: Uint8Array) => void; reject: (e: Error) => void }[] = [];
  private readonly linkListeners = new Set<(up: boolean) => void>();
  private closed = false;
  private ctrlChain: Promise<unknown> = Promise.resolve();
  private txChain: Promise<unknown> = Promise.resolve();
  /** Sends waiting in the serialized lane; while there are any, new sends queue behind them (order). */
  private txQueued = 0;
  private readonly txLanes: TxLane[];
  /** Where received frames are copied to (the caller keeps them). */
  private readonly rxSlab = new ByteSlab(RX_SLAB_BYTES);
  private readonly loops: Promise<void>[] = [];
  private readonly hdrSize: number;
  /** Transmit and control buffers the device holds, freed after the reset at close. */
  private readonly lent: LentBuffers;
  /** Why a receive loop stopped: frames can no longer arrive (whole). */
  private rxFault: VirtioError | undefined;

  private constructor(
    /** The core driver, for anything not wrapped here. */
    readonly core: VirtioDriver,
    txQueues: DriverQueue<TxSlot>[],
    private readonly ctrlQueue: DriverQueue<DmaBuffer> | undefined,
    private readonly rx: RxLayout,
    private readonly framing: Framing,
    mac: Uint8Array,
    private readonly maxQueuedFrames: number,
    /** Every receive buffer, freed at close once the device is reset. */
    private readonly rxBuffers: DmaBuffer[],
  ) {
    this.hdrSize = rx.hdrSize;
    this.macAddress = mac;
    this.lent = new LentBuffers(core.bus.dma);
    this.txLanes = txQueues.map((queue) => ({ queue, free: [], pooled: 0, kick: undefined }));
  }

  /** Find virtio-net functions on `bus`. */
  static find(bus: PciBus): Promise<Bdf[]> {
    return VirtioDriver.find(bus, VIRTIO_ID_NET);
  }

  /** Initialise the device at `fn` (spec 3.1.1 and 5.1.5) and start receiving. */
  static async open(bus: PciBus, fn: Bdf, options: VirtioNetDriverOptions = {}): Promise<VirtioNetDriver> {
    const core = await VirtioDriver.open(bus, fn, { ...options, deviceType: VIRTIO_ID_NET });
    const rxBuffers: DmaBuffer[] = [];
    try {
      return await VirtioNetDriver.init(core, options, rxBuffers);
    } catch (err) {
      // Reset first: the device may hold receive buffers until then.
      await core.close().catch(() => undefined);
      freeAll(bus.dma, rxBuffers);
      throw err;
    }
  }

  private static async init(core: VirtioDriver, options: VirtioNetDriverOptions, rxBuffers: DmaBuffer[]): Promise<VirtioNetDriver> {
    const wantPairs = options.queuePairs ?? 1;
    if (!Number.isInteger(wantPairs) || wantPairs < 1) throw new UsageError('queuePairs must be a positive integer');
    let wanted = WANTED;
    if (options.mergeableRxBuffers ?? true) wanted |= featureSet(N.VIRTIO_NET_F_MRG_RXBUF);
    if (wantPairs > 1) wanted |= featureSet(N.VIRTIO_NET_F_MQ);
    const features = await core.negotiate(wanted);
    const has = (b: number): boolean => hasFeature(features, b);
    const maxPairs = has(N.VIRTIO_NET_F_MQ) ? await core.readConfig(N.VIRTIO_NET_CONFIG_MAX_VIRTQUEUE_PAIRS, 2) : 1;
    const pairs = Math.min(wantPairs, maxPairs);
    if (pairs < 1) throw new DeviceFaultError('ERR_DEVICE_CONFIG', `max_virtqueue_pairs is ${maxPairs}`);
    const mergeable = has(N.VIRTIO_NET_F_MRG_RXBUF);
    // 12 bytes on the modern interface or with MRG_RXBUF; 10 for a legacy driver without it (5.1.9.1).
    const hdrSize = N.virtioNetHdrSize(has(VIRTIO_F_VERSION_1), mergeable);
    const bufferSize = mergeable ? (options.rxBufferSize ?? 2048) : SMALL_RX_BUFFER;
    if (bufferSize < hdrSize) throw new UsageError(`rxBufferSize must be at least ${hdrSize}`);
    const queueOptions = (): { size?: number; maxSize: number } => ({
      ...(options.queueSize !== undefined ? { size: options.queueSize } : {}),
      maxSize: DEFAULT_MAX_QUEUE_SIZE,
    });

    const rxQueues: RxQueue[] = [];
    const txQueues: DriverQueue<TxSlot>[] = [];
    for (let p = 0; p < pairs; p++) {
      const rx = await core.setupQueue<number>(N.netRxQueueIndex(p), queueOptions());
      rxQueues.push({ queue: rx, buffers: [], spans: [], pending: [], parked: [] });
      txQueues.push(await core.setupQueue<TxSlot>(N.netTxQueueIndex(p), queueOptions()));
    }
    // The control queue follows the pairs the device has, not the ones we use (5.1.2).
    const ctrlQueue = has(N.VIRTIO_NET_F_CTRL_VQ) ? await core.setupQueue<DmaBuffer>(N.netCtrlQueueIndex(maxPairs)) : undefined;

    const mac = new Uint8Array(N.ETH_ALEN);
    if (has(N.VIRTIO_NET_F_MAC)) {
      await core.readConfigStable(async () => {
        for (let i = 0; i < N.ETH_ALEN; i++) mac[i] = await core.readConfig(N.VIRTIO_NET_CONFIG_MAC + i, 1);
      });
    } else {
      mac.set(N.randomLocalMac());
    }
    await core.driverOk();

    // The largest frame this driver takes (no GSO is negotiated), header included, in whole buffers.
    const maxFrameBuffers = mergeable ? Math.ceil((hdrSize + N.ETH_MAX_FRAME_NO_GSO) / bufferSize) : 1;
    const framing: Framing = has(VIRTIO_F_VERSION_1) || has(VIRTIO_F_ANY_LAYOUT) ? 'any-layout' : 'legacy';
    const drv = new VirtioNetDriver(
      core,
      txQueues,
      ctrlQueue,
      { hdrSize, mergeable, maxFrameBuffers },
      framing,
      mac,
      options.maxQueuedFrames ?? 1024,
      rxBuffers,
    );
    try {
      for (const rq of rxQueues) {
        // Legacy framing takes two descriptors per receive buffer.
        const count = framing === 'legacy' ? Math.floor(rq.queue.size / 2) : rq.queue.size;
        try {
          for (const b of allocBuffers(core.bus.dma, count, bufferSize, 16)) rq.buffers.push(b);
        } catch (cause) {
          throw new DeviceFaultError(
            'ERR_DEVICE_QUEUE',
            `receiveq ${rq.queue.index}: ${count} buffers of ${bufferSize} bytes do not fit in DMA memory`,
            { cause },
          );
        }
        for (const b of rq.buffers) {
          rxBuffers.push(b);
          rq.spans.push(drv.frameSpans(b.addr, b.bytes.length - hdrSize));
        }
        for (let i = 0; i < count; i++) drv.postRx(rq, i);
        await rq.queue.kick();
      }
      if (!has(N.VIRTIO_NET_F_MAC) && MAC_ADDR_SET_NEEDS.every(has)) await drv.setMac(mac);
      if (pairs > 1) await drv.command(N.VIRTIO_NET_CTRL_MQ, N.VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, le16(pairs));
      core.onConfigChange(() => void drv.configChanged());
      for (const rq of rxQueues) drv.loops.push(drv.receiveLoop(rq));
    } catch (err) {
      await drv.close(); // resets the device, then frees what the driver lent it
      throw err;
    }
    return drv;
  }

  /** Features both sides agreed on. */
  get features(): bigint {
    return this.core.features;
  }
  /** The MAC address in use. */
  get mac(): Uint8Array {
    return this.macAddress.slice();
  }
  /** Queue pairs in use. */
  get queuePairs(): number {
    return this.txLanes.length;
  }

  /** The config status field (VIRTIO_NET_S_*); LINK_UP alone when VIRTIO_NET_F_STATUS is not negotiated. */
  async status(): Promise<number> {
    if (!hasFeature(this.features, N.VIRTIO_NET_F_STATUS)) return N.VIRTIO_NET_S_LINK_UP;
    return this.core.readConfig(N.VIRTIO_NET_CONFIG_STATUS, 2);
  }

  async linkUp(): Promise<boolean> {
    return ((await this.status()) & N.VIRTIO_NET_S_LINK_UP) !== 0;
  }

  /** Call `listener` with the link state on each configuration change; returns the unsubscribe function. */
  onLinkChange(listener: (up: boolean) => void): () => void {
    this.linkListeners.add(listener);
    return () => this.linkListeners.delete(listener);
  }

  /**
   * Send one Ethernet frame on queue pair `pair` (default 0). Resolves once the device has it. Frames
   * sent in the same tick go to the device with one notification.
   */
  send(frame: Uint8Array, pair = 0): Promise<void> {
    return this.sendAll([frame], pair);
  }

  /**
   * Send `frames` in order on queue pair `pair` (default 0), with one promise for them all. Resolves
   * once the device has every one; nothing is sent when one is too long (UsageError).
   */
  sendAll(frames: readonly Uint8Array[], pair = 0): Promise<void> {
    const lane = this.txLanes[pair];
    if (!lane) return Promise.reject(new UsageError(`no queue pair ${pair}`));
    for (const frame of frames)
      if (frame.length > N.ETH_MAX_FRAME_NO_GSO)
        return Promise.reject(new UsageError(`frame of ${frame.length} bytes exceeds ${N.ETH_MAX_FRAME_NO_GSO}`));
    const q = lane.queue;
    let i = 0;
    // In-process (coherent DMA) with nothing queued before: reap, copy and submit at once while
    // the ring has room; one kick at the end of the tick.
    if (this.txQueued === 0 && q.coherent) {
      try {
        this.freeTx(q.reapSync());
        for (; i < frames.length && q.numFree >= this.descriptorsFor(frames[i]!.length); i++) this.submitTx(lane, frames[i]!);
      } catch (err) {
        if (i > 0) void this.kickSoon(lane).catch(() => undefined);
        return Promise.reject(err instanceof Error ? err : new Error(String(err)));
      }
      if (i === frames.length) return this.kickSoon(lane);
    }
    // The rest waits its turn behind earlier sends, and for room in the ring.
    const kicked = i > 0 ? this.kickSoon(lane) : undefined;
    this.txQueued++;
    return this.serialize('tx', async () => {
      try {
        for (; i < frames.length; i++) {
          const len = frames[i]!.length;
          this.freeTx(await q.reap());
          while (q.numFree < this.descriptorsFor(len)) {
            // What this call submitted so far goes to the device before waiting for it to give room.
            await q.kick();
            this.freeTx(await q.waitUsed());
          }
          const slot = this.submitTx(lane, frames[i]!);
          await this.core.bus.dma.flush(slot.buf.addr, this.hdrSize + len);
        }
        await q.kick();
        await kicked;
      } finally {
        this.txQueued--;
      }
    });
  }

  /** The kick for everything submitted on `lane` this tick: one notification, at the end of the tick. */
  private kickSoon(lane: TxLane): Promise<void> {
    return (lane.kick ??= Promise.resolve().then(() => {
      lane.kick = undefined;
      return lane.queue.kick();
    }));
  }

  /** Descriptors a frame of `frameBytes` takes (frameSpans()' count). */
  private descriptorsFor(frameBytes: number): number {
    return this.framing === 'legacy' && frameBytes > 0 ? 2 : 1;
  }

  /** Copy `frame` behind a zeroed header (flags 0, GSO_NONE: a complete frame) into a transmit buffer and submit it; not yet kicked. */
  private submitTx(lane: TxLane, frame: Uint8Array): TxSlot {
    const len = frame.length;
    const slot = this.txSlot(lane, this.hdrSize + len);
    const bytes = slot.buf.bytes;
    bytes.fill(0, 0, this.hdrSize);
    bytes.set(frame, this.hdrSize);
    try {
      lane.queue.submit(this.frameSpans(slot.buf.addr, len), [], slot);
    } catch (err) {
      this.releaseTx(slot);
      throw err;
    }
    this.stats.txFrames++;
    return slot;
  }

  /** A transmit buffer of at least `size` bytes: from the lane's pool, or lent for one frame. */
  private txSlot(lane: TxLane, size: number): TxSlot {
    const poolSize = this.hdrSize + TX_POOL_FRAME;
    if (size > poolSize) return { buf: this.lent.alloc(size, 16), home: undefined };
    const free = lane.free.pop();
    if (free) return free;
    const slot = { buf: this.lent.alloc(poolSize, 16), home: lane.free };
    lane.pooled++;
    return slot;
  }

  /** The next received frame; rejects after `timeoutMs` (default the driver's timeout) or on a fault. */
  receive(timeoutMs = this.core.timeoutMs): Promise<Uint8Array> {
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

  /**
   * Every frame received so far, at least one: waits for the first as {@link receive} does (same
   * timeout and faults), then takes the rest that are ready. One promise for a burst of frames.
   */
  receiveAll(timeoutMs = this.core.timeoutMs): Promise<Uint8Array[]> {
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
        yield await this.receive(WAIT_SLICE_MS);
      } catch (err) {
        if (err instanceof DeviceFaultError && err.code === 'ERR_DEVICE_TIMEOUT') continue;
        if (this.closed) return;
        throw err;
      }
    }
  }

  /** VIRTIO_NET_CTRL_RX_PROMISC; UsageError without VIRTIO_NET_F_CTRL_RX (5.1.9.5.1.2: not sent then). */
  setPromiscuous(on: boolean): Promise<void> {
    return this.setRxMode(N.VIRTIO_NET_CTRL_RX_PROMISC, on);
  }

  /** VIRTIO_NET_CTRL_RX_ALLMULTI; UsageError without VIRTIO_NET_F_CTRL_RX. */
  setAllMulticast(on: boolean): Promise<void> {
    return this.setRxMode(N.VIRTIO_NET_CTRL_RX_ALLMULTI, on);
  }

  /**
   * Any VIRTIO_NET_CTRL_RX command. UsageError, and nothing sent, for an unknown command or one whose
   * feature was not negotiated (5.1.9.5.1.2: PROMISC and ALLMULTI need VIRTIO_NET_F_CTRL_RX; ALLUNI,
   * NOMULTI, NOUNI and NOBCAST need VIRTIO_NET_F_CTRL_RX_EXTRA).
   */
  setRxMode(command: number, on: boolean): Promise<void> {
    const needs = N.netRxCommandFeature(command);
    if (needs === undefined) return Promise.reject(new UsageError(`no VIRTIO_NET_CTRL_RX command ${command}`));
    return this.guarded([needs], `VIRTIO_NET_CTRL_RX command ${command}`, () =>
      this.command(N.VIRTIO_NET_CTRL_RX, command, Uint8Array.of(on ? 1 : 0)),
    );
  }

  /**
   * VIRTIO_NET_CTRL_MAC_TABLE_SET: the unicast and multicast addresses to accept besides our own.
   * UsageError without VIRTIO_NET_F_CTRL_RX (5.1.9.5.2.2: no VIRTIO_NET_CTRL_MAC command then).
   */
  setMacTable(unicast: readonly Uint8Array[], multicast: readonly Uint8Array[]): Promise<void> {
    return this.guarded([N.VIRTIO_NET_F_CTRL_RX], 'VIRTIO_NET_CTRL_MAC_TABLE_SET', () =>
      this.sendCommand(N.VIRTIO_NET_CTRL_MAC, N.VIRTIO_NET_CTRL_MAC_TABLE_SET, [macTable(unicast), macTable(multicast)]),
    );
  }

  /**
   * VIRTIO_NET_CTRL_MAC_ADDR_SET. UsageError unless VIRTIO_NET_F_CTRL_MAC_ADDR and
   * VIRTIO_NET_F_CTRL_RX (the VIRTIO_NET_CTRL_MAC class needs it, 5.1.9.5.2.2) were negotiated.
   */
  async setMac(mac: Uint8Array): Promise<void> {
    if (mac.byteLength !== N.ETH_ALEN) throw new UsageError('a MAC address is 6 bytes');
    await this.guarded(MAC_ADDR_SET_NEEDS, 'VIRTIO_NET_CTRL_MAC_ADDR_SET', () =>
      this.command(N.VIRTIO_NET_CTRL_MAC, N.VIRTIO_NET_CTRL_MAC_ADDR_SET, mac),
    );
    this.macAddress = mac.slice();
  }

  /**
   * VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET is sent at open; this is the generic form for any command, sent
   * as given whatever was negotiated (the typed commands above check their features).
   */
  command(cls: number, cmd: number, data: Uint8Array): Promise<void> {
    return this.sendCommand(cls, cmd, [data]);
  }

  /** A control command whose command-specific-data is `parts` (one descriptor each with legacy framing). */
  private sendCommand(cls: number, cmd: number, parts: readonly Uint8Array[]): Promise<void> {
    const q = this.ctrlQueue;
    if (!q) return Promise.reject(new UsageError('the device has no control queue (VIRTIO_NET_F_CTRL_VQ not negotiated)'));
    return this.serialize('ctrl', async () => {
      const dma = this.core.bus.dma;
      let dataBytes = 0;
      for (const part of parts) dataBytes += part.byteLength;
      // Lent until the device returns the chain: after a timeout it may still write the ack.
      const out = this.lent.alloc(N.VIRTIO_NET_CTRL_HDR_SIZE + dataBytes, 16);
      const ack = this.lent.alloc(1, 1);
      out.bytes[0] = cls;
      out.bytes[1] = cmd;
      const spans: DmaSpan[] = [{ addr: out.addr, len: N.VIRTIO_NET_CTRL_HDR_SIZE }];
      let at = N.VIRTIO_NET_CTRL_HDR_SIZE;
      for (const part of parts) {
        out.bytes.set(part, at);
        if (part.byteLength > 0) spans.push({ addr: out.addr + at, len: part.byteLength });
        at += part.byteLength;
      }
      ack.bytes[0] = 0xff;
      await dma.flush(out.addr, out.bytes.byteLength);
      await dma.flush(ack.addr, 1);
      const readable = this.framing === 'legacy' ? spans : [{ addr: out.addr, len: out.bytes.byteLength }];
      q.submit(readable, [{ addr: ack.addr, len: 1 }], out);
      await q.kick();
      const used = await q.waitUsed();
      try {
        if (used.length !== 1 || used[0]!.token !== out || used[0]!.len !== 1) {
          throw new DeviceFaultError(
            'ERR_DEVICE_USED_LEN',
            `control command ${cls}/${cmd}: device returned ${used.length} used elements, len ${used[0]?.len}`,
          );
        }
        await dma.refresh(ack.addr, 1);
        if (ack.bytes[0] !== N.VIRTIO_NET_OK)
          throw new DeviceFaultError('ERR_DEVICE_STATUS', `control command class ${cls} command ${cmd} answered ${ack.bytes[0]}`);
      } finally {
        this.lent.free(out);
        this.lent.free(ack);
      }
    });
  }

  /** Stop: reset the device, end the receive loops, fail pending receives. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.core.close();
    await Promise.allSettled(this.loops);
    freeAll(this.core.bus.dma, this.rxBuffers);
    this.lent.close();
    const err = new UsageError('driver closed');
    for (const w of this.frameWaiters.splice(0)) w.reject(err);
  }

  // ---- internals ----

  /** `send()`, or UsageError (nothing sent) when a feature of `needs` was not negotiated. */
  private guarded(needs: readonly number[], what: string, send: () => Promise<void>): Promise<void> {
    const missing = needs.filter((n) => !hasFeature(this.features, n));
    if (missing.length > 0)
      return Promise.reject(
        new UsageError(
          `${what} needs ${missing.map((n) => `VIRTIO_NET_F_${N.VIRTIO_NET_FEATURE_NAMES.get(n)}`).join(' and ')}, not negotiated`,
        ),
      );
    return send();
  }

  private serialize<R>(lane: 'tx' | 'ctrl', work: () => Promise<R>): Promise<R> {
    const prev = lane === 'tx' ? this.txChain : this.ctrlChain;
    const next = prev.then(work, work);
    const settled = next.catch(() => undefined);
    if (lane === 'tx') this.txChain = settled;
    else this.ctrlChain = settled;
    return next;
  }

  private freeTx(used: Completion<TxSlot>[]): void {
    for (const u of used) this.releaseTx(u.token);
  }

  /** The device gave `slot` back: to its pool, or freed when it was lent for one frame. */
  private releaseTx(slot: TxSlot): void {
    if (slot.home) slot.home.push(slot);
    else this.lent.free(slot.buf);
  }

  private postRx(rq: RxQueue, index: number): void {
    if (this.closed) return; // the buffers are being freed
    rq.queue.submit([], rq.spans[index]!, index);
  }

  /**
   * The spans of a header at `addr` followed by `frameBytes` of frame: one, or with legacy framing
   * the header's and the frame's (no empty one).
   */
  private frameSpans(addr: number, frameBytes: number): DmaSpan[] {
    if (this.framing === 'any-layout' || frameBytes === 0) return [{ addr, len: this.hdrSize + frameBytes }];
    return [
      { addr, len: this.hdrSize },
      { addr: addr + this.hdrSize, len: frameBytes },
    ];
  }

  private async receiveLoop(rq: RxQueue): Promise<void> {
    try {
      while (!this.closed) {
        let used: Completion<number>[];
        try {
          used = await rq.queue.waitUsed(WAIT_SLICE_MS);
        } catch (err) {
          if (err instanceof DeviceFaultError && err.code === 'ERR_DEVICE_TIMEOUT') continue;
          throw err;
        }
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
    let total = 0;
    for (let k = at; k < at + count; k++) total += pending[k]!.len;
    const frame = this.rxSlab.take(total - this.hdrSize);
    let to = 0;
    for (let k = at; k < at + count; k++) {
      const p = pending[k]!;
      const from = k === at ? this.hdrSize : 0;
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

  private async configChanged(): Promise<void> {
    let status: number;
    try {
      status = await this.status();
    } catch {
      return;
    }
    for (const l of this.linkListeners) l((status & N.VIRTIO_NET_S_LINK_UP) !== 0);
    // 5.1.9.5.4: the driver announces itself (callers do that on link change) and acknowledges.
    if ((status & N.VIRTIO_NET_S_ANNOUNCE) !== 0 && hasFeature(this.features, N.VIRTIO_NET_F_GUEST_ANNOUNCE)) {
      await this.command(N.VIRTIO_NET_CTRL_ANNOUNCE, N.VIRTIO_NET_CTRL_ANNOUNCE_ACK, new Uint8Array(0)).catch(() => undefined);
    }
  }
}

function le16(v: number): Uint8Array {
  return Uint8Array.of(v & 0xff, v >> 8);
}

/** struct virtio_net_ctrl_mac for `macs`. */
function macTable(macs: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(4 + macs.length * N.ETH_ALEN);
  new DataView(out.buffer).setUint32(0, macs.length, true);
  macs.forEach((m, i) => out.set(m.subarray(0, N.ETH_ALEN), 4 + i * N.ETH_ALEN));
  return out;
}
