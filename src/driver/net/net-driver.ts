/**
 * The virtio-net driver (spec 5.1) on the VirtioDriver core: negotiates, keeps the receiveqs full,
 * sends frames, hands received frames to the caller (a promise per frame, or an async iterator),
 * and speaks the control queue (rx modes, MAC table, MAC address, announce ack, queue pairs).
 * Works against our device and against QEMU's virtio-net-pci. The queues' work lives beside it:
 * receiveq.ts, transmitq.ts, controlq.ts, and the chain layout both use, framing.ts.
 */

import { DeviceFaultError, UsageError } from '../../errors.js';
import { freeAll, LentBuffers } from '../dma-buffers.js';
import { featureSet, hasFeature, VIRTIO_F_ANY_LAYOUT, VIRTIO_F_VERSION_1 } from '../../spec/features.js';
import { VIRTIO_ID_NET } from '../../spec/ids.js';
import * as N from '../../spec/net.js';
import type { DriverQueue } from '../driver-queue.js';
import type { Bdf, PciBus } from '../../bus/pci-bus.js';
import type { DmaBuffer } from '../../memory/dma.js';
import { VirtioDriver, type VirtioDriverOptions } from '../virtio-driver.js';
import { DRIVER_CORE_FEATURES } from '../feature-negotiation.js';
import { Controlq, le16, macTable } from './controlq.js';
import type { Framing } from './framing.js';
import { Receiveqs, type RxLayout } from './receiveq.js';
import { Transmitqs, type TxSlot } from './transmitq.js';

/** Receive buffer without MRG_RXBUF: header + 1514-byte frame + VLAN tag (Linux's GOOD_PACKET_LEN). */
const SMALL_RX_BUFFER = N.VIRTIO_NET_HDR_SIZE + 1518;
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

export class VirtioNetDriver {
  readonly stats: NetDriverStats = { rxFrames: 0, rxBuffers: 0, rxOverflow: 0, rxErrors: 0, txFrames: 0 };
  private macAddress: Uint8Array;
  private readonly linkListeners = new Set<(up: boolean) => void>();
  private closed = false;
  private readonly receiveqs: Receiveqs;
  private readonly transmitqs: Transmitqs;
  private readonly controlq: Controlq | undefined;
  /** Transmit and control buffers the device holds, freed after the reset at close. */
  private readonly lent: LentBuffers;

  private constructor(
    /** The core driver, for anything not wrapped here. */
    readonly core: VirtioDriver,
    rxQueues: DriverQueue<number>[],
    txQueues: DriverQueue<TxSlot>[],
    ctrlQueue: DriverQueue<DmaBuffer> | undefined,
    rx: RxLayout,
    framing: Framing,
    mac: Uint8Array,
    maxQueuedFrames: number,
    /** Every receive buffer, freed at close once the device is reset. */
    private readonly rxBuffers: DmaBuffer[],
  ) {
    const dma = core.bus.dma;
    this.macAddress = mac;
    this.lent = new LentBuffers(dma);
    this.receiveqs = new Receiveqs(rxQueues, core, rx, framing, maxQueuedFrames, this.stats);
    this.transmitqs = new Transmitqs(txQueues, framing, rx.hdrSize, this.lent, dma, this.stats);
    this.controlq = ctrlQueue && new Controlq(ctrlQueue, framing, this.lent, dma);
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

    const rxQueues: DriverQueue<number>[] = [];
    const txQueues: DriverQueue<TxSlot>[] = [];
    for (let p = 0; p < pairs; p++) {
      rxQueues.push(await core.setupQueue<number>(N.netRxQueueIndex(p), queueOptions()));
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
      rxQueues,
      txQueues,
      ctrlQueue,
      { hdrSize, mergeable, maxFrameBuffers },
      framing,
      mac,
      options.maxQueuedFrames ?? 1024,
      rxBuffers,
    );
    try {
      await drv.receiveqs.fill(bufferSize, rxBuffers);
      if (!has(N.VIRTIO_NET_F_MAC) && MAC_ADDR_SET_NEEDS.every(has)) await drv.setMac(mac);
      if (pairs > 1) await drv.command(N.VIRTIO_NET_CTRL_MQ, N.VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, le16(pairs));
      core.onConfigChange(() => void drv.configChanged());
      drv.receiveqs.start();
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
    return this.transmitqs.count;
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
    return this.transmitqs.sendAll(frames, pair);
  }

  /** The next received frame; rejects after `timeoutMs` (default the driver's timeout) or on a fault. */
  receive(timeoutMs = this.core.timeoutMs): Promise<Uint8Array> {
    return this.receiveqs.receive(timeoutMs);
  }

  /**
   * Every frame received so far, at least one: waits for the first as {@link receive} does (same
   * timeout and faults), then takes the rest that are ready. One promise for a burst of frames.
   */
  receiveAll(timeoutMs = this.core.timeoutMs): Promise<Uint8Array[]> {
    return this.receiveqs.receiveAll(timeoutMs);
  }

  /** Received frames as they come, until the driver closes. */
  received(): AsyncGenerator<Uint8Array> {
    return this.receiveqs.received();
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
    const q = this.controlq;
    if (!q) return Promise.reject(new UsageError('the device has no control queue (VIRTIO_NET_F_CTRL_VQ not negotiated)'));
    return q.send(cls, cmd, parts);
  }

  /** Stop: reset the device, end the receive loops, fail pending receives. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.receiveqs.close();
    await this.core.close();
    await this.receiveqs.stopped();
    freeAll(this.core.bus.dma, this.rxBuffers);
    this.lent.close();
    this.receiveqs.failWaiters(new UsageError('driver closed'));
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
