/**
 * The virtio-net device model (spec 5.1): features, configuration space, link and announce state,
 * and the queues' life (activation, reset, VIRTIO_F_RING_RESET, suspension). Frames from the
 * transmitqs go to a NetBackend (transmitq.ts); frames from the backend go through the receive
 * filter into a receiveq, spanning several buffers with VIRTIO_NET_F_MRG_RXBUF (receiveq.ts); the
 * controlq's commands are carried out in controlq.ts. Offered: MAC, STATUS (link and announce), CSUM
 * (completed in software), MRG_RXBUF, CTRL_VQ with CTRL_RX, CTRL_RX_EXTRA, CTRL_MAC_ADDR and
 * GUEST_ANNOUNCE, and MQ when more than one queue pair is configured. No segmentation offload: no
 * backend here could honour it.
 */

import { UsageError } from '../../errors.js';
import type { AccessSize } from '../../memory/access-size.js';
import type { DeviceQueue } from '../../queue/types.js';
import { featureSet, hasFeature, VIRTIO_F_VERSION_1 } from '../../spec/features.js';
import { VIRTIO_ID_NET } from '../../spec/ids.js';
import { DRIVER_REQUIREMENTS as R } from '../../spec/driver-requirements.js';
import {
  ETH_ALEN,
  netCtrlQueueIndex,
  netRxQueueIndex,
  netTxQueueIndex,
  randomLocalMac,
  VIRTIO_NET_CONFIG_MAC,
  VIRTIO_NET_CONFIG_MAX_VIRTQUEUE_PAIRS,
  VIRTIO_NET_CONFIG_MTU,
  VIRTIO_NET_CONFIG_STATUS,
  VIRTIO_NET_CTRL_MQ_VQ_PAIRS_MAX,
  VIRTIO_NET_CTRL_MQ_VQ_PAIRS_MIN,
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
  VIRTIO_NET_S_ANNOUNCE,
  VIRTIO_NET_S_LINK_UP,
  virtioNetHdrSize,
} from '../../spec/net.js';
import { ConfigBytes } from '../config-bytes.js';
import type { ActivateContext, VirtioDevice, VirtioDeviceHost } from '../../core/virtio-device.js';
import type { NetBackend } from './backend.js';
import { processNetControlq, type NetControlTarget } from './controlq.js';
import { netDeviceStats, type NetDeviceStats } from './net-stats.js';
import { NetReceiveqs } from './receiveq.js';
import { RxFilter } from './rx-filter.js';
import { NetTransmitqs } from './transmitq.js';
import type { SnapshotReader } from '../../snapshot/snapshot-reader.js';
import { bytes, flag, struct, u16, type SnapshotStruct } from '../../snapshot/snapshot-value.js';

export type { NetDeviceStats } from './net-stats.js';

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

export class VirtioNetDevice implements VirtioDevice {
  readonly deviceType = VIRTIO_ID_NET;
  readonly deviceFeatures: bigint;
  readonly queueMaxSizes: readonly number[];
  /** mac, status, and max_virtqueue_pairs with MQ: the fields the offered features make present (5.1.4). */
  readonly configSize: number;
  readonly stats: NetDeviceStats = netDeviceStats();
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
  private ctrlQueue: DeviceQueue | null = null;
  private ctrlIndex = -1;
  /** The receiveqs (5.1.9.3, 5.1.9.4), the transmitqs (5.1.9.2) and what the controlq changes (5.1.9.5). */
  private readonly rx: NetReceiveqs;
  private readonly tx: NetTransmitqs;
  private readonly ctrl: NetControlTarget;

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
    // The MAC in config space, as one view kept for the receive filter.
    const macBytes = this.config.bytes.subarray(VIRTIO_NET_CONFIG_MAC, VIRTIO_NET_CONFIG_MAC + ETH_ALEN);
    this.rx = new NetReceiveqs(pairs, this.stats, this.filter, macBytes);
    this.tx = new NetTransmitqs(this.backend, this.stats);
    this.ctrl = {
      stats: this.stats,
      filter: this.filter,
      maxPairs: pairs,
      features: () => this.features,
      host: () => this.host,
      setMac: (mac) => {
        // In config space before the command is used (5.1.9.5.2.1), under a new config_generation.
        this.config.bytes.set(mac, VIRTIO_NET_CONFIG_MAC);
        this.host?.configChangedByDriver?.();
      },
      announced: () => {
        this.announcing = false;
        this.updateStatus();
      },
      setActivePairs: (n) => {
        this.rx.activePairs = n;
      },
    };
    this.resetState();
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
    return this.rx.activePairs;
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
    const mergeable = hasFeature(ctx.features, VIRTIO_NET_F_MRG_RXBUF);
    const hdrSize = virtioNetHdrSize(hasFeature(ctx.features, VIRTIO_F_VERSION_1), mergeable);
    const pairs = hasFeature(ctx.features, VIRTIO_NET_F_MQ) ? this.maxPairs : 1;
    const rxQueues: (DeviceQueue | null)[] = [];
    const txQueues: (DeviceQueue | null)[] = [];
    for (let p = 0; p < pairs; p++) {
      rxQueues.push(ctx.queues[netRxQueueIndex(p)] ?? null);
      txQueues.push(ctx.queues[netTxQueueIndex(p)] ?? null);
    }
    this.tx.activate(txQueues, hdrSize, hasFeature(ctx.features, VIRTIO_NET_F_CSUM));
    this.ctrlIndex = hasFeature(ctx.features, VIRTIO_NET_F_CTRL_VQ) ? netCtrlQueueIndex(pairs) : -1;
    this.ctrlQueue = this.ctrlIndex >= 0 ? (ctx.queues[this.ctrlIndex] ?? null) : null;
    this.active = true;
    this.rx.activate(rxQueues, hdrSize, mergeable);
    this.guard(() => {
      for (let p = 0; p < pairs; p++) this.processTx(p);
      this.processCtrl();
    });
  }

  queueNotify(index: number): void {
    if (!this.active) return;
    this.guard(() => {
      if (index === this.ctrlIndex) this.processCtrl();
      else if (index % 2 === 1 && (index - 1) / 2 < this.tx.pairs) this.processTx((index - 1) / 2);
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
    this.guard(() => this.rx.suspend(this.host));
  }

  /** VIRTIO_F_RING_RESET: queue `queue.index` is back, on a new ring. */
  enableQueue(queue: DeviceQueue): void {
    this.setQueue(queue.index, queue);
  }

  /** Put `queue` (or nothing) in the place of queue `index` (5.1.2: receiveq 2p, transmitq 2p + 1, then controlq). */
  private setQueue(index: number, queue: DeviceQueue | null): void {
    const pair = index >> 1;
    if (index === this.ctrlIndex) this.ctrlQueue = queue;
    else if (pair < this.rx.pairs && index % 2 === 1) this.tx.setQueue(pair, queue);
    else if (pair < this.rx.pairs) this.rx.setQueue(pair, queue);
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
      activePairs: u16(this.rx.activePairs),
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
      this.rx.activePairs = activePairs;
      this.announcing = announcing;
      this.updateStatus();
    };
  }

  private resetState(): void {
    this.active = false;
    this.features = 0n;
    this.rx.reset();
    this.tx.reset();
    this.ctrlQueue = null;
    this.ctrlIndex = -1;
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

  /** Transmitq `pair`'s chains; when more came meanwhile, another pass in a microtask. */
  private processTx(pair: number): void {
    if (this.tx.process(pair, this.host!)) queueMicrotask(() => this.active && this.guard(() => this.processTx(pair)));
  }

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
      this.rx.place(frame, this.host);
    } catch (err) {
      this.fail(err);
    }
  }

  /** The used buffer notifications place() owes. */
  private notifyRx(): void {
    this.rx.notify(this.host, this.active);
  }

  private processCtrl(): void {
    if (this.ctrlQueue) processNetControlq(this.ctrlQueue, this.ctrl);
  }
}
