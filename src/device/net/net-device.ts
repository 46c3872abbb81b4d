/**
 * The virtio-net device model (spec 5.1). Frames from the transmitqs go to a NetBackend; frames from
 * the backend go through the receive filter into a receiveq, spanning several buffers with
 * VIRTIO_NET_F_MRG_RXBUF. A frame that finds no receive buffer is dropped and counted: the device
 * never waits for the driver. Offered: MAC, STATUS (link and announce), CSUM (completed in software),
 * MRG_RXBUF, CTRL_VQ with CTRL_RX, CTRL_RX_EXTRA, CTRL_MAC_ADDR and GUEST_ANNOUNCE, and MQ when more
 * than one queue pair is configured. No segmentation offload: no backend here could honour it.
 */

import { RequestShapeError, UsageError } from '../../errors.js';
import type { AccessSize } from '../../memory/access-size.js';
import type { DescriptorChain, DeviceQueue } from '../../queue/types.js';
import { featureSet, hasFeature, VIRTIO_F_VERSION_1 } from '../../spec/features.js';
import { VIRTIO_ID_NET } from '../../spec/ids.js';
import { DRIVER_REQUIREMENTS as R } from '../../spec/driver-requirements.js';
import {
  ETH_ALEN,
  netCtrlQueueIndex,
  netRxCommandFeature,
  netRxQueueIndex,
  netTxQueueIndex,
  randomLocalMac,
  VIRTIO_NET_CONFIG_MAC,
  VIRTIO_NET_CONFIG_MAX_VIRTQUEUE_PAIRS,
  VIRTIO_NET_CONFIG_MTU,
  VIRTIO_NET_CONFIG_STATUS,
  VIRTIO_NET_CTRL_MQ_VQ_PAIRS_MAX,
  VIRTIO_NET_CTRL_MQ_VQ_PAIRS_MIN,
  VIRTIO_NET_CTRL_RX_ALLMULTI,
  VIRTIO_NET_CTRL_RX_ALLUNI,
  VIRTIO_NET_CTRL_RX_NOBCAST,
  VIRTIO_NET_CTRL_RX_NOMULTI,
  VIRTIO_NET_CTRL_RX_NOUNI,
  VIRTIO_NET_CTRL_RX_PROMISC,
  VIRTIO_NET_ERR,
  VIRTIO_NET_F_CSUM,
  VIRTIO_NET_F_CTRL_MAC_ADDR,
  VIRTIO_NET_F_CTRL_RX,
  VIRTIO_NET_F_CTRL_RX_EXTRA,
  VIRTIO_NET_F_CTRL_VQ,
  VIRTIO_NET_F_GUEST_ANNOUNCE,
  VIRTIO_NET_F_MAC,
  VIRTIO_NET_F_MQ,
  VIRTIO_NET_F_MRG_RXBUF,
  VIRTIO_NET_F_STATUS,
  VIRTIO_NET_HDR_F_NEEDS_CSUM,
  VIRTIO_NET_HDR_GSO_NONE,
  VIRTIO_NET_HDR_NUM_BUFFERS,
  VIRTIO_NET_HDR_SIZE,
  VIRTIO_NET_OK,
  VIRTIO_NET_S_ANNOUNCE,
  VIRTIO_NET_S_LINK_UP,
  virtioNetHdrSize,
} from '../../spec/net.js';
import { writeChain } from '../chain-bytes.js';
import { ConfigBytes } from '../config-bytes.js';
import type { ActivateContext, VirtioDevice, VirtioDeviceHost } from '../../core/virtio-device.js';
import type { NetBackend } from './backend.js';
import { completeChecksum } from './checksum.js';
import { parseNetCtrlRequest, type NetCtrlRequest } from './ctrl-request.js';
import { RxFilter, type RxModes } from './rx-filter.js';
import { steerFrame } from './steering.js';
import { NetTxReader } from './tx-request.js';
import type { SnapshotReader } from '../../snapshot/snapshot-reader.js';
import { bytes, flag, struct, u16, type SnapshotStruct } from '../../snapshot/snapshot-value.js';

export interface VirtioNetDeviceOptions {
  readonly backend: NetBackend;
  /** The permanent MAC address; default a random locally administered unicast one. */
  readonly mac?: Uint8Array;
  /** Queue pairs offered; more than one offers VIRTIO_NET_F_MQ. Default 1. */
  readonly queuePairs?: number;
  /** Maximum size of every queue. Default 256. */
  readonly queueSize?: number;
  /** Link state at power-on. Default up. */
  readonly linkUp?: boolean;
}

/** Counters a caller (or a test) can read; they survive device reset. */
export interface NetDeviceStats {
  rxFrames: number;
  rxBytes: number;
  /** Frames that found no receive buffer, or came while the driver was not ready. */
  rxDropped: number;
  /** Frames the receive filter refused (not for our MAC, and not promiscuous). */
  rxFiltered: number;
  /** Frames larger than the receive buffer without VIRTIO_NET_F_MRG_RXBUF. */
  rxOversize: number;
  /** Receive chains the device returned unused because of their shape. */
  rxBadChains: number;
  txFrames: number;
  txBytes: number;
  /** Transmit chains refused for their shape or header. */
  txErrors: number;
  /** Control commands answered VIRTIO_NET_ERR. */
  ctrlErrors: number;
}

/** Ring-format features come from the transport; these are the net-specific ones this device offers. */
const BASE_FEATURES = featureSet(
  VIRTIO_NET_F_CSUM,
  VIRTIO_NET_F_MAC,
  VIRTIO_NET_F_MRG_RXBUF,
  VIRTIO_NET_F_STATUS,
  VIRTIO_NET_F_CTRL_VQ,
  VIRTIO_NET_F_CTRL_RX,
  VIRTIO_NET_F_CTRL_RX_EXTRA,
  VIRTIO_NET_F_GUEST_ANNOUNCE,
  VIRTIO_NET_F_CTRL_MAC_ADDR,
);

/** RX-class command -> the mode it sets (5.1.9.5.1; the feature each needs: netRxCommandFeature). */
const RX_MODE_COMMANDS: ReadonlyMap<number, keyof RxModes> = new Map([
  [VIRTIO_NET_CTRL_RX_PROMISC, 'promisc'],
  [VIRTIO_NET_CTRL_RX_ALLMULTI, 'allmulti'],
  [VIRTIO_NET_CTRL_RX_ALLUNI, 'alluni'],
  [VIRTIO_NET_CTRL_RX_NOMULTI, 'nomulti'],
  [VIRTIO_NET_CTRL_RX_NOUNI, 'nouni'],
  [VIRTIO_NET_CTRL_RX_NOBCAST, 'nobcast'],
]);

export class VirtioNetDevice implements VirtioDevice {
  readonly deviceType = VIRTIO_ID_NET;
  readonly deviceFeatures: bigint;
  readonly queueMaxSizes: readonly number[];
  /** mac, status, and max_virtqueue_pairs with MQ: the fields the offered features make present (5.1.4). */
  readonly configSize: number;
  readonly stats: NetDeviceStats = {
    rxFrames: 0,
    rxBytes: 0,
    rxDropped: 0,
    rxFiltered: 0,
    rxOversize: 0,
    rxBadChains: 0,
    txFrames: 0,
    txBytes: 0,
    txErrors: 0,
    ctrlErrors: 0,
  };
  readonly filter = new RxFilter();

  private host: VirtioDeviceHost | undefined;
  private readonly backend: NetBackend;
  private readonly permanentMac: Uint8Array;
  private readonly maxPairs: number;
  private readonly config = new ConfigBytes(VIRTIO_NET_CONFIG_MTU);
  private linkUp: boolean;
  private announcing = false;

  // State from activate() until reset(); `active` false also after a fatal guest fault.
  private active = false;
  private features = 0n;
  private hdrSize = 0;
  /** VIRTIO_NET_F_MRG_RXBUF and VIRTIO_NET_F_CSUM as negotiated, kept as booleans: a bigint test per frame costs more than the frame's bookkeeping. */
  private mergeable = false;
  private csum = false;
  /** The receive header, all fields 0 but num_buffers, rewritten per frame (hdrSize bytes). */
  private rxHdr = new Uint8Array(0);
  /** The MAC in config space, as one view kept for the receive filter. */
  private readonly macBytes: Uint8Array;
  /** Pairs whose receiveq got used buffers in the current delivery, each once: one notification per queue per batch. */
  private readonly rxTouched: number[] = [];
  private readonly rxTouchedFlag: Uint8Array;
  private activePairs = 1;
  private rxQueues: (DeviceQueue | null)[] = [];
  private txQueues: (DeviceQueue | null)[] = [];
  private ctrlQueue: DeviceQueue | null = null;
  private ctrlIndex = -1;
  /** Receive chains popped but not yet used, per pair: kept for the next frame, never lost. */
  private rxStash: DescriptorChain[][] = [];
  /** Reads transmit chains, lending the backend a view of guest memory where it can (NetBackend.send). */
  private readonly txReader = new NetTxReader();

  constructor(options: VirtioNetDeviceOptions) {
    const pairs = options.queuePairs ?? 1;
    if (!Number.isInteger(pairs) || pairs < VIRTIO_NET_CTRL_MQ_VQ_PAIRS_MIN || pairs > VIRTIO_NET_CTRL_MQ_VQ_PAIRS_MAX) {
      throw new UsageError(`queuePairs must be an integer in 1..${VIRTIO_NET_CTRL_MQ_VQ_PAIRS_MAX}`);
    }
    if (options.mac !== undefined && options.mac.byteLength !== ETH_ALEN) throw new UsageError('mac must be 6 bytes');
    this.maxPairs = pairs;
    this.backend = options.backend;
    this.permanentMac = (options.mac ?? randomLocalMac()).slice();
    this.linkUp = options.linkUp ?? true;
    this.deviceFeatures = pairs > 1 ? BASE_FEATURES | featureSet(VIRTIO_NET_F_MQ) : BASE_FEATURES;
    this.configSize = pairs > 1 ? VIRTIO_NET_CONFIG_MTU : VIRTIO_NET_CONFIG_MAX_VIRTQUEUE_PAIRS;
    // Every receiveq/transmitq pair, then the control queue (5.1.2).
    this.queueMaxSizes = new Array<number>(2 * pairs + 1).fill(options.queueSize ?? 256);
    this.config.set16(VIRTIO_NET_CONFIG_MAX_VIRTQUEUE_PAIRS, pairs);
    this.resetState();
    this.macBytes = this.config.bytes.subarray(VIRTIO_NET_CONFIG_MAC, VIRTIO_NET_CONFIG_MAC + ETH_ALEN);
    this.rxTouchedFlag = new Uint8Array(pairs);
    this.backend.attach({
      receive: (frame) => {
        this.place(frame);
        this.notifyRx();
      },
      receiveBatch: (frames) => {
        for (let i = 0; i < frames.length; i++) this.place(frames[i]!);
        this.notifyRx();
      },
      place: (frame) => this.place(frame),
      notify: () => this.notifyRx(),
      setLinkUp: (up) => this.setLinkUp(up),
    });
  }

  /** The current MAC address (VIRTIO_NET_CTRL_MAC_ADDR_SET may change it until reset). */
  get mac(): Uint8Array {
    return this.config.bytes.slice(VIRTIO_NET_CONFIG_MAC, VIRTIO_NET_CONFIG_MAC + ETH_ALEN);
  }
  get isLinkUp(): boolean {
    return this.linkUp;
  }
  /** Queue pairs receiving frames now (VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET). */
  get queuePairsInUse(): number {
    return this.activePairs;
  }
  /** Features the driver accepted, as of DRIVER_OK (0 before). */
  get negotiatedFeatures(): bigint {
    return this.features;
  }

  attach(host: VirtioDeviceHost): void {
    this.host = host;
  }

  readConfig(offset: number, size: AccessSize): number {
    return this.config.read(offset, size);
  }

  /** Config is read-only for a modern driver (5.1.4); a legacy MAC write is ignored as well. */
  /** Every field is read-only (5.1.4); a write does nothing. The audit records one from a driver that negotiated VERSION_1 (legacy drivers wrote the MAC). */
  writeConfig(offset: number): void {
    if (hasFeature(this.features, VIRTIO_F_VERSION_1)) this.host?.audit?.(R.netNoConfigWrite, `configuration offset ${offset} written`);
  }

  activate(ctx: ActivateContext): void {
    this.features = ctx.features;
    this.mergeable = hasFeature(ctx.features, VIRTIO_NET_F_MRG_RXBUF);
    this.csum = hasFeature(ctx.features, VIRTIO_NET_F_CSUM);
    this.hdrSize = virtioNetHdrSize(hasFeature(ctx.features, VIRTIO_F_VERSION_1), this.mergeable);
    this.rxHdr = new Uint8Array(this.hdrSize);
    const pairs = hasFeature(ctx.features, VIRTIO_NET_F_MQ) ? this.maxPairs : 1;
    this.rxQueues = [];
    this.txQueues = [];
    for (let p = 0; p < pairs; p++) {
      this.rxQueues.push(ctx.queues[netRxQueueIndex(p)] ?? null);
      this.txQueues.push(ctx.queues[netTxQueueIndex(p)] ?? null);
    }
    this.rxStash = this.rxQueues.map(() => []);
    this.ctrlIndex = hasFeature(ctx.features, VIRTIO_NET_F_CTRL_VQ) ? netCtrlQueueIndex(pairs) : -1;
    this.ctrlQueue = this.ctrlIndex >= 0 ? (ctx.queues[this.ctrlIndex] ?? null) : null;
    this.active = true;
    // The device never waits for receive buffers, so it needs no notification when they arrive.
    for (const q of this.rxQueues) q?.setNotification(false);
    this.guard(() => {
      for (let p = 0; p < pairs; p++) this.processTx(p);
      this.processCtrl();
    });
  }

  queueNotify(index: number): void {
    if (!this.active) return;
    this.guard(() => {
      if (index === this.ctrlIndex) this.processCtrl();
      else if (index % 2 === 1 && (index - 1) / 2 < this.txQueues.length) this.processTx((index - 1) / 2);
    });
  }

  reset(): void {
    this.resetState();
  }

  /**
   * VIRTIO_F_RING_RESET: stop using queue `index`. Every request is answered within the call that
   * pops it, so none is in flight; receive chains held for the next frame belong to the old ring and
   * are forgotten (frames for a reset receiveq are dropped, counted in rxDropped, until it is back).
   */
  resetQueue(index: number): void {
    this.setQueue(index, null);
  }

  /**
   * VIRTIO_F_SUSPEND (3.4): receive chains held for the next frame are not being processed, yet
   * popped; they go back used and empty (as a malformed receive buffer does), so the suspension does
   * not wait for a frame that can no longer be delivered. Frames arriving while suspended are dropped.
   */
  suspend(): void {
    this.guard(() =>
      this.rxStash.forEach((stash, pair) => {
        const q = this.rxQueues[pair];
        if (!q || stash.length === 0) return;
        for (const chain of stash.splice(0)) q.pushUsed(chain.head, 0);
        this.host?.usedBuffers(q.index);
      }),
    );
  }

  /** VIRTIO_F_RING_RESET: queue `queue.index` is back, on a new ring. */
  enableQueue(queue: DeviceQueue): void {
    this.setQueue(queue.index, queue);
  }

  /** Put `queue` (or nothing) in the place of queue `index` (5.1.2: receiveq 2p, transmitq 2p + 1, then controlq). */
  private setQueue(index: number, queue: DeviceQueue | null): void {
    const pair = index >> 1;
    if (index === this.ctrlIndex) this.ctrlQueue = queue;
    else if (pair < this.rxQueues.length && index % 2 === 1) this.txQueues[pair] = queue;
    else if (pair < this.rxQueues.length) {
      this.rxQueues[pair] = queue;
      this.rxStash[pair] = [];
      // As at activation: the device never waits for receive buffers.
      queue?.setNotification(false);
    }
    // Otherwise a queue of a pair not in use: nothing to do.
  }

  /** Change the link state: VIRTIO_NET_S_LINK_UP and a configuration change notification. */
  setLinkUp(up: boolean): void {
    if (up === this.linkUp) return;
    this.linkUp = up;
    this.updateStatus();
    this.host?.configChanged();
  }

  /**
   * Ask the driver to announce itself (after a migration, say): VIRTIO_NET_S_ANNOUNCE until the driver
   * acknowledges with VIRTIO_NET_CTRL_ANNOUNCE_ACK. Returns false when GUEST_ANNOUNCE is not negotiated.
   */
  announce(): boolean {
    if (!this.active || !hasFeature(this.features, VIRTIO_NET_F_GUEST_ANNOUNCE)) return false;
    this.announcing = true;
    this.updateStatus();
    this.host?.configChanged();
    return true;
  }

  /**
   * The model's state (docs/snapshots.md): MAC, rx filter, queue pairs in use, announce state. Its
   * receive chains held for the next frame are the ring's in-flight chains: the restored rings hand
   * them back in order. Link state is the host's (the backend's), so not part of it.
   */
  snapshot(): SnapshotStruct {
    return struct({
      mac: bytes(this.mac),
      filter: this.filter.snapshot(),
      activePairs: u16(this.activePairs),
      announcing: flag(this.announcing),
    });
  }

  /** See VirtioDevice.prepareRestore. */
  prepareRestore(r: SnapshotReader): () => void {
    const mac = r.bytes('mac', ETH_ALEN).slice();
    const applyFilter = this.filter.prepareRestore(r.struct('filter'));
    const activePairs = r.int('activePairs', 'u16', 1, this.maxPairs);
    const announcing = r.flag('announcing');
    return () => {
      this.config.bytes.set(mac, VIRTIO_NET_CONFIG_MAC);
      applyFilter();
      this.activePairs = activePairs;
      this.announcing = announcing;
      this.updateStatus();
    };
  }

  private resetState(): void {
    this.active = false;
    this.features = 0n;
    this.hdrSize = 0;
    this.mergeable = false;
    this.csum = false;
    this.activePairs = 1;
    this.rxQueues = [];
    this.txQueues = [];
    this.ctrlQueue = null;
    this.ctrlIndex = -1;
    this.rxStash = [];
    this.announcing = false;
    this.filter.reset();
    this.config.bytes.set(this.permanentMac, VIRTIO_NET_CONFIG_MAC);
    this.updateStatus();
  }

  private updateStatus(): void {
    this.config.set16(VIRTIO_NET_CONFIG_STATUS, (this.linkUp ? VIRTIO_NET_S_LINK_UP : 0) | (this.announcing ? VIRTIO_NET_S_ANNOUNCE : 0));
  }

  /** Run queue work; a fatal guest fault (or any unexpected error) stops the device: DEVICE_NEEDS_RESET. */
  private guard(work: () => void): void {
    try {
      work();
    } catch (err) {
      this.fail(err);
    }
  }

  private fail(err: unknown): void {
    this.active = false;
    this.host?.needsReset(err instanceof Error ? err : new Error(String(err)));
  }

  // ---- transmit ----

  private processTx(pair: number): void {
    const q = this.txQueues[pair];
    if (!q) return;
    let used = 0;
    // Bounded by the queue size per pass; anything the driver adds meanwhile comes with a notify.
    for (let n = 0; n < q.size; n++) {
      const chain = q.pop();
      if (!chain) break;
      this.transmit(chain);
      q.pushUsed(chain.head, 0);
      used++;
    }
    if (used > 0) this.host?.usedBuffers(q.index);
    if (q.hasAvailable()) queueMicrotask(() => this.active && this.guard(() => this.processTx(pair)));
  }

  private transmit(chain: DescriptorChain): void {
    try {
      const tx = this.txReader;
      // Lent to the backend for the send() call only: the chain is used right after it returns.
      const frame = tx.read(chain, this.hdrSize, this.host!.memory);
      if (tx.gsoType !== VIRTIO_NET_HDR_GSO_NONE)
        throw new RequestShapeError(`gso_type ${tx.gsoType} but no segmentation offload was offered`);
      if ((tx.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) !== 0) {
        if (!this.csum) throw new RequestShapeError('NEEDS_CSUM without VIRTIO_NET_F_CSUM');
        // The reader's own copy for NEEDS_CSUM: guest memory is not written.
        completeChecksum(frame, tx.csumStart, tx.csumOffset);
      }
      this.stats.txFrames++;
      this.stats.txBytes += frame.length;
      this.backend.send(frame);
    } catch (err) {
      if (!(err instanceof RequestShapeError)) throw err;
      this.stats.txErrors++;
    }
  }

  // ---- receive ----

  /**
   * A frame from the backend, through the filter into its receiveq, copied before returning; the
   * used buffer notification is owed until notifyRx() (a backend handing over a burst gets one
   * interrupt per queue, not one per frame). Calls nothing outside the device but needsReset.
   */
  private place(frame: Uint8Array): void {
    if (!this.active) {
      this.stats.rxDropped++;
      return;
    }
    try {
      this.receive(frame);
    } catch (err) {
      this.fail(err);
    }
  }

  private receive(frame: Uint8Array): void {
    if (!this.filter.accepts(frame, this.macBytes)) {
      this.stats.rxFiltered++;
      return;
    }
    let pair = this.activePairs > 1 ? steerFrame(frame, this.activePairs) : 0;
    if (!this.rxQueues[pair]) pair = 0;
    if (this.deliver(pair, frame)) this.touch(pair);
  }

  /** Receiveq `pair` got used buffers: notifyRx() owes it a notification. */
  private touch(pair: number): void {
    if (this.rxTouchedFlag[pair] === 0) {
      this.rxTouchedFlag[pair] = 1;
      this.rxTouched.push(pair);
    }
  }

  /** The used buffer notifications place() owes. */
  private notifyRx(): void {
    for (const pair of this.rxTouched) {
      this.rxTouchedFlag[pair] = 0;
      const q = this.rxQueues[pair];
      if (q && this.active) this.host?.usedBuffers(q.index);
    }
    this.rxTouched.length = 0;
  }

  /** Next receive chain of the right shape (writable only, room for the header), or null. */
  private popRx(q: DeviceQueue, pair: number): DescriptorChain | null {
    for (let n = 0; n < q.size; n++) {
      const chain = q.pop();
      if (!chain) return null;
      if (chain.readable === 0 && chain.writableBytes >= this.hdrSize) return chain;
      // A malformed receive buffer: hand it back empty rather than stall the queue.
      this.stats.rxBadChains++;
      q.pushUsed(chain.head, 0);
      this.touch(pair);
    }
    return null;
  }

  /** Place `frame` in receiveq `pair`; returns whether used buffers were pushed (false: dropped and counted). */
  private deliver(pair: number, frame: Uint8Array): boolean {
    const q = this.rxQueues[pair];
    const stash = this.rxStash[pair];
    if (!q || !stash) {
      this.stats.rxDropped++;
      return false;
    }
    const hdrSize = this.hdrSize;
    const frameLen = frame.length;
    const need = hdrSize + frameLen;
    const mergeable = this.mergeable;
    if (stash.length === 0) {
      // The usual case: no chain held back, and the next one takes header and frame in its first buffer.
      const c = this.popRx(q, pair);
      if (!c) {
        this.stats.rxDropped++;
        return false;
      }
      if (c.len(0) >= need) {
        this.writeWhole(q, c, frame);
        return this.received(frameLen);
      }
      stash.push(c);
    }
    // How many chains this frame takes: one without MRG_RXBUF, as many as it fills with it.
    let chains = 0;
    let room = 0;
    while (room < need && (mergeable || chains === 0)) {
      if (chains === stash.length) {
        if (stash.length >= q.size) break;
        const c = this.popRx(q, pair);
        if (!c) break;
        stash.push(c);
      }
      room += stash[chains]!.writableBytes;
      chains++;
    }
    if (room < need) {
      if (chains > 0 && !mergeable) this.stats.rxOversize++;
      else this.stats.rxDropped++;
      return false;
    }
    if (chains === 1 && stash[0]!.len(0) >= need) this.writeWhole(q, stash[0]!, frame);
    else {
      // Every field 0 (no offload, GSO_NONE) but num_buffers (12-byte header only).
      const hdr = this.rxHdr;
      if (hdrSize >= VIRTIO_NET_HDR_SIZE) {
        hdr[VIRTIO_NET_HDR_NUM_BUFFERS] = chains & 0xff;
        hdr[VIRTIO_NET_HDR_NUM_BUFFERS + 1] = chains >> 8;
      }
      let offset = 0;
      for (let c = 0; c < chains; c++) {
        const chain = stash[c]!;
        let at = 0;
        if (c === 0) {
          writeChain(chain, 0, hdr);
          at = hdrSize;
        }
        const take = Math.min(chain.writableBytes - at, frameLen - offset);
        writeChain(chain, at, offset === 0 && take === frameLen ? frame : frame.subarray(offset, offset + take));
        offset += take;
        q.pushUsed(chain.head, at + take);
      }
    }
    // pop() rather than a length write, which V8 does not inline.
    if (chains === stash.length) for (let c = 0; c < chains; c++) stash.pop();
    else stash.splice(0, chains);
    return this.received(frameLen);
  }

  /** Count a frame placed; true, for deliver() to return. */
  private received(frameLen: number): true {
    this.stats.rxFrames++;
    this.stats.rxBytes += frameLen;
    return true;
  }

  /**
   * Header and frame into the first buffer of `chain` (it has room), each set at its offset in guest
   * memory: no view to allocate. Both lie inside buffer 0, which the ring's walk found inside one
   * region of guest memory. rxHdr is every field 0 (no offload, GSO_NONE) but num_buffers, 1 here.
   */
  private writeWhole(q: DeviceQueue, chain: DescriptorChain, frame: Uint8Array): void {
    const memory = this.host!.memory;
    const hdr = this.rxHdr;
    const hdrSize = hdr.length;
    const addr = chain.addr(0);
    const need = hdrSize + frame.length;
    if (hdrSize >= VIRTIO_NET_HDR_SIZE) {
      hdr[VIRTIO_NET_HDR_NUM_BUFFERS] = 1;
      hdr[VIRTIO_NET_HDR_NUM_BUFFERS + 1] = 0;
    }
    memory.write(addr, hdr);
    memory.write(addr + hdrSize, frame);
    q.pushUsed(chain.head, need);
  }

  // ---- control ----

  private processCtrl(): void {
    const q = this.ctrlQueue;
    if (!q) return;
    let used = 0;
    for (let n = 0; n < q.size; n++) {
      const chain = q.pop();
      if (!chain) break;
      let ack: number;
      try {
        ack = this.executeCtrl(parseNetCtrlRequest(chain));
      } catch (err) {
        if (!(err instanceof RequestShapeError)) throw err;
        ack = VIRTIO_NET_ERR;
      }
      if (ack !== VIRTIO_NET_OK) this.stats.ctrlErrors++;
      const writable = chain.writableBytes >= 1;
      if (writable) writeChain(chain, 0, Uint8Array.of(ack));
      q.pushUsed(chain.head, writable ? 1 : 0);
      used++;
    }
    if (used > 0) this.host?.usedBuffers(q.index);
  }

  /** Audit (5.1.9.5.1.2, 5.1.9.5.2.2): commands the negotiated features do not allow the driver. */
  private auditCtrl(req: NetCtrlRequest, has: (n: number) => boolean): void {
    const audit = this.host!.audit!;
    if (req.kind === 'rx-mode') {
      const needs = netRxCommandFeature(req.command);
      if (needs !== undefined && !has(needs))
        audit(
          needs === VIRTIO_NET_F_CTRL_RX ? R.netCtrlRx : R.netCtrlRxExtra,
          `VIRTIO_NET_CTRL_RX command ${req.command} without ${needs === VIRTIO_NET_F_CTRL_RX ? 'CTRL_RX' : 'CTRL_RX_EXTRA'}`,
        );
    } else if ((req.kind === 'mac-table' || req.kind === 'mac-addr') && !has(VIRTIO_NET_F_CTRL_RX))
      audit(R.netCtrlMac, `VIRTIO_NET_CTRL_MAC ${req.kind === 'mac-table' ? 'TABLE_SET' : 'ADDR_SET'} without CTRL_RX`);
  }

  /** Carry out a control command; VIRTIO_NET_ERR for one the negotiated features do not allow. */
  private executeCtrl(req: NetCtrlRequest): number {
    const has = (n: number): boolean => hasFeature(this.features, n);
    if (this.host?.audit !== undefined) this.auditCtrl(req, has);
    switch (req.kind) {
      case 'rx-mode': {
        const mode = RX_MODE_COMMANDS.get(req.command);
        const needs = netRxCommandFeature(req.command);
        if (mode === undefined || needs === undefined || !has(needs)) return VIRTIO_NET_ERR;
        this.filter.modes[mode] = req.on;
        return VIRTIO_NET_OK;
      }
      case 'mac-table':
        if (!has(VIRTIO_NET_F_CTRL_RX)) return VIRTIO_NET_ERR;
        this.filter.setMacTable(req.unicast, req.multicast);
        return VIRTIO_NET_OK;
      case 'mac-addr':
        if (!has(VIRTIO_NET_F_CTRL_MAC_ADDR)) return VIRTIO_NET_ERR;
        // In config space before the command is used (5.1.9.5.2.1), under a new config_generation.
        this.config.bytes.set(req.mac, VIRTIO_NET_CONFIG_MAC);
        this.host?.configChangedByDriver?.();
        return VIRTIO_NET_OK;
      case 'announce-ack':
        if (!has(VIRTIO_NET_F_GUEST_ANNOUNCE)) return VIRTIO_NET_ERR;
        this.announcing = false;
        this.updateStatus();
        return VIRTIO_NET_OK;
      case 'mq-pairs':
        if (!has(VIRTIO_NET_F_MQ) || req.pairs < VIRTIO_NET_CTRL_MQ_VQ_PAIRS_MIN || req.pairs > this.maxPairs) return VIRTIO_NET_ERR;
        this.activePairs = req.pairs;
        return VIRTIO_NET_OK;
      case 'unsupported':
        return VIRTIO_NET_ERR;
    }
  }
}
