/**
 * The virtio-blk driver (spec 5.2) on the driver core. Requests are batched: {@link BlkDriver.batch}
 * submits many requests, notifies once, and completes them as the device returns them, in any order,
 * keeping the ring full while more wait. Data buffers of a batch are the caller's DMA buffers (no
 * copy); read/write/flush/getId are conveniences over it with a bounce buffer.
 */

import { DeviceFaultError, UsageError } from '../../errors.js';
import { featureSet, hasFeature, VIRTIO_F_EVENT_IDX } from '../../spec/features.js';
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
  VIRTIO_BLK_CONFIG_OPT_IO_SIZE,
  VIRTIO_BLK_CONFIG_PHYSICAL_BLOCK_EXP,
  VIRTIO_BLK_CONFIG_SEG_MAX,
  VIRTIO_BLK_CONFIG_SIZE_MAX,
  VIRTIO_BLK_CONFIG_WRITEBACK,
  VIRTIO_BLK_DWZ_FLAGS,
  VIRTIO_BLK_DWZ_NUM_SECTORS,
  VIRTIO_BLK_DWZ_SECTOR,
  VIRTIO_BLK_DWZ_SIZE,
  VIRTIO_BLK_F_BLK_SIZE,
  VIRTIO_BLK_F_CONFIG_WCE,
  VIRTIO_BLK_F_DISCARD,
  VIRTIO_BLK_F_FLUSH,
  VIRTIO_BLK_F_RO,
  VIRTIO_BLK_F_SEG_MAX,
  VIRTIO_BLK_F_SIZE_MAX,
  VIRTIO_BLK_F_TOPOLOGY,
  VIRTIO_BLK_F_WRITE_ZEROES,
  VIRTIO_BLK_ID_BYTES,
  VIRTIO_BLK_REQ_HDR_SIZE,
  VIRTIO_BLK_REQ_RESERVED,
  VIRTIO_BLK_REQ_SECTOR,
  VIRTIO_BLK_REQ_TYPE,
  VIRTIO_BLK_S_OK,
  VIRTIO_BLK_SECTOR_SIZE,
  VIRTIO_BLK_T_DISCARD,
  VIRTIO_BLK_T_FLUSH,
  VIRTIO_BLK_T_GET_ID,
  VIRTIO_BLK_T_IN,
  VIRTIO_BLK_T_OUT,
  VIRTIO_BLK_T_WRITE_ZEROES,
  VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP,
} from '../../spec/blk.js';
import { splitU64 } from '../../memory/guest-memory.js';
import type { Bdf, DmaBuffer, PciBus } from '../pci-bus.js';
import type { DmaSpan, DriverQueue } from '../driver-queue.js';
import { VirtioDriver, type VirtioDriverOptions } from '../virtio-driver.js';

/** A request the device answered with a status other than VIRTIO_BLK_S_OK. */
export class BlkStatusError extends DeviceFaultError {
  constructor(
    /** The status byte: VIRTIO_BLK_S_IOERR, VIRTIO_BLK_S_UNSUPP, ... */
    readonly status: number,
    readonly op: BlkOp['type'],
  ) {
    super('ERR_DEVICE_STATUS', `virtio-blk ${op} failed with status ${status} (${STATUS_NAMES[status] ?? 'unknown'})`);
  }
}

const STATUS_NAMES: Record<number, string> = { 0: 'OK', 1: 'IOERR', 2: 'UNSUPP' };

/** One request of a batch. Sectors are 512-byte units; data buffers lie in the bus's DMA memory. */
export type BlkOp =
  | { readonly type: 'read'; readonly sector: number; readonly buffer: DmaSpan }
  | { readonly type: 'write'; readonly sector: number; readonly buffer: DmaSpan }
  | { readonly type: 'flush' }
  | { readonly type: 'getId'; readonly buffer: DmaSpan }
  | { readonly type: 'discard'; readonly sector: number; readonly count: number }
  | { readonly type: 'writeZeroes'; readonly sector: number; readonly count: number; readonly unmap?: boolean };

/** struct virtio_blk_config as the driver read it; optional fields are absent when their feature is. */
export interface BlkConfig {
  /** Disk size in 512-byte sectors. */
  readonly capacity: number;
  readonly readOnly: boolean;
  readonly sizeMax?: number;
  readonly segMax?: number;
  readonly blkSize?: number;
  readonly topology?: { readonly physicalBlockExp: number; readonly alignmentOffset: number; readonly minIoSize: number; readonly optIoSize: number };
  readonly discard?: { readonly maxSectors: number; readonly maxSeg: number };
  readonly writeZeroes?: { readonly maxSectors: number; readonly maxSeg: number };
}

export interface BlkDriverOptions extends VirtioDriverOptions {
  /** Queue size (power of two, default the device's maximum). */
  readonly queueSize?: number;
}

/** Device-specific features this driver understands (5.2.3); MQ is not used (one request queue). */
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
);

/**
 * Per-request DMA a slot owns: header (16), one discard/write-zeroes segment (16), a GET_ID buffer
 * (20) and the status byte, 64 bytes in all.
 */
const SLOT_SIZE = 64;
const SLOT_HDR = 0;
const SLOT_SEG = 16;
const SLOT_STATUS = 52;

/** A batch in progress: how many of its requests are left, and the first failure. */
interface Batch {
  left: number;
  error: Error | undefined;
  resolve: () => void;
  reject: (error: Error) => void;
}

/** A request waiting for a slot and descriptors. */
interface Queued {
  readonly op: BlkOp;
  readonly batch: Batch;
}

export class BlkDriver {
  /** The device's configuration as read at start-up. */
  readonly config: BlkConfig;
  /** Most requests in flight at once (one slot each). */
  readonly maxInFlight: number;

  private readonly dma: PciBus['dma'];
  private readonly slots: DmaBuffer;
  private readonly slotView: DataView;
  private readonly freeSlots: number[];
  private readonly slotOps: (Queued | undefined)[];
  private readonly backlog: Queued[] = [];
  private backlogHead = 0;
  private inFlight = 0;
  private pumping = false;
  private fault: Error | undefined;
  /** Submission rounds run one after another, so that one round's notify never precedes another's DMA flush. */
  private submitting: Promise<void> = Promise.resolve();

  private constructor(
    /** The driver core this runs on (features, probe result, status). */
    readonly virtio: VirtioDriver,
    private readonly queue: DriverQueue<number>,
    config: BlkConfig,
  ) {
    this.config = config;
    this.dma = virtio.bus.dma;
    // Without indirect descriptors a request takes at least two (header and status).
    this.maxInFlight = Math.max(1, Math.floor(queue.size / 2));
    this.slots = this.dma.alloc(this.maxInFlight * SLOT_SIZE, 16);
    this.slotView = new DataView(this.slots.bytes.buffer, this.slots.bytes.byteOffset, this.slots.bytes.byteLength);
    this.freeSlots = Array.from({ length: this.maxInFlight }, (_, i) => this.maxInFlight - 1 - i);
    this.slotOps = new Array<Queued | undefined>(this.maxInFlight).fill(undefined);
  }

  /**
   * Probe the virtio-blk function `fn`, negotiate, read its configuration, set up request queue 0
   * and set DRIVER_OK.
   */
  static async open(bus: PciBus, fn: Bdf, options: BlkDriverOptions = {}): Promise<BlkDriver> {
    const virtio = await VirtioDriver.open(bus, fn, { ...options, deviceType: VIRTIO_ID_BLOCK });
    try {
      const features = await virtio.negotiate(BLK_DRIVER_FEATURES);
      const config = await readBlkConfig(virtio, features);
      const queue = await virtio.setupQueue<number>(0, options.queueSize === undefined ? {} : { size: options.queueSize });
      await virtio.driverOk();
      return new BlkDriver(virtio, queue, config);
    } catch (err) {
      await virtio.close().catch(() => undefined);
      throw err;
    }
  }

  /** Disk size in 512-byte sectors. */
  get capacity(): number {
    return this.config.capacity;
  }

  /**
   * Run every request of `ops`, many in flight and one notify per submission round, and resolve when
   * all are done; requests of one batch are unordered (5.2.6: the device may complete them in any
   * order). Rejects with {@link BlkStatusError} if any request failed (after all have completed).
   */
  batch(ops: readonly BlkOp[]): Promise<void> {
    if (this.fault) return Promise.reject(this.fault);
    for (const op of ops) this.check(op);
    if (ops.length === 0) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const batch: Batch = { left: ops.length, error: undefined, resolve, reject };
      for (const op of ops) this.backlog.push({ op, batch });
      void this.submitBacklog().then(() => this.ensurePump(), (err: unknown) => this.failAll(err));
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
    this.dma.free(this.slots);
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
        if (op.buffer.len < VIRTIO_BLK_ID_BYTES) throw new UsageError(`getId: buffer of ${op.buffer.len} bytes, ${VIRTIO_BLK_ID_BYTES} needed`);
        return;
      case 'flush':
        return;
    }
  }

  private submitBacklog(): Promise<void> {
    this.submitting = this.submitting.then(() => this.submitRound());
    return this.submitting;
  }

  /** Put waiting requests in the ring while slots and descriptors last, then notify once. */
  private async submitRound(): Promise<void> {
    let submitted = 0;
    while (this.backlogHead < this.backlog.length && this.freeSlots.length > 0) {
      const queued = this.backlog[this.backlogHead]!;
      const slot = this.freeSlots[this.freeSlots.length - 1]!;
      const { out, inn } = this.layout(queued.op, slot);
      if (this.queue.numFree < out.length + inn.length) break;
      this.freeSlots.pop();
      this.backlogHead++;
      this.slotOps[slot] = queued;
      this.queue.submit(out, inn, slot);
      this.inFlight++;
      submitted++;
    }
    if (this.backlogHead === this.backlog.length) {
      this.backlog.length = 0;
      this.backlogHead = 0;
    }
    // The ring flushes device-readable buffers before it publishes them, and refreshes the
    // device-writable ones it reaps, so DMA through a remote bus needs nothing more here.
    if (submitted > 0) await this.queue.kick();
  }

  /** Write the request header (and segment) into the slot and return the chain's buffers. */
  private layout(op: BlkOp, slot: number): { out: DmaSpan[]; inn: DmaSpan[] } {
    const base = slot * SLOT_SIZE;
    const addr = this.slots.addr + base;
    const hdr: DmaSpan = { addr: addr + SLOT_HDR, len: VIRTIO_BLK_REQ_HDR_SIZE };
    const status: DmaSpan = { addr: addr + SLOT_STATUS, len: 1 };
    const v = this.slotView;
    v.setUint8(base + SLOT_STATUS, 0xff); // not a status the device sends: a missing answer shows
    switch (op.type) {
      case 'read':
        this.setHeader(base, VIRTIO_BLK_T_IN, op.sector);
        return { out: [hdr], inn: [...this.segments(op.buffer), status] };
      case 'write':
        this.setHeader(base, VIRTIO_BLK_T_OUT, op.sector);
        return { out: [hdr, ...this.segments(op.buffer)], inn: [status] };
      case 'flush':
        this.setHeader(base, VIRTIO_BLK_T_FLUSH, 0);
        return { out: [hdr], inn: [status] };
      case 'getId':
        this.setHeader(base, VIRTIO_BLK_T_GET_ID, 0);
        return { out: [hdr], inn: [{ addr: op.buffer.addr, len: VIRTIO_BLK_ID_BYTES }, status] };
      case 'discard':
      case 'writeZeroes': {
        this.setHeader(base, op.type === 'discard' ? VIRTIO_BLK_T_DISCARD : VIRTIO_BLK_T_WRITE_ZEROES, 0);
        const [lo, hi] = splitU64(op.sector);
        const seg = base + SLOT_SEG;
        v.setUint32(seg + VIRTIO_BLK_DWZ_SECTOR, lo, true);
        v.setUint32(seg + VIRTIO_BLK_DWZ_SECTOR + 4, hi, true);
        v.setUint32(seg + VIRTIO_BLK_DWZ_NUM_SECTORS, op.count, true);
        v.setUint32(seg + VIRTIO_BLK_DWZ_FLAGS, op.type === 'writeZeroes' && op.unmap ? VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP : 0, true);
        return { out: [hdr, { addr: addr + SLOT_SEG, len: VIRTIO_BLK_DWZ_SIZE }], inn: [status] };
      }
    }
  }

  /** struct virtio_blk_req header at slot offset `base`. */
  private setHeader(base: number, type: number, sector: number): void {
    const v = this.slotView;
    const [lo, hi] = splitU64(sector);
    v.setUint32(base + SLOT_HDR + VIRTIO_BLK_REQ_TYPE, type, true);
    v.setUint32(base + SLOT_HDR + VIRTIO_BLK_REQ_RESERVED, 0, true);
    v.setUint32(base + SLOT_HDR + VIRTIO_BLK_REQ_SECTOR, lo, true);
    v.setUint32(base + SLOT_HDR + VIRTIO_BLK_REQ_SECTOR + 4, hi, true);
  }

  /** A data buffer as descriptors of at most size_max bytes each. */
  private segments(buffer: DmaSpan): DmaSpan[] {
    const max = this.config.sizeMax;
    if (max === undefined || buffer.len <= max) return [buffer];
    const out: DmaSpan[] = [];
    for (let at = 0; at < buffer.len; at += max) out.push({ addr: buffer.addr + at, len: Math.min(max, buffer.len - at) });
    return out;
  }

  private ensurePump(): void {
    if (this.pumping || this.inFlight === 0 || this.fault) return;
    this.pumping = true;
    void this.pump().finally(() => {
      this.pumping = false;
      // A batch may have been submitted between the last wait and here.
      this.ensurePump();
    });
  }

  /** Reap completions until nothing is in flight, refilling the ring from the backlog. */
  private async pump(): Promise<void> {
    try {
      while (this.inFlight > 0) {
        const used = await this.queue.waitUsed();
        for (const { token } of used) this.complete(token);
        if (this.backlogHead < this.backlog.length) await this.submitBacklog();
      }
    } catch (err) {
      this.failAll(err);
    }
  }

  private complete(slot: number): void {
    const queued = this.slotOps[slot]!;
    this.slotOps[slot] = undefined;
    this.freeSlots.push(slot);
    this.inFlight--;
    const status = this.slotView.getUint8(slot * SLOT_SIZE + SLOT_STATUS);
    const batch = queued.batch;
    if (status !== VIRTIO_BLK_S_OK) batch.error ??= new BlkStatusError(status, queued.op.type);
    if (--batch.left === 0) {
      if (batch.error) batch.reject(batch.error);
      else batch.resolve();
    }
  }

  /** The queue or device failed: every request waiting or in flight fails with it. */
  private failAll(err: unknown): void {
    const error = err instanceof Error ? err : new Error(String(err));
    this.fault ??= error;
    const batches = new Set<Batch>();
    for (const q of this.slotOps) if (q) batches.add(q.batch);
    for (let i = this.backlogHead; i < this.backlog.length; i++) batches.add(this.backlog[i]!.batch);
    this.backlog.length = 0;
    this.backlogHead = 0;
    this.slotOps.fill(undefined);
    this.inFlight = 0;
    for (const b of batches) b.reject(error);
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
  if (!Number.isSafeInteger(sector) || !Number.isSafeInteger(count) || sector < 0 || count < 0 || sector > capacity || count > capacity - sector) {
    throw new UsageError(`${what}: sectors [${sector}, +${count}) outside the disk of ${capacity} sectors`);
  }
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
    if (has(VIRTIO_BLK_F_DISCARD)) config.discard = { maxSectors: await r32(VIRTIO_BLK_CONFIG_MAX_DISCARD_SECTORS), maxSeg: await r32(VIRTIO_BLK_CONFIG_MAX_DISCARD_SEG) };
    if (has(VIRTIO_BLK_F_WRITE_ZEROES)) {
      config.writeZeroes = { maxSectors: await r32(VIRTIO_BLK_CONFIG_MAX_WRITE_ZEROES_SECTORS), maxSeg: await r32(VIRTIO_BLK_CONFIG_MAX_WRITE_ZEROES_SEG) };
    }
    if (config.sizeMax === 0) throw new DeviceFaultError('ERR_DEVICE_CONFIG', 'size_max is 0');
    if (config.segMax === 0) throw new DeviceFaultError('ERR_DEVICE_CONFIG', 'seg_max is 0');
    return config;
  });
}
