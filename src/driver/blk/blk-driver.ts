/**
 * The virtio-blk driver (spec 5.2) on the driver core. Requests are batched: {@link BlkDriver.batch}
 * submits many requests, notifies once, and completes them as the device returns them, in any order,
 * keeping the ring full while more wait. Data buffers of a batch are the caller's DMA buffers (no
 * copy); read/write/flush/getId are conveniences over it with a bounce buffer.
 */

import { DeviceFaultError, UsageError } from '../../errors.js';
import { isSafeInteger } from '../../memory/guest-memory.js';
import { featureSet, hasFeature, VIRTIO_F_EVENT_IDX, VIRTIO_F_IN_ORDER, VIRTIO_F_RING_PACKED } from '../../spec/features.js';
import { VIRTIO_ID_BLOCK } from '../../spec/ids.js';
import {
  VIRTIO_BLK_CONFIG_ALIGNMENT_OFFSET,
  VIRTIO_BLK_CONFIG_BLK_SIZE,
  VIRTIO_BLK_CONFIG_CAPACITY,
  VIRTIO_BLK_CONFIG_MAX_DISCARD_SECTORS,
  VIRTIO_BLK_CONFIG_MAX_DISCARD_SEG,
  VIRTIO_BLK_CONFIG_MAX_WRITE_ZEROES_SECTORS,
  VIRTIO_BLK_CONFIG_MAX_WRITE_ZEROES_SEG,
  VIRTIO_BLK_CONFIG_MIN_IO_SIZE,
  VIRTIO_BLK_CONFIG_NUM_QUEUES,
  VIRTIO_BLK_CONFIG_OPT_IO_SIZE,
  VIRTIO_BLK_CONFIG_PHYSICAL_BLOCK_EXP,
  VIRTIO_BLK_CONFIG_SEG_MAX,
  VIRTIO_BLK_CONFIG_SIZE_MAX,
  VIRTIO_BLK_CONFIG_WRITEBACK,
  VIRTIO_BLK_F_BLK_SIZE,
  VIRTIO_BLK_F_CONFIG_WCE,
  VIRTIO_BLK_F_DISCARD,
  VIRTIO_BLK_F_ZONED,
  VIRTIO_BLK_CONFIG_ZONED_MODEL,
  VIRTIO_BLK_Z_HM,
  VIRTIO_BLK_F_FLUSH,
  VIRTIO_BLK_F_MQ,
  VIRTIO_BLK_F_RO,
  VIRTIO_BLK_F_SEG_MAX,
  VIRTIO_BLK_F_SIZE_MAX,
  VIRTIO_BLK_F_TOPOLOGY,
  VIRTIO_BLK_F_WRITE_ZEROES,
  VIRTIO_BLK_ID_BYTES,
  VIRTIO_BLK_SECTOR_SIZE,
} from '../../spec/blk.js';
import type { Bdf, PciBus } from '../../bus/pci-bus.js';
import type { DmaBuffer, DmaMemory } from '../../memory/dma.js';
import type { DmaSpan, DriverQueue } from '../driver-queue.js';
import { VirtioDriver, type VirtioDriverOptions } from '../virtio-driver.js';
import { BlkRequestQueue, type Batch } from './request-queue.js';
import type { BlkConfig, BlkOp } from './types.js';

export interface BlkDriverOptions extends VirtioDriverOptions {
  /** Queue size (one the negotiated ring format allows: a power of two for the split ring; default the device's maximum). */
  readonly queueSize?: number;
  /** Request queues to use when the device offers VIRTIO_BLK_F_MQ (default 1). */
  readonly numQueues?: number;
}

export { BlkStatusError, type BlkConfig, type BlkOp } from './types.js';

/** Device-specific features this driver always asks for (5.2.3); MQ is asked for when several queues are wanted. */
const BLK_DRIVER_FEATURES = featureSet(
  VIRTIO_BLK_F_SIZE_MAX,
  VIRTIO_BLK_F_SEG_MAX,
  VIRTIO_BLK_F_RO,
  VIRTIO_BLK_F_BLK_SIZE,
  VIRTIO_BLK_F_FLUSH,
  VIRTIO_BLK_F_TOPOLOGY,
  VIRTIO_BLK_F_CONFIG_WCE,
  VIRTIO_BLK_F_DISCARD,
  VIRTIO_BLK_F_WRITE_ZEROES,
  VIRTIO_F_EVENT_IDX,
  VIRTIO_F_RING_PACKED,
  VIRTIO_F_IN_ORDER,
);

/** A virtio-blk disk driven over a {@link PciBus}: open it with {@link BlkDriver.open}. */
export class BlkDriver {
  /** The device's configuration as read at start-up. */
  readonly config: BlkConfig;

  private readonly dma: DmaMemory;
  private readonly queues: readonly BlkRequestQueue[];
  private fault: Error | undefined;
  /** Queue the next single-queue batch goes to (round robin). */
  private nextQueue = 0;

  private constructor(
    /** The driver core this runs on (features, probe result, status). */
    readonly virtio: VirtioDriver,
    queues: readonly DriverQueue<number>[],
    config: BlkConfig,
  ) {
    this.config = config;
    this.dma = virtio.bus.dma;
    const made: BlkRequestQueue[] = [];
    for (const q of queues) {
      try {
        made.push(new BlkRequestQueue(q, this.dma, config.sizeMax, (err) => this.failAll(err)));
      } catch (cause) {
        // All queues' slots or none: open's clean-up frees the rings, these are the driver's own.
        for (const m of made) m.destroy();
        throw new DeviceFaultError(
          'ERR_DEVICE_QUEUE',
          `request queue ${q.index}: request slots for queue size ${q.size} do not fit in DMA memory`,
          { cause },
        );
      }
    }
    this.queues = made;
  }

  /**
   * Probe the virtio-blk function `fn`, negotiate, read its configuration, set up its request
   * queues (several with VIRTIO_BLK_F_MQ when `numQueues` asks for them) and set DRIVER_OK.
   */
  static async open(bus: PciBus, fn: Bdf, options: BlkDriverOptions = {}): Promise<BlkDriver> {
    const wantQueues = options.numQueues ?? 1;
    if (!Number.isInteger(wantQueues) || wantQueues < 1) throw new UsageError(`numQueues ${wantQueues} must be a positive integer`);
    const virtio = await VirtioDriver.open(bus, fn, { ...options, deviceType: VIRTIO_ID_BLOCK });
    try {
      let wanted = wantQueues > 1 ? BLK_DRIVER_FEATURES | featureSet(VIRTIO_BLK_F_MQ) : BLK_DRIVER_FEATURES;
      // 5.2.5.1: VIRTIO_BLK_F_ZONED offered by a host-managed device: DISCARD MUST NOT be accepted
      // (model is readable before FEATURES_OK since ZONED is offered, 2.5.2). This driver never
      // accepts ZONED, so such a device then refuses FEATURES_OK (5.2.5.2).
      if (await hostManagedZoned(virtio)) wanted &= ~featureSet(VIRTIO_BLK_F_DISCARD);
      const features = await virtio.negotiate(wanted);
      const config = await readBlkConfig(virtio, features);
      // 5.2.2: N = num_queues with MQ, else 1.
      const n = hasFeature(features, VIRTIO_BLK_F_MQ) ? Math.min(wantQueues, await virtio.readConfig(VIRTIO_BLK_CONFIG_NUM_QUEUES, 2)) : 1;
      if (n < 1) throw new DeviceFaultError('ERR_DEVICE_CONFIG', 'num_queues is 0');
      const queues: DriverQueue<number>[] = [];
      for (let i = 0; i < n; i++)
        queues.push(await virtio.setupQueue<number>(i, options.queueSize === undefined ? {} : { size: options.queueSize }));
      await virtio.driverOk();
      return new BlkDriver(virtio, queues, config);
    } catch (err) {
      await virtio.close().catch(() => undefined);
      throw err;
    }
  }

  /** Disk size in 512-byte sectors. */
  get capacity(): number {
    return this.config.capacity;
  }

  /** Request queues in use (more than one with VIRTIO_BLK_F_MQ). */
  get numQueues(): number {
    return this.queues.length;
  }

  /** Most requests in flight at once on each queue. */
  get maxInFlight(): number {
    return this.queues[0]!.maxInFlight;
  }

  /**
   * Run every request of `ops`, many in flight and one notify per submission round, and resolve when
   * all are done; requests of one batch are unordered (5.2.6: the device may complete them in any
   * order). With several queues the batch is cut into one contiguous share per queue. Rejects with
   * {@link BlkStatusError} if any request failed (after all have completed).
   */
  batch(ops: readonly BlkOp[]): Promise<void> {
    if (this.fault) return Promise.reject(this.fault);
    for (const op of ops) this.check(op);
    if (ops.length === 0) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const batch: Batch = { left: ops.length, error: undefined, resolve, reject };
      const n = this.queues.length;
      if (n === 1 || ops.length === 1) {
        // A copy: the queue keeps the list until every request is in the ring, the caller may reuse it.
        this.queues[this.nextQueue]!.enqueue(ops.slice(), batch);
        this.nextQueue = (this.nextQueue + 1) % n;
        return;
      }
      const share = Math.ceil(ops.length / n);
      for (let q = 0; q < n && q * share < ops.length; q++) this.queues[q]!.enqueue(ops.slice(q * share, (q + 1) * share), batch);
    });
  }

  /** Read `count` sectors at `sector`. */
  async read(sector: number, count: number): Promise<Uint8Array> {
    return this.withBounce(count * VIRTIO_BLK_SECTOR_SIZE, async (buf) => {
      await this.batch([{ type: 'read', sector, buffer: span(buf) }]);
      return buf.bytes.slice();
    });
  }

  /** Write `data` (a whole number of sectors) at `sector`. */
  async write(sector: number, data: Uint8Array): Promise<void> {
    await this.withBounce(data.byteLength, async (buf) => {
      buf.bytes.set(data);
      await this.batch([{ type: 'write', sector, buffer: span(buf) }]);
    });
  }

  /** Make every completed write stable (VIRTIO_BLK_T_FLUSH). */
  flush(): Promise<void> {
    return this.batch([{ type: 'flush' }]);
  }

  /** Let the device deallocate `count` sectors at `sector` (VIRTIO_BLK_T_DISCARD). */
  discard(sector: number, count: number): Promise<void> {
    return this.batch([{ type: 'discard', sector, count }]);
  }

  /** Make `count` sectors at `sector` read back as zeroes (VIRTIO_BLK_T_WRITE_ZEROES). */
  writeZeroes(sector: number, count: number, unmap = false): Promise<void> {
    return this.batch([{ type: 'writeZeroes', sector, count, unmap }]);
  }

  /** The device ID string (VIRTIO_BLK_T_GET_ID), without its NUL padding. */
  async getId(): Promise<string> {
    return this.withBounce(VIRTIO_BLK_ID_BYTES, async (buf) => {
      await this.batch([{ type: 'getId', buffer: span(buf) }]);
      const end = buf.bytes.indexOf(0);
      return String.fromCharCode(...buf.bytes.subarray(0, end < 0 ? VIRTIO_BLK_ID_BYTES : end));
    });
  }

  /** Whether the device's cache is writeback (`writeback` in config, CONFIG_WCE), or FLUSH is needed for stability. */
  async writeback(): Promise<boolean> {
    if (!hasFeature(this.virtio.features, VIRTIO_BLK_F_CONFIG_WCE)) return hasFeature(this.virtio.features, VIRTIO_BLK_F_FLUSH);
    return (await this.virtio.readConfig(VIRTIO_BLK_CONFIG_WRITEBACK, 1)) === 1;
  }

  /** Switch the device cache between writeback (true) and writethrough (false); needs CONFIG_WCE. */
  async setWriteback(enabled: boolean): Promise<void> {
    if (!hasFeature(this.virtio.features, VIRTIO_BLK_F_CONFIG_WCE)) throw new UsageError('the device does not offer CONFIG_WCE');
    await this.virtio.writeConfig(VIRTIO_BLK_CONFIG_WRITEBACK, 1, enabled ? 1 : 0);
  }

  /** Reset the device and release the driver's DMA memory. Requests in flight fail. */
  async close(): Promise<void> {
    this.failAll(new UsageError('virtio-blk driver closed'));
    await this.virtio.close();
    for (const q of this.queues) q.destroy();
  }

  /** Stop: every request waiting or in flight on any queue fails with the first error. */
  private failAll(error: Error): void {
    this.fault ??= error;
    for (const q of this.queues) q.failAll(this.fault);
  }

  /** Refuse requests the spec forbids the driver to send (5.2.6.1) before they reach the ring. */
  private check(op: BlkOp): void {
    const c = this.config;
    switch (op.type) {
      case 'read':
      case 'write': {
        const len = op.buffer.len;
        if (len % VIRTIO_BLK_SECTOR_SIZE !== 0) throw new UsageError(`${op.type}: ${len} bytes is not a whole number of sectors`);
        checkRange(op.type, op.sector, len / VIRTIO_BLK_SECTOR_SIZE, c.capacity);
        if (c.sizeMax !== undefined && c.segMax !== undefined && len > c.sizeMax * c.segMax) {
          throw new UsageError(`${op.type}: ${len} bytes exceed seg_max ${c.segMax} x size_max ${c.sizeMax}`);
        }
        return;
      }
      case 'discard':
      case 'writeZeroes': {
        const limits = op.type === 'discard' ? c.discard : c.writeZeroes;
        if (!limits) throw new UsageError(`${op.type}: the device does not offer it`);
        checkRange(op.type, op.sector, op.count, c.capacity);
        if (op.count > limits.maxSectors) throw new UsageError(`${op.type}: ${op.count} sectors exceed ${limits.maxSectors}`);
        return;
      }
      case 'getId':
        if (op.buffer.len < VIRTIO_BLK_ID_BYTES)
          throw new UsageError(`getId: buffer of ${op.buffer.len} bytes, ${VIRTIO_BLK_ID_BYTES} needed`);
        return;
      case 'flush':
        return;
    }
  }

  private async withBounce<R>(len: number, use: (buf: DmaBuffer) => Promise<R>): Promise<R> {
    if (!Number.isSafeInteger(len) || len <= 0) throw new UsageError(`buffer length ${len} must be positive`);
    const buf = this.dma.alloc(len, 16);
    try {
      return await use(buf);
    } finally {
      this.dma.free(buf);
    }
  }
}

function span(buf: DmaBuffer): DmaSpan {
  return { addr: buf.addr, len: buf.bytes.byteLength };
}

function checkRange(what: string, sector: number, count: number, capacity: number): void {
  if (!isSafeInteger(sector) || !isSafeInteger(count) || sector < 0 || count < 0 || sector > capacity || count > capacity - sector) {
    throw new UsageError(`${what}: sectors [${sector}, +${count}) outside the disk of ${capacity} sectors`);
  }
}

/** Whether the device offers VIRTIO_BLK_F_ZONED with zoned.model VIRTIO_BLK_Z_HM (5.2.4). */
async function hostManagedZoned(virtio: VirtioDriver): Promise<boolean> {
  if (!hasFeature(virtio.deviceFeatures, VIRTIO_BLK_F_ZONED)) return false;
  return (await virtio.readConfig(VIRTIO_BLK_CONFIG_ZONED_MODEL, 1)) === VIRTIO_BLK_Z_HM;
}

/** Read struct virtio_blk_config within one config_generation, each field only if its feature was negotiated. */
async function readBlkConfig(virtio: VirtioDriver, features: bigint): Promise<BlkConfig> {
  const has = (bit: number): boolean => hasFeature(features, bit);
  const capacity = Number(await virtio.readConfig64(VIRTIO_BLK_CONFIG_CAPACITY));
  if (!Number.isSafeInteger(capacity)) throw new DeviceFaultError('ERR_DEVICE_CONFIG', `capacity ${capacity} sectors is beyond 2^53`);
  return virtio.readConfigStable(async () => {
    const r32 = (offset: number): Promise<number> => virtio.readConfig(offset, 4);
    const config: {
      -readonly [K in keyof BlkConfig]: BlkConfig[K];
    } = { capacity, readOnly: has(VIRTIO_BLK_F_RO) };
    if (has(VIRTIO_BLK_F_SIZE_MAX)) config.sizeMax = await r32(VIRTIO_BLK_CONFIG_SIZE_MAX);
    if (has(VIRTIO_BLK_F_SEG_MAX)) config.segMax = await r32(VIRTIO_BLK_CONFIG_SEG_MAX);
    if (has(VIRTIO_BLK_F_BLK_SIZE)) config.blkSize = await r32(VIRTIO_BLK_CONFIG_BLK_SIZE);
    if (has(VIRTIO_BLK_F_TOPOLOGY)) {
      config.topology = {
        physicalBlockExp: await virtio.readConfig(VIRTIO_BLK_CONFIG_PHYSICAL_BLOCK_EXP, 1),
        alignmentOffset: await virtio.readConfig(VIRTIO_BLK_CONFIG_ALIGNMENT_OFFSET, 1),
        minIoSize: await virtio.readConfig(VIRTIO_BLK_CONFIG_MIN_IO_SIZE, 2),
        optIoSize: await r32(VIRTIO_BLK_CONFIG_OPT_IO_SIZE),
      };
    }
    if (has(VIRTIO_BLK_F_DISCARD))
      config.discard = {
        maxSectors: await r32(VIRTIO_BLK_CONFIG_MAX_DISCARD_SECTORS),
        maxSeg: await r32(VIRTIO_BLK_CONFIG_MAX_DISCARD_SEG),
      };
    if (has(VIRTIO_BLK_F_WRITE_ZEROES)) {
      config.writeZeroes = {
        maxSectors: await r32(VIRTIO_BLK_CONFIG_MAX_WRITE_ZEROES_SECTORS),
        maxSeg: await r32(VIRTIO_BLK_CONFIG_MAX_WRITE_ZEROES_SEG),
      };
    }
    if (config.sizeMax === 0) throw new DeviceFaultError('ERR_DEVICE_CONFIG', 'size_max is 0');
    if (config.segMax === 0) throw new DeviceFaultError('ERR_DEVICE_CONFIG', 'seg_max is 0');
    return config;
  });
}
