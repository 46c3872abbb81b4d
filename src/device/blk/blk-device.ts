/**
 * The virtio-blk device model (spec 5.2). Each chain is parsed into a typed request and checked
 * against the disk before any I/O ({@link parseBlkRequest}); the backend then reads or writes guest
 * memory in place. Synchronous backends complete on the notify; asynchronous ones complete later, in
 * any order, with at most `maxInFlight` requests outstanding across all queues.
 *
 * Reset and in-flight I/O: a backend operation cannot be recalled, and it reads or writes guest
 * memory in place until its promise settles. So {@link BlkDevice.reset} answers with a promise that
 * settles once every operation started before it has settled; the transport reports the reset done
 * (device_status 0) only then. Operations of an old life still count against `maxInFlight` until
 * they settle, and their completions are dropped (no status byte, no used element). A queue reset
 * (VIRTIO_F_RING_RESET, {@link BlkDevice.resetQueue}) does the same for one queue: its completion
 * waits for that queue's operations only, while the other queues carry on.
 */

import { RequestShapeError, UsageError } from '../../errors.js';
import { bit, hasFeature } from '../../spec/features.js';
import { VIRTIO_ID_BLOCK } from '../../spec/ids.js';
import { DRIVER_REQUIREMENTS as R } from '../../spec/driver-requirements.js';
import {
  VIRTIO_BLK_CONFIG_ALIGNMENT_OFFSET,
  VIRTIO_BLK_CONFIG_BLK_SIZE,
  VIRTIO_BLK_CONFIG_CAPACITY,
  VIRTIO_BLK_CONFIG_DISCARD_SECTOR_ALIGNMENT,
  VIRTIO_BLK_CONFIG_MAX_DISCARD_SECTORS,
  VIRTIO_BLK_CONFIG_MAX_DISCARD_SEG,
  VIRTIO_BLK_CONFIG_MAX_WRITE_ZEROES_SECTORS,
  VIRTIO_BLK_CONFIG_MAX_WRITE_ZEROES_SEG,
  VIRTIO_BLK_CONFIG_MIN_IO_SIZE,
  VIRTIO_BLK_CONFIG_NUM_QUEUES,
  VIRTIO_BLK_CONFIG_OPT_IO_SIZE,
  VIRTIO_BLK_CONFIG_PHYSICAL_BLOCK_EXP,
  VIRTIO_BLK_CONFIG_SEG_MAX,
  VIRTIO_BLK_CONFIG_SIZE,
  VIRTIO_BLK_CONFIG_SIZE_MAX,
  VIRTIO_BLK_CONFIG_WRITEBACK,
  VIRTIO_BLK_F_BLK_SIZE,
  VIRTIO_BLK_F_CONFIG_WCE,
  VIRTIO_BLK_F_DISCARD,
  VIRTIO_BLK_F_FLUSH,
  VIRTIO_BLK_F_MQ,
  VIRTIO_BLK_F_RO,
  VIRTIO_BLK_F_SEG_MAX,
  VIRTIO_BLK_F_SIZE_MAX,
  VIRTIO_BLK_F_TOPOLOGY,
  VIRTIO_BLK_F_WRITE_ZEROES,
  VIRTIO_BLK_ID_BYTES,
  VIRTIO_BLK_S_IOERR,
  VIRTIO_BLK_S_OK,
  VIRTIO_BLK_S_UNSUPP,
  VIRTIO_BLK_SECTOR_SIZE,
  VIRTIO_BLK_T_DISCARD,
  VIRTIO_BLK_T_FLUSH,
  VIRTIO_BLK_T_GET_ID,
  VIRTIO_BLK_T_IN,
  VIRTIO_BLK_T_OUT,
  VIRTIO_BLK_T_WRITE_ZEROES,
} from '../../spec/blk.js';
import { splitU64, type GuestMemory } from '../../memory/guest-memory.js';
import { ConfigBytes } from '../config-bytes.js';
import type { AccessSize } from '../../memory/access-size.js';
import { checkQueueMaxSize } from '../../queue/ring-format.js';
import type { DescriptorChain, DeviceQueue } from '../../queue/types.js';
import type { ActivateContext, ResetCompletion, VirtioDevice, VirtioDeviceHost } from '../../core/virtio-device.js';
import type { BlockBackend, BlockResult, GuestIo } from './backend.js';
import {
  BlkRequestError,
  chainSpans,
  OneSpanIo,
  parseBlkRequest,
  RequestStorage,
  statusAddress,
  usualRequest,
  type BlkLimits,
  type BlkRange,
  type BlkRequest,
} from './request.js';
import type { SnapshotReader } from '../../snapshot/snapshot-reader.js';
import { flag, struct, u64, type SnapshotStruct } from '../../snapshot/snapshot-value.js';

/** struct virtio_blk_topology, in the spec's units. */
export interface BlkTopology {
  /** log2 of logical blocks per physical block. */
  readonly physicalBlockExp: number;
  /** Offset of the first aligned logical block. */
  readonly alignmentOffset: number;
  /** Suggested minimum I/O size, in logical blocks. */
  readonly minIoSize: number;
  /** Optimal (suggested maximum) I/O size, in logical blocks. */
  readonly optIoSize: number;
}

export interface BlkDeviceOptions {
  /** Where the sectors live. */
  readonly backend: BlockBackend;
  /** GET_ID answer: ASCII, at most 20 bytes, NUL-padded by the device. Default "virtio-ts". */
  readonly serial?: string;
  /** Refuse writes even if the backend could do them (VIRTIO_BLK_F_RO). Default: backend.readOnly. */
  readonly readOnly?: boolean;
  /** Request queues; above 1 the device offers VIRTIO_BLK_F_MQ. Default 1. */
  readonly numQueues?: number;
  /** Maximum size of each queue (a power of two). Default 256. */
  readonly queueSize?: number;
  /** Asynchronous requests outstanding across all queues before the device stops popping. Default 64. */
  readonly maxInFlight?: number;
  /** blk_size: the disk's logical block size, a power of two >= 512. Default 512. */
  readonly blkSize?: number;
  /** size_max: largest data segment the driver may use, in bytes. Default 1 MiB. */
  readonly sizeMax?: number;
  /** Offer VIRTIO_BLK_F_TOPOLOGY with these values. */
  readonly topology?: BlkTopology;
  /**
   * Cache mode after reset (5.2.5): true = writeback. Kept when the driver negotiates CONFIG_WCE and
   * FLUSH, and shown from reset to a legacy driver, which may read it before DRIVER_OK. Default true.
   */
  readonly writeback?: boolean;
  /** max_discard_sectors / max_write_zeroes_sectors per segment. Default 8192 (4 MiB). */
  readonly maxDiscardSectors?: number;
  /** max_discard_seg / max_write_zeroes_seg. Default 16. */
  readonly maxDiscardSeg?: number;
}

/** One life of one queue, from its enabling to its reset or the device's: its operations with the backend. */
interface QueueLife {
  inFlight: number;
  /** The queue was reset: completions of this life are dropped. */
  ended: boolean;
  /** Resolves the queue reset once the last operation of this life has settled. */
  settled: (() => void) | undefined;
}

function newLife(): QueueLife {
  return { inFlight: 0, ended: false, settled: undefined };
}

/** A request handed to an asynchronous backend, remembered without the chain (queues may reuse it). */
interface Pending {
  readonly generation: number;
  readonly life: QueueLife;
  readonly queue: DeviceQueue;
  readonly head: number;
  readonly status: number;
  readonly usedLen: number;
  /** Device-writable data bytes, zeroed if the request fails so that used len stays truthful. */
  readonly dataIn: GuestIo | undefined;
}

/** Requests popped and checked before the first of them is executed (see BlkDevice.drain). */
const BURST = 32;
/** BurstSlot.answer of a request an asynchronous backend holds. */
const ASYNC = -1;

/** One request of a burst: what its completion needs, and the storage its parse refills. */
class BurstSlot {
  readonly storage: RequestStorage;
  head = 0;
  /** Guest address of the status byte. */
  status = 0;
  usedLen = 0;
  /** The request to execute, or undefined when it is answered without I/O. */
  request: BlkRequest | undefined = undefined;
  /** The status to answer with, or ASYNC. */
  answer = 0;
  dataIn: GuestIo | undefined = undefined;

  constructor(memory: GuestMemory) {
    this.storage = new RequestStorage(memory);
  }
}

/** A virtio-blk device over a {@link BlockBackend}; plug it into any transport (e.g. Machine.plugVirtio). */
export class BlkDevice implements VirtioDevice {
  readonly deviceType = VIRTIO_ID_BLOCK;
  readonly deviceFeatures: bigint;
  readonly queueMaxSizes: readonly number[];
  readonly configSize = VIRTIO_BLK_CONFIG_SIZE;
  /** Disk size in 512-byte sectors. */
  readonly capacity: number;
  readonly readOnly: boolean;

  private readonly backend: BlockBackend;
  private readonly limits: BlkLimits;
  private readonly serial: Uint8Array;
  private readonly maxInFlight: number;
  private readonly defaultWriteback: boolean;
  private readonly config = new ConfigBytes(VIRTIO_BLK_CONFIG_SIZE);
  private host: VirtioDeviceHost | undefined;

  private features = 0n;
  private featuresAccepted = false;
  private queues: (DeviceQueue | null)[] = [];
  /** The current life of each queue (indexed like `queues`). */
  private lives: QueueLife[] = [];
  /** Bumped by reset so that completions of requests from before it are dropped. */
  private generation = 0;
  /** Backend operations outstanding, of this life and of lives before resets (all count against maxInFlight). */
  private inFlight = 0;
  /** Of those, the ones started before the latest reset. */
  private oldInFlight = 0;
  /** Resolved when oldInFlight drops to 0: the resets waiting for the old lives' operations. */
  private resetWaiters: (() => void)[] = [];
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
    this.backend = backend;
    this.readOnly = options.readOnly ?? backend.readOnly;
    if (!this.readOnly && backend.readOnly) throw new UsageError('a read-only backend cannot back a writable disk');
    const numQueues = options.numQueues ?? 1;
    const queueSize = options.queueSize ?? 256;
    const blkSize = options.blkSize ?? VIRTIO_BLK_SECTOR_SIZE;
    const sizeMax = options.sizeMax ?? 0x10_0000;
    const maxSectors = options.maxDiscardSectors ?? 8192;
    const maxSeg = options.maxDiscardSeg ?? 16;
    this.maxInFlight = options.maxInFlight ?? 64;
    this.defaultWriteback = options.writeback ?? true;
    checkInt('numQueues', numQueues, 1, 0xffff);
    checkQueueMaxSize('queueSize', queueSize, 2); // at least 2: seg_max is queueSize - 2
    checkInt('blkSize', blkSize, VIRTIO_BLK_SECTOR_SIZE, 0x8000_0000);
    if ((blkSize & (blkSize - 1)) !== 0) throw new UsageError(`blkSize ${blkSize} is not a power of two`);
    checkInt('sizeMax', sizeMax, 1, 0xffff_ffff);
    checkInt('maxInFlight', this.maxInFlight, 1, 0xffff_ffff);
    checkInt('maxDiscardSectors', maxSectors, 1, 0xffff_ffff);
    checkInt('maxDiscardSeg', maxSeg, 1, 0xffff_ffff);
    this.serial = encodeSerial(options.serial ?? 'virtio-ts');

    this.capacity = Math.floor(backend.size / VIRTIO_BLK_SECTOR_SIZE);
    this.queueMaxSizes = new Array<number>(numQueues).fill(queueSize);
    this.limits = {
      capacity: this.capacity,
      maxDiscardSectors: maxSectors,
      maxDiscardSeg: maxSeg,
      maxWriteZeroesSectors: maxSectors,
      maxWriteZeroesSeg: maxSeg,
    };

    let features = bit(VIRTIO_BLK_F_SIZE_MAX) | bit(VIRTIO_BLK_F_SEG_MAX) | bit(VIRTIO_BLK_F_BLK_SIZE);
    // 5.2.5: FLUSH SHOULD always be offered and MUST be with CONFIG_WCE.
    features |= bit(VIRTIO_BLK_F_FLUSH) | bit(VIRTIO_BLK_F_CONFIG_WCE);
    if (this.readOnly) features |= bit(VIRTIO_BLK_F_RO);
    if (numQueues > 1) features |= bit(VIRTIO_BLK_F_MQ);
    if (options.topology) features |= bit(VIRTIO_BLK_F_TOPOLOGY);
    if (!this.readOnly && backend.discard) features |= bit(VIRTIO_BLK_F_DISCARD);
    if (!this.readOnly && backend.writeZeroes) features |= bit(VIRTIO_BLK_F_WRITE_ZEROES);
    this.deviceFeatures = features;

    const c = this.config;
    const [capacityLo, capacityHi] = splitU64(this.capacity);
    c.set32(VIRTIO_BLK_CONFIG_CAPACITY, capacityLo);
    c.set32(VIRTIO_BLK_CONFIG_CAPACITY + 4, capacityHi);
    c.set32(VIRTIO_BLK_CONFIG_SIZE_MAX, sizeMax);
    // Two descriptors of every chain carry the header and the status byte.
    c.set32(VIRTIO_BLK_CONFIG_SEG_MAX, queueSize - 2);
    c.set32(VIRTIO_BLK_CONFIG_BLK_SIZE, blkSize);
    if (options.topology) {
      const t = options.topology;
      checkInt('topology.physicalBlockExp', t.physicalBlockExp, 0, 0xff);
      checkInt('topology.alignmentOffset', t.alignmentOffset, 0, 0xff);
      checkInt('topology.minIoSize', t.minIoSize, 0, 0xffff);
      checkInt('topology.optIoSize', t.optIoSize, 0, 0xffff_ffff);
      c.set8(VIRTIO_BLK_CONFIG_PHYSICAL_BLOCK_EXP, t.physicalBlockExp);
      c.set8(VIRTIO_BLK_CONFIG_ALIGNMENT_OFFSET, t.alignmentOffset);
      c.set16(VIRTIO_BLK_CONFIG_MIN_IO_SIZE, t.minIoSize);
      c.set32(VIRTIO_BLK_CONFIG_OPT_IO_SIZE, t.optIoSize);
    }
    c.set16(VIRTIO_BLK_CONFIG_NUM_QUEUES, numQueues);
    c.set32(VIRTIO_BLK_CONFIG_MAX_DISCARD_SECTORS, maxSectors);
    c.set32(VIRTIO_BLK_CONFIG_MAX_DISCARD_SEG, maxSeg);
    c.set32(VIRTIO_BLK_CONFIG_DISCARD_SECTOR_ALIGNMENT, blkSize / VIRTIO_BLK_SECTOR_SIZE);
    c.set32(VIRTIO_BLK_CONFIG_MAX_WRITE_ZEROES_SECTORS, maxSectors);
    c.set32(VIRTIO_BLK_CONFIG_MAX_WRITE_ZEROES_SEG, maxSeg);
    // write_zeroes_may_unmap stays 0: no backend deallocates.
    this.resetWriteback();
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
    if (offset !== VIRTIO_BLK_CONFIG_WRITEBACK || size !== 1) return;
    if (!hasFeature(this.featuresAccepted ? this.features : this.deviceFeatures, VIRTIO_BLK_F_CONFIG_WCE)) return;
    this.config.set8(VIRTIO_BLK_CONFIG_WRITEBACK, value & 1);
  }

  /** Called at FEATURES_OK: from here the driver may read `writeback`, so fix its initial value now. */
  acceptFeatures(features: bigint): boolean {
    this.features = features;
    this.featuresAccepted = true;
    this.negotiateWriteback();
    return true;
  }

  activate(ctx: ActivateContext): void {
    this.queues = [...ctx.queues];
    this.lives = ctx.queues.map(newLife);
    this.features = ctx.features;
    // Legacy (no FEATURES_OK): the driver may have read `writeback` already and set its cache policy
    // from it, so 5.2.5.2 lets DRIVER_OK change the mode only when the driver left CONFIG_WCE out
    // (and so never relied on the field).
    if (!this.featuresAccepted && !hasFeature(this.features, VIRTIO_BLK_F_CONFIG_WCE)) this.negotiateWriteback();
  }

  queueNotify(index: number): void {
    this.process(index);
  }

  /**
   * Back to power-on state. With backend operations outstanding, returns a promise that settles once
   * they all have: only then can nothing of the old life touch guest memory or the disk.
   */
  reset(): ResetCompletion {
    this.generation++;
    this.queues = [];
    this.lives = [];
    this.features = 0n;
    this.featuresAccepted = false;
    this.broken = false;
    this.stalled.clear();
    this.interruptPending.clear();
    this.resetWriteback();
    this.oldInFlight = this.inFlight;
    if (this.oldInFlight === 0) return undefined;
    return new Promise((resolve) => this.resetWaiters.push(resolve));
  }

  /**
   * VIRTIO_F_RING_RESET: stop using queue `index` at once (no more pops, no used element of its
   * requests: their completions are dropped, as after a device reset). With backend operations of the
   * queue outstanding, returns a promise that settles once they all have: they still write guest
   * memory until then. The other queues are not touched.
   */
  resetQueue(index: number): ResetCompletion {
    const life = this.lives[index];
    if (life === undefined) return undefined;
    life.ended = true;
    this.lives[index] = newLife();
    this.queues[index] = null;
    this.stalled.delete(index);
    this.interruptPending.delete(index);
    if (life.inFlight === 0) return undefined;
    return new Promise((resolve) => (life.settled = resolve));
  }

  /** VIRTIO_F_RING_RESET: queue `queue.index` is back, on a new ring; the driver notifies when it adds requests. */
  enableQueue(queue: DeviceQueue): void {
    if (queue.index < this.queues.length) this.queues[queue.index] = queue;
  }

  /** Requests handed to an asynchronous backend and not yet settled, from before resets included. */
  get requestsInFlight(): number {
    return this.inFlight;
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
      writeback: flag(!this.writethrough),
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
      this.config.set8(VIRTIO_BLK_CONFIG_WRITEBACK, writeback ? 1 : 0);
      this.broken = broken;
    };
  }

  /**
   * The cache mode after reset (5.2.5 allows either). A legacy driver may read it before the device
   * knows any of its features (5.2.5.2), so it cannot depend on them.
   */
  private resetWriteback(): void {
    this.config.set8(VIRTIO_BLK_CONFIG_WRITEBACK, this.defaultWriteback ? 1 : 0);
  }

  /**
   * The cache mode for the negotiated features. 5.2.5.1: with CONFIG_WCE but not FLUSH, writeback
   * MUST start at 0; without CONFIG_WCE the cache is writeback exactly when FLUSH was negotiated
   * (5.2.6.2, case 1 makes writes stable otherwise).
   */
  private negotiateWriteback(): void {
    const flush = hasFeature(this.features, VIRTIO_BLK_F_FLUSH);
    const wce = hasFeature(this.features, VIRTIO_BLK_F_CONFIG_WCE);
    this.config.set8(VIRTIO_BLK_CONFIG_WRITEBACK, flush && (this.defaultWriteback || !wce) ? 1 : 0);
  }

  /** Writes must be stable when their completion is reported (writethrough cache). */
  private get writethrough(): boolean {
    return this.config.read(VIRTIO_BLK_CONFIG_WRITEBACK, 1) === 0;
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
        if (this.inFlight >= this.maxInFlight || this.broken) break;
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
      const room = Math.min(this.burst.length, this.maxInFlight - this.inFlight);
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
  private admit(queue: DeviceQueue, chain: DescriptorChain, slot: BurstSlot): unknown {
    const memory = this.host!.memory;
    slot.head = chain.head;
    slot.usedLen = chain.writableBytes;
    slot.request = undefined;
    let request: BlkRequest;
    try {
      const usual = usualRequest(chain, this.limits, memory, slot.storage);
      if (usual !== undefined) {
        // Its status byte is its last buffer, alone.
        slot.status = chain.addr(2);
        request = usual;
      } else {
        const status = statusAddress(chain);
        if (status === undefined)
          return new RequestShapeError(`virtio-blk request on queue ${queue.index}: no device-writable status byte`);
        slot.status = status;
        request = parseBlkRequest(chain, this.limits, memory, slot.storage);
      }
    } catch (err) {
      if (!(err instanceof BlkRequestError)) return err;
      const broken =
        err.fault === 'past-capacity' ? R.blkWithinCapacity : err.fault === 'data-not-sector-multiple' ? R.blkSectorMultiple : undefined;
      if (broken !== undefined) this.host!.audit?.(broken, `queue ${queue.index} chain ${chain.head}: ${err.message}`);
      // Zeroed with the refusal, so that used len stays truthful: the bytes before the status byte.
      slot.dataIn = chainSpans(this.host!.memory, chain, chain.readable, chain.count, 0, chain.writableBytes - 1);
      slot.answer = err.status;
      return undefined;
    }
    slot.dataIn = request.type === VIRTIO_BLK_T_IN || request.type === VIRTIO_BLK_T_GET_ID ? request.data : undefined;
    const refused = this.refusal(request);
    if (refused !== undefined) {
      slot.answer = refused;
      return undefined;
    }
    slot.request = request;
    return undefined;
  }

  /** Execute the request `slot` holds, if any: its answer, or ASYNC once an asynchronous backend has it. */
  private run(queue: DeviceQueue, slot: BurstSlot): void {
    const request = slot.request;
    if (request === undefined) return;
    let result: BlockResult;
    try {
      result = this.execute(request);
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
    const life = this.lives[queue.index]!;
    const pending: Pending = {
      generation: this.generation,
      life,
      queue,
      head: slot.head,
      status: slot.status,
      usedLen: slot.usedLen,
      dataIn: slot.dataIn,
    };
    this.inFlight++;
    life.inFlight++;
    result.then(
      () => this.settle(pending, VIRTIO_BLK_S_OK),
      () => this.settle(pending, VIRTIO_BLK_S_IOERR),
    );
  }

  /** The status for a well-formed request the device will not carry out, or undefined to go ahead. */
  private refusal(request: BlkRequest): number | undefined {
    switch (request.type) {
      case VIRTIO_BLK_T_OUT:
        // 5.2.6.2: IOERR for a write when RO is offered, and no data written.
        return this.readOnly ? VIRTIO_BLK_S_IOERR : undefined;
      case VIRTIO_BLK_T_DISCARD:
        if (!hasFeature(this.features, VIRTIO_BLK_F_DISCARD)) return VIRTIO_BLK_S_UNSUPP;
        return this.readOnly ? VIRTIO_BLK_S_IOERR : undefined;
      case VIRTIO_BLK_T_WRITE_ZEROES:
        if (!hasFeature(this.features, VIRTIO_BLK_F_WRITE_ZEROES)) return VIRTIO_BLK_S_UNSUPP;
        return this.readOnly ? VIRTIO_BLK_S_IOERR : undefined;
      case 'unsupported':
        return VIRTIO_BLK_S_UNSUPP;
      default:
        return undefined;
    }
  }

  private execute(request: BlkRequest): BlockResult {
    const backend = this.backend;
    switch (request.type) {
      case VIRTIO_BLK_T_IN:
        return request.data.length === 0 ? undefined : backend.read(request.offset, request.data);
      case VIRTIO_BLK_T_OUT:
        return request.data.length === 0 ? undefined : this.stable(backend.write(request.offset, request.data));
      case VIRTIO_BLK_T_FLUSH:
        return backend.flush();
      case VIRTIO_BLK_T_GET_ID:
        fill(request.data, this.serial);
        return undefined;
      case VIRTIO_BLK_T_DISCARD:
        return this.stable(eachRange(request.ranges, (r) => backend.discard!(r.offset, r.length)));
      case VIRTIO_BLK_T_WRITE_ZEROES:
        return this.stable(eachRange(request.ranges, (r) => backend.writeZeroes!(r.offset, r.length)));
      case 'unsupported':
        return undefined; // refused before execution
    }
  }

  /** In writethrough mode a write completes only once flushed. */
  private stable(result: BlockResult): BlockResult {
    return this.writethrough ? after(result, () => this.backend.flush()) : result;
  }

  /**
   * An asynchronous request settled: its slot is free (a reset waiting for the last one completes);
   * answer it unless a reset of the device or of its queue came in between, or the device set
   * DEVICE_NEEDS_RESET since (2.1.2: no used buffers after that).
   */
  private settle(p: Pending, status: number): void {
    this.inFlight--;
    if (p.generation !== this.generation && --this.oldInFlight === 0) {
      const waiters = this.resetWaiters;
      this.resetWaiters = [];
      for (const resolve of waiters) resolve();
    }
    if (--p.life.inFlight === 0 && p.life.ended) p.life.settled?.();
    if (this.broken) return;
    if (p.generation === this.generation && !p.life.ended) {
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

/** The 20-byte NUL-padded device ID string (5.2.6). */
function encodeSerial(serial: string): Uint8Array {
  const bytes = new Uint8Array(VIRTIO_BLK_ID_BYTES);
  if (serial.length > VIRTIO_BLK_ID_BYTES || !/^[\x20-\x7e]*$/.test(serial)) {
    throw new UsageError(`serial must be printable ASCII of at most ${VIRTIO_BLK_ID_BYTES} bytes`);
  }
  for (let i = 0; i < serial.length; i++) bytes[i] = serial.charCodeAt(i);
  return bytes;
}

/** Copy `src` across the guest buffers of `io`, then zero what is left of them. */
function fill(io: GuestIo, src: Uint8Array): void {
  let at = 0;
  for (const { addr, len } of io.spans) {
    const n = Math.min(len, src.length - at);
    io.memory.write(addr, src.subarray(at, at + n));
    io.memory.view(addr + n, len - n).fill(0);
    at += n;
  }
}

/** Run `next` after `result` (synchronously when it is synchronous). */
function after(result: BlockResult, next: () => BlockResult): BlockResult {
  return result === undefined ? next() : result.then(next);
}

/** Apply `op` to each range in order, staying synchronous while the backend is. */
function eachRange(ranges: readonly BlkRange[], op: (r: BlkRange) => BlockResult): BlockResult {
  let result: BlockResult = undefined;
  for (const r of ranges) result = after(result, () => op(r));
  return result;
}

function checkInt(name: string, value: number, min: number, max: number): void {
  if (!Number.isInteger(value) || value < min || value > max)
    throw new UsageError(`${name} must be an integer in [${min}, ${max}], got ${value}`);
}
