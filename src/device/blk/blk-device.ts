/**
 * The virtio-blk device model (spec 5.2). Chains are taken in bursts (request-burst.ts), each parsed
 * into a typed request and checked against the disk before any I/O (request.ts); the backend then
 * reads or writes guest memory in place (device-operation.ts). Synchronous backends complete on the
 * notify; asynchronous ones complete later, in any order, with at most `maxInFlight` requests
 * outstanding across all queues, and a device or queue reset completes only once the operations of
 * its old life have settled (in-flight-requests.ts).
 */

import { UsageError } from '../../errors.js';
import { hasFeature } from '../../spec/features.js';
import { VIRTIO_ID_BLOCK } from '../../spec/ids.js';
import { DRIVER_REQUIREMENTS as R } from '../../spec/driver-requirements.js';
import {
  VIRTIO_BLK_CONFIG_SIZE,
  VIRTIO_BLK_F_CONFIG_WCE,
  VIRTIO_BLK_S_IOERR,
  VIRTIO_BLK_S_OK,
  VIRTIO_BLK_SECTOR_SIZE,
} from '../../spec/blk.js';
import type { AccessSize } from '../../memory/access-size.js';
import { checkQueueMaxSize } from '../../queue/ring-format.js';
import type { DescriptorChain, DeviceQueue } from '../../queue/types.js';
import type { ActivateContext, ResetCompletion, VirtioDevice, VirtioDeviceHost } from '../../core/virtio-device.js';
import type { BlockResult, GuestIo } from './backend.js';
import { BlkConfig, checkInt } from './blk-config.js';
import type { BlkDeviceOptions } from './blk-device-options.js';
import { offeredFeatures } from './feature-bits.js';
import { BlkOperation } from './device-operation.js';
import { InFlightRequests, type PendingRequest } from './in-flight-requests.js';
import { ASYNC, BURST, BurstSlot } from './request-burst.js';
import { BlkRequestError, OneSpanIo, type BlkLimits } from './request.js';
import type { SnapshotReader } from '../../snapshot/snapshot-reader.js';
import { flag, struct, u64, type SnapshotStruct } from '../../snapshot/snapshot-value.js';

export type { BlkTopology } from './blk-config.js';
export type { BlkDeviceOptions } from './blk-device-options.js';

/** A virtio-blk device over a {@link BlockBackend}; plug it into any transport (e.g. Machine.plugVirtio). */
export class BlkDevice implements VirtioDevice {
  readonly deviceType = VIRTIO_ID_BLOCK;
  readonly deviceFeatures: bigint;
  readonly queueMaxSizes: readonly number[];
  readonly configSize = VIRTIO_BLK_CONFIG_SIZE;
  /** Disk size in 512-byte sectors. */
  readonly capacity: number;
  readonly readOnly: boolean;

  private readonly limits: BlkLimits;
  private readonly maxInFlight: number;
  private readonly config: BlkConfig;
  private readonly operation: BlkOperation;
  private host: VirtioDeviceHost | undefined;

  private features = 0n;
  private featuresAccepted = false;
  private queues: (DeviceQueue | null)[] = [];
  /** Requests with an asynchronous backend, across resets. */
  private readonly requests = new InFlightRequests();
  /** Set after a fatal guest fault: nothing is processed until reset. */
  private broken = false;
  /** Queues left with chains when maxInFlight was reached, resumed as requests complete. */
  private readonly stalled = new Set<number>();
  /** Queues with used elements pushed by asynchronous completions, interrupted once per microtask. */
  private readonly interruptPending = new Set<number>();
  private busy = false;
  /** The requests of one burst (see drain), refilled burst after burst. */
  private burst: BurstSlot[] = [];

  constructor(options: BlkDeviceOptions) {
    const backend = options.backend;
    this.readOnly = options.readOnly ?? backend.readOnly;
    if (!this.readOnly && backend.readOnly) throw new UsageError('a read-only backend cannot back a writable disk');
    const numQueues = options.numQueues ?? 1;
    const queueSize = options.queueSize ?? 256;
    const maxSectors = options.maxDiscardSectors ?? 8192;
    const maxSeg = options.maxDiscardSeg ?? 16;
    checkInt('numQueues', numQueues, 1, 0xffff);
    checkQueueMaxSize('queueSize', queueSize, 2); // at least 2: seg_max is queueSize - 2
    this.capacity = Math.floor(backend.size / VIRTIO_BLK_SECTOR_SIZE);
    this.config = new BlkConfig({
      capacity: this.capacity,
      numQueues,
      queueSize,
      blkSize: options.blkSize ?? VIRTIO_BLK_SECTOR_SIZE,
      sizeMax: options.sizeMax ?? 0x10_0000,
      topology: options.topology,
      maxDiscardSectors: maxSectors,
      maxDiscardSeg: maxSeg,
      writeback: options.writeback ?? true,
    });
    this.maxInFlight = options.maxInFlight ?? 64;
    checkInt('maxInFlight', this.maxInFlight, 1, 0xffff_ffff);
    this.operation = new BlkOperation(backend, this.config, this.readOnly, options.serial ?? 'virtio-ts');

    this.queueMaxSizes = new Array<number>(numQueues).fill(queueSize);
    this.limits = {
      capacity: this.capacity,
      maxDiscardSectors: maxSectors,
      maxDiscardSeg: maxSeg,
      maxWriteZeroesSectors: maxSectors,
      maxWriteZeroesSeg: maxSeg,
    };

    this.deviceFeatures = offeredFeatures(backend, this.readOnly, numQueues, options.topology !== undefined);
  }

  attach(host: VirtioDeviceHost): void {
    this.host = host;
    this.burst = Array.from({ length: BURST }, () => new BurstSlot(host.memory));
  }

  readConfig(offset: number, size: AccessSize): number {
    return this.config.read(offset, size);
  }

  /**
   * Only `writeback` is writable (5.2.5), once CONFIG_WCE is negotiated; before FEATURES_OK (the
   * legacy interface has none) a write is kept if the driver goes on to negotiate CONFIG_WCE (5.2.5.2).
   * Other writes are ignored. The field is the cache mode the device applies, so a write takes effect
   * for every write completed after it.
   */
  writeConfig(offset: number, size: AccessSize, value: number): void {
    this.config.write(offset, size, value, this.featuresAccepted ? this.features : this.deviceFeatures);
  }

  /** Called at FEATURES_OK: from here the driver may read `writeback`, so fix its initial value now. */
  acceptFeatures(features: bigint): boolean {
    this.features = features;
    this.featuresAccepted = true;
    this.config.negotiateWriteback(features);
    return true;
  }

  activate(ctx: ActivateContext): void {
    this.queues = [...ctx.queues];
    this.requests.activate(ctx.queues.length);
    this.features = ctx.features;
    // Legacy (no FEATURES_OK): the driver may have read `writeback` already and set its cache policy
    // from it, so 5.2.5.2 lets DRIVER_OK change the mode only when the driver left CONFIG_WCE out
    // (and so never relied on the field).
    if (!this.featuresAccepted && !hasFeature(this.features, VIRTIO_BLK_F_CONFIG_WCE)) this.config.negotiateWriteback(this.features);
  }

  queueNotify(index: number): void {
    this.process(index);
  }

  /**
   * Back to power-on state. With backend operations outstanding, returns a promise that settles once
   * they all have: only then can nothing of the old life touch guest memory or the disk.
   */
  reset(): ResetCompletion {
    this.queues = [];
    this.features = 0n;
    this.featuresAccepted = false;
    this.broken = false;
    this.stalled.clear();
    this.interruptPending.clear();
    this.config.resetWriteback();
    return this.requests.reset();
  }

  /**
   * VIRTIO_F_RING_RESET: stop using queue `index` at once (no more pops, no used element of its
   * requests: their completions are dropped, as after a device reset). With backend operations of the
   * queue outstanding, returns a promise that settles once they all have: they still write guest
   * memory until then. The other queues are not touched.
   */
  resetQueue(index: number): ResetCompletion {
    if (!this.requests.has(index)) return undefined;
    this.queues[index] = null;
    this.stalled.delete(index);
    this.interruptPending.delete(index);
    return this.requests.resetQueue(index);
  }

  /** VIRTIO_F_RING_RESET: queue `queue.index` is back, on a new ring; the driver notifies when it adds requests. */
  enableQueue(queue: DeviceQueue): void {
    if (queue.index < this.queues.length) this.queues[queue.index] = queue;
  }

  /** Requests handed to an asynchronous backend and not yet settled, from before resets included. */
  get requestsInFlight(): number {
    return this.requests.count;
  }

  /**
   * The model's state (docs/snapshots.md): the features as it knows them and the cache mode. Its
   * requests in flight are the rings' in-flight chains: the restored rings hand them back, and each
   * is parsed and submitted to the backend again (a re-run write writes the same bytes).
   */
  snapshot(): SnapshotStruct {
    return struct({
      features: u64(this.features),
      featuresAccepted: flag(this.featuresAccepted),
      writeback: flag(!this.config.writethrough),
      broken: flag(this.broken),
    });
  }

  /** See VirtioDevice.prepareRestore. */
  prepareRestore(r: SnapshotReader): () => void {
    const features = r.u64('features');
    const featuresAccepted = r.flag('featuresAccepted');
    const writeback = r.flag('writeback');
    const broken = r.flag('broken');
    return () => {
      this.features = features;
      this.featuresAccepted = featuresAccepted;
      this.config.setWriteback(writeback);
      this.broken = broken;
    };
  }

  private process(index: number): void {
    const queue = this.queues[index];
    if (!queue || this.broken || !this.host) return;
    if (this.busy) {
      // A notify from inside an interrupt we raised: the running loop below picks the chains up.
      this.stalled.add(index);
      return;
    }
    this.busy = true;
    try {
      this.drain(queue);
      // Chains left because we were re-entered or out of in-flight slots.
      for (const i of this.stalled) {
        if (this.requests.count >= this.maxInFlight || this.broken) break;
        this.stalled.delete(i);
        const q = this.queues[i];
        if (q) this.drain(q);
      }
    } finally {
      this.busy = false;
    }
  }

  /**
   * Pop and start requests until the ring is empty or maxInFlight is reached. Bounded by the ring.
   * Requests go in bursts: every request of a burst is popped and checked, then each is executed in
   * pop order, then each is completed in pop order, so that the copies run back to back instead of
   * each evicting the bookkeeping the next request needs (and the bookkeeping the copy's stream).
   */
  private drain(queue: DeviceQueue): void {
    const host = this.host!;
    let pushed = false;
    let more = true;
    while (more && !this.broken) {
      // Each request of the burst may go to an asynchronous backend: never more than the free slots.
      const room = Math.min(this.burst.length, this.maxInFlight - this.requests.count);
      if (room <= 0) {
        // Resumed when a request completes (an empty ring then simply pops nothing).
        this.stalled.add(queue.index);
        break;
      }
      let n = 0;
      let fatal: unknown = undefined;
      for (; n < room; n++) {
        let chain: DescriptorChain | null;
        try {
          chain = queue.pop();
        } catch (err) {
          fatal = err;
          break;
        }
        if (!chain) break;
        fatal = this.admit(queue, chain, this.burst[n]!);
        if (fatal !== undefined) break;
      }
      more = n === room && fatal === undefined;
      for (let k = 0; k < n; k++) this.run(queue, this.burst[k]!);
      for (let k = 0; k < n && !this.broken; k++) {
        const slot = this.burst[k]!;
        if (slot.answer === ASYNC) continue;
        this.complete(queue, slot.head, slot.status, slot.usedLen, slot.dataIn, slot.answer);
        pushed = true;
      }
      // Chains popped before the fault are done, as they would have been one at a time.
      if (fatal !== undefined) this.fail(fatal);
    }
    if (pushed) host.usedBuffers(queue.index);
  }

  /**
   * Check one popped chain into `slot`: its request, or the status it is answered with without any
   * I/O. Returns the fault when the chain cannot be answered at all (no status byte).
   */
  private admit(queue: DeviceQueue, chain: DescriptorChain, slot: BurstSlot): Error | undefined {
    const refused = slot.load(queue.index, chain, this.limits, this.host!.memory);
    if (refused instanceof BlkRequestError) {
      const broken =
        refused.fault === 'past-capacity'
          ? R.blkWithinCapacity
          : refused.fault === 'data-not-sector-multiple'
            ? R.blkSectorMultiple
            : undefined;
      if (broken !== undefined) this.host!.audit?.(broken, `queue ${queue.index} chain ${chain.head}: ${refused.message}`);
      return undefined;
    }
    if (refused !== undefined) return refused;
    const status = this.operation.refusal(slot.request!, this.features);
    if (status !== undefined) {
      slot.answer = status;
      slot.request = undefined;
    }
    return undefined;
  }

  /** Execute the request `slot` holds, if any: its answer, or ASYNC once an asynchronous backend has it. */
  private run(queue: DeviceQueue, slot: BurstSlot): void {
    const request = slot.request;
    if (request === undefined) return;
    let result: BlockResult;
    try {
      result = this.operation.execute(request);
    } catch {
      slot.answer = VIRTIO_BLK_S_IOERR;
      return;
    }
    if (result === undefined) {
      slot.answer = VIRTIO_BLK_S_OK;
      return;
    }
    slot.answer = ASYNC;
    // The request's GuestIo belongs to the operation until it settles: the next one gets another.
    slot.storage.io = new OneSpanIo(this.host!.memory);
    const pending = this.requests.start(queue, slot.head, slot.status, slot.usedLen, slot.dataIn);
    result.then(
      () => this.settle(pending, VIRTIO_BLK_S_OK),
      () => this.settle(pending, VIRTIO_BLK_S_IOERR),
    );
  }

  /**
   * An asynchronous request settled: its slot is free (a reset waiting for the last one completes);
   * answer it unless a reset of the device or of its queue came in between, or the device set
   * DEVICE_NEEDS_RESET since (2.1.2: no used buffers after that).
   */
  private settle(p: PendingRequest, status: number): void {
    const answer = this.requests.settle(p);
    if (this.broken) return;
    if (answer) {
      this.complete(p.queue, p.head, p.status, p.usedLen, p.dataIn, status);
      if (this.interruptPending.size === 0) queueMicrotask(() => this.raiseInterrupts());
      this.interruptPending.add(p.queue.index);
    }
    // A slot freed, by this life's request or an older one: resume a queue that ran out of them.
    if (this.stalled.size > 0 && !this.busy) {
      const [first] = this.stalled;
      this.stalled.delete(first!);
      this.process(first!);
    }
  }

  private raiseInterrupts(): void {
    const host = this.host;
    for (const index of this.interruptPending) host?.usedBuffers(index);
    this.interruptPending.clear();
  }

  /** Write the status byte and push the used element; used len covers every writable byte. */
  private complete(
    queue: DeviceQueue,
    head: number,
    statusAddr: number,
    usedLen: number,
    dataIn: GuestIo | undefined,
    status: number,
  ): void {
    if (status !== VIRTIO_BLK_S_OK && dataIn) for (const s of dataIn.spans) dataIn.memory.view(s.addr, s.len).fill(0);
    this.host!.memory.write8(statusAddr, status);
    try {
      queue.pushUsed(head, usedLen);
    } catch (err) {
      this.fail(err);
    }
  }

  private fail(err: unknown): void {
    this.broken = true;
    this.stalled.clear();
    this.host?.needsReset(err instanceof Error ? err : new Error(String(err)));
  }
}
