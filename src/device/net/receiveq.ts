/**
 * virtio-net's receiveqs (spec 5.1.9.3, 5.1.9.4): a frame from the backend goes through the receive
 * filter and steering into its pair's receiveq, copied straight into the driver's buffers, spanning
 * several with VIRTIO_NET_F_MRG_RXBUF. A frame that finds no buffer is dropped and counted: the
 * device never waits for the driver. Used buffer notifications are owed per queue until notify().
 */

import type { VirtioDeviceHost } from '../../core/virtio-device.js';
import type { GuestMemory } from '../../memory/guest-memory.js';
import type { DescriptorChain, DeviceQueue } from '../../queue/types.js';
import { VIRTIO_NET_HDR_CSUM_OFFSET, VIRTIO_NET_HDR_NUM_BUFFERS, VIRTIO_NET_HDR_SIZE } from '../../spec/net.js';
import { writeChain } from '../chain-bytes.js';
import type { NetDeviceStats } from './net-stats.js';
import type { RxFilter } from './rx-filter.js';
import { steerFrame } from './steering.js';

/** The receiveq of every queue pair in use, from activation until reset. */
export class NetReceiveqs {
  /** Queue pairs receiving frames now (VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET). */
  activePairs = 1;
  /** Per pair; null where the queue is not enabled or was reset (VIRTIO_F_RING_RESET). */
  private queues: (DeviceQueue | null)[] = [];
  /** Receive chains popped but not yet used, per pair: kept for the next frame, never lost. */
  private stash: DescriptorChain[][] = [];
  private hdrSize = 0;
  /** VIRTIO_NET_F_MRG_RXBUF as negotiated, kept as a boolean: a bigint test per frame costs more than the frame's bookkeeping. */
  private mergeable = false;
  /** The receive header, all fields 0 but num_buffers, rewritten per frame (hdrSize bytes). */
  private rxHdr = new Uint8Array(0);
  /** Pairs whose receiveq got used buffers in the current delivery, each once: one notification per queue per batch. */
  private readonly touched: number[] = [];
  private readonly touchedFlag: Uint8Array;

  /** For `pairs` queue pairs at most; `mac` is the MAC in config space, one view kept for the filter. */
  constructor(
    pairs: number,
    private readonly stats: NetDeviceStats,
    private readonly filter: RxFilter,
    private readonly mac: Uint8Array,
  ) {
    this.touchedFlag = new Uint8Array(pairs);
  }

  /** Pairs with a receiveq place (those in use since activation). */
  get pairs(): number {
    return this.queues.length;
  }

  activate(queues: (DeviceQueue | null)[], hdrSize: number, mergeable: boolean): void {
    this.queues = queues;
    this.stash = queues.map(() => []);
    this.hdrSize = hdrSize;
    this.mergeable = mergeable;
    this.rxHdr = new Uint8Array(hdrSize);
    // The device never waits for receive buffers, so it needs no notification when they arrive.
    for (const q of queues) q?.setNotification(false);
  }

  reset(): void {
    this.queues = [];
    this.stash = [];
    this.hdrSize = 0;
    this.mergeable = false;
    this.activePairs = 1;
  }

  /** `queue` (or nothing) in the place of pair `pair`'s receiveq; chains held for the old ring are forgotten. */
  setQueue(pair: number, queue: DeviceQueue | null): void {
    this.queues[pair] = queue;
    this.stash[pair] = [];
    // As at activation: the device never waits for receive buffers.
    queue?.setNotification(false);
  }

  /**
   * VIRTIO_F_SUSPEND: receive chains held for the next frame go back used and empty (as a malformed
   * receive buffer does), with a notification per queue.
   */
  suspend(host: VirtioDeviceHost | undefined): void {
    this.stash.forEach((stash, pair) => {
      const q = this.queues[pair];
      if (!q || stash.length === 0) return;
      for (const chain of stash.splice(0)) q.pushUsed(chain.head, 0);
      host?.usedBuffers(q.index);
    });
  }

  /**
   * A frame through the filter into its receiveq, copied into `host`'s guest memory before returning
   * (or dropped and counted); its notification is owed until {@link notify}.
   */
  place(frame: Uint8Array, host: VirtioDeviceHost | undefined): void {
    if (!this.filter.accepts(frame, this.mac)) {
      this.stats.rxFiltered++;
      return;
    }
    let pair = this.activePairs > 1 ? steerFrame(frame, this.activePairs) : 0;
    if (!this.queues[pair]) pair = 0;
    if (this.deliver(pair, frame, host)) this.touch(pair);
  }

  /** The used buffer notifications place() owes (none while the device is not `active`). */
  notify(host: VirtioDeviceHost | undefined, active: boolean): void {
    for (const pair of this.touched) {
      this.touchedFlag[pair] = 0;
      const q = this.queues[pair];
      if (q && active) host?.usedBuffers(q.index);
    }
    this.touched.length = 0;
  }

  /** Receiveq `pair` got used buffers: notify() owes it a notification. */
  private touch(pair: number): void {
    if (this.touchedFlag[pair] === 0) {
      this.touchedFlag[pair] = 1;
      this.touched.push(pair);
    }
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
  private deliver(pair: number, frame: Uint8Array, host: VirtioDeviceHost | undefined): boolean {
    const q = this.queues[pair];
    const stash = this.stash[pair];
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
        this.writeWhole(q, c, frame, host!.memory);
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
    if (chains === 1 && stash[0]!.len(0) >= need) this.writeWhole(q, stash[0]!, frame, host!.memory);
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
   * Header and frame into the first buffer of `chain` (it has room), through its region of guest
   * memory, checked once for both: no view to allocate. The header is every field 0 (no offload,
   * GSO_NONE) but num_buffers, 1 here; the legacy 10-byte one (rxHdr) has no num_buffers.
   */
  private writeWhole(q: DeviceQueue, chain: DescriptorChain, frame: Uint8Array, memory: GuestMemory): void {
    const hdr = this.rxHdr;
    const hdrSize = hdr.length;
    const addr = chain.addr(0);
    const need = hdrSize + frame.length;
    const r = memory.region(addr, need);
    const at = addr - r.base;
    if (hdrSize === VIRTIO_NET_HDR_SIZE) {
      // Stores, not a set() of rxHdr: the call costs more than a frame's other bookkeeping.
      r.dv.setUint32(at, 0, true);
      r.dv.setUint32(at + 4, 0, true);
      r.dv.setUint16(at + VIRTIO_NET_HDR_CSUM_OFFSET, 0, true);
      r.dv.setUint16(at + VIRTIO_NET_HDR_NUM_BUFFERS, 1, true);
    } else r.bytes.set(hdr, at);
    r.bytes.set(frame, at + hdrSize);
    q.pushUsed(chain.head, need);
  }
}
