/**
 * One virtio-blk request queue as the driver runs it: a DMA slot per request in flight (header,
 * segment, status), a backlog of requests waiting for slots and descriptors, and one pump that reaps
 * completions and refills the ring. Each submission round notifies the device once.
 */

import { DeviceFaultError } from '../../errors.js';
import { hi32, lo32 } from '../../memory/guest-memory.js';
import {
  VIRTIO_BLK_DWZ_FLAGS,
  VIRTIO_BLK_DWZ_NUM_SECTORS,
  VIRTIO_BLK_DWZ_SECTOR,
  VIRTIO_BLK_DWZ_SIZE,
  VIRTIO_BLK_ID_BYTES,
  VIRTIO_BLK_REQ_HDR_SIZE,
  VIRTIO_BLK_REQ_RESERVED,
  VIRTIO_BLK_REQ_SECTOR,
  VIRTIO_BLK_REQ_TYPE,
  VIRTIO_BLK_S_OK,
  VIRTIO_BLK_T_DISCARD,
  VIRTIO_BLK_T_FLUSH,
  VIRTIO_BLK_T_GET_ID,
  VIRTIO_BLK_T_IN,
  VIRTIO_BLK_T_OUT,
  VIRTIO_BLK_T_WRITE_ZEROES,
  VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP,
} from '../../spec/blk.js';
import type { DmaBuffer, DmaMemory } from '../../memory/dma.js';
import type { DmaSpan, DriverQueue } from '../driver-queue.js';
import { BlkStatusError, type BlkOp } from './types.js';

/**
 * Per-request DMA a slot owns: header (16), one discard/write-zeroes segment (16), a GET_ID buffer
 * (20) and the status byte, 64 bytes in all.
 */
const SLOT_SIZE = 64;
const SLOT_HDR = 0;
const SLOT_SEG = 16;
const SLOT_STATUS = 52;

/** A batch in progress: how many of its requests are left, and the first failure. */
export interface Batch {
  left: number;
  error: Error | undefined;
  resolve: () => void;
  reject: (error: Error) => void;
}

/**
 * A slot's chain: the buffer lists given to the ring, built once per slot from its fixed header,
 * segment and status spans, with the data buffer put in per request, so the hot path allocates none.
 * The ring keeps the lists until the request is reaped, and the slot is reused only after that.
 */
interface SlotChain {
  out: readonly DmaSpan[];
  inn: readonly DmaSpan[];
  /** [header] and [status]. */
  readonly hdr: readonly DmaSpan[];
  readonly status: readonly DmaSpan[];
  /** [header, segment]: DISCARD / WRITE_ZEROES. */
  readonly hdrSeg: readonly DmaSpan[];
  /** [header, data] (OUT) and [data, status] (IN, GET_ID): index 1 resp. 0 is the request's data. */
  readonly hdrData: DmaSpan[];
  readonly dataStatus: DmaSpan[];
}

/** The requests of one enqueue() call still waiting for slots and descriptors: ops[next..]. */
interface Waiting {
  readonly ops: readonly BlkOp[];
  next: number;
  readonly batch: Batch;
}

export class BlkRequestQueue {
  /** Most requests in flight at once (one slot each). */
  readonly maxInFlight: number;

  private readonly slots: DmaBuffer;
  private readonly slotView: DataView;
  private readonly freeSlots: number[];
  private readonly chains: readonly SlotChain[];
  /** The request in each slot and its batch (parallel arrays: no object per request). */
  private readonly slotOps: (BlkOp | undefined)[];
  private readonly slotBatches: (Batch | undefined)[];
  private readonly backlog: Waiting[] = [];
  private backlogHead = 0;
  private inFlight = 0;
  /** Submission rounds between putting requests in the ring and the end of their notify. */
  private submitting = 0;
  private pumping = false;
  private failed = false;

  constructor(
    private readonly queue: DriverQueue<number>,
    private readonly dma: DmaMemory,
    /** size_max, when negotiated: data buffers are cut into descriptors no longer than this. */
    private readonly sizeMax: number | undefined,
    /** Called once when the queue fails (timeout, device fault): the driver fails everything. */
    private readonly onFault: (error: Error) => void,
  ) {
    // Without indirect descriptors a request takes at least two (header and status).
    this.maxInFlight = Math.max(1, Math.floor(queue.size / 2));
    this.slots = dma.alloc(this.maxInFlight * SLOT_SIZE, 16);
    this.slotView = new DataView(this.slots.bytes.buffer, this.slots.bytes.byteOffset, this.slots.bytes.byteLength);
    this.freeSlots = Array.from({ length: this.maxInFlight }, (_, i) => this.maxInFlight - 1 - i);
    this.slotOps = new Array<BlkOp | undefined>(this.maxInFlight).fill(undefined);
    this.slotBatches = new Array<Batch | undefined>(this.maxInFlight).fill(undefined);
    this.chains = Array.from({ length: this.maxInFlight }, (_, slot) => {
      const addr = this.slots.addr + slot * SLOT_SIZE;
      const hdr: DmaSpan = { addr: addr + SLOT_HDR, len: VIRTIO_BLK_REQ_HDR_SIZE };
      const status: DmaSpan = { addr: addr + SLOT_STATUS, len: 1 };
      const seg: DmaSpan = { addr: addr + SLOT_SEG, len: VIRTIO_BLK_DWZ_SIZE };
      return {
        out: [hdr],
        inn: [status],
        hdr: [hdr],
        status: [status],
        hdrSeg: [hdr, seg],
        hdrData: [hdr, hdr],
        dataStatus: [status, status],
      };
    });
  }

  /**
   * Queue `ops` of `batch`, put what fits in the ring and notify; the pump does the rest. The queue
   * keeps `ops` until every request of it is in the ring: give it a list nobody else changes.
   */
  enqueue(ops: readonly BlkOp[], batch: Batch): void {
    this.backlog.push({ ops, next: 0, batch });
    void this.submitRound();
  }

  /**
   * Put waiting requests in the ring, notify once, then make sure the pump runs. Never rejects: a
   * failure fails the queue.
   */
  private async submitRound(): Promise<void> {
    try {
      // The ring flushes device-readable buffers before it publishes them, and refreshes the
      // device-writable ones it reaps, so DMA through a remote bus needs nothing more here.
      if (this.fillRing() > 0) {
        this.submitting++;
        try {
          await this.queue.kick();
        } finally {
          this.submitting--;
        }
      }
    } catch (err) {
      this.onFault(err instanceof Error ? err : new Error(String(err)));
      return;
    }
    this.ensurePump();
  }

  /** Put waiting requests in the ring while slots and descriptors last; returns how many went in. */
  private fillRing(): number {
    let submitted = 0;
    while (this.backlogHead < this.backlog.length && this.freeSlots.length > 0) {
      const waiting = this.backlog[this.backlogHead]!;
      const op = waiting.ops[waiting.next]!;
      const slot = this.freeSlots[this.freeSlots.length - 1]!;
      const chain = this.layout(op, slot);
      const need = chain.out.length + chain.inn.length;
      if (need > this.queue.size) {
        // Not even an empty ring holds it (the device chose a tiny queue): fail it, don't wait forever.
        this.advance(waiting);
        this.settle(
          waiting.batch,
          new DeviceFaultError(
            'ERR_DEVICE_QUEUE',
            `a ${op.type} request needs ${need} descriptors; queue ${this.queue.index} has ${this.queue.size}`,
          ),
        );
        continue;
      }
      if (this.queue.numFree < need) break;
      this.freeSlots.pop();
      this.advance(waiting);
      this.slotOps[slot] = op;
      this.slotBatches[slot] = waiting.batch;
      this.queue.submit(chain.out, chain.inn, slot);
      this.inFlight++;
      submitted++;
    }
    if (this.backlogHead === this.backlog.length) {
      this.backlog.length = 0;
      this.backlogHead = 0;
    }
    return submitted;
  }

  /** The next request of `waiting` was taken: step past it, and past the entry once it is empty. */
  private advance(waiting: Waiting): void {
    if (++waiting.next === waiting.ops.length) this.backlogHead++;
  }

  /** Write the request header (and segment) into the slot and set the slot's chain buffers. */
  private layout(op: BlkOp, slot: number): SlotChain {
    const base = slot * SLOT_SIZE;
    const chain = this.chains[slot]!;
    const v = this.slotView;
    v.setUint8(base + SLOT_STATUS, 0xff); // not a status the device sends: a missing answer shows
    chain.out = chain.hdr;
    chain.inn = chain.status;
    switch (op.type) {
      case 'read':
        this.setHeader(base, VIRTIO_BLK_T_IN, op.sector);
        chain.inn = this.withData(chain.dataStatus, 0, op.buffer);
        return chain;
      case 'write':
        this.setHeader(base, VIRTIO_BLK_T_OUT, op.sector);
        chain.out = this.withData(chain.hdrData, 1, op.buffer);
        return chain;
      case 'flush':
        this.setHeader(base, VIRTIO_BLK_T_FLUSH, 0);
        return chain;
      case 'getId':
        this.setHeader(base, VIRTIO_BLK_T_GET_ID, 0);
        chain.inn = this.withData(chain.dataStatus, 0, { addr: op.buffer.addr, len: VIRTIO_BLK_ID_BYTES });
        return chain;
      case 'discard':
      case 'writeZeroes': {
        this.setHeader(base, op.type === 'discard' ? VIRTIO_BLK_T_DISCARD : VIRTIO_BLK_T_WRITE_ZEROES, 0);
        const seg = base + SLOT_SEG;
        v.setUint32(seg + VIRTIO_BLK_DWZ_SECTOR, lo32(op.sector), true);
        v.setUint32(seg + VIRTIO_BLK_DWZ_SECTOR + 4, hi32(op.sector), true);
        v.setUint32(seg + VIRTIO_BLK_DWZ_NUM_SECTORS, op.count, true);
        v.setUint32(seg + VIRTIO_BLK_DWZ_FLAGS, op.type === 'writeZeroes' && op.unmap ? VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP : 0, true);
        chain.out = chain.hdrSeg;
        return chain;
      }
    }
  }

  /** struct virtio_blk_req header at slot offset `base`. */
  private setHeader(base: number, type: number, sector: number): void {
    const v = this.slotView;
    v.setUint32(base + SLOT_HDR + VIRTIO_BLK_REQ_TYPE, type, true);
    v.setUint32(base + SLOT_HDR + VIRTIO_BLK_REQ_RESERVED, 0, true);
    v.setUint32(base + SLOT_HDR + VIRTIO_BLK_REQ_SECTOR, lo32(sector), true);
    v.setUint32(base + SLOT_HDR + VIRTIO_BLK_REQ_SECTOR + 4, hi32(sector), true);
  }

  /**
   * `pair` (a slot's two-entry list) with `buffer` at `at`, or, when the buffer is longer than
   * size_max, a new list with the buffer cut into descriptors of at most size_max bytes there.
   */
  private withData(pair: DmaSpan[], at: 0 | 1, buffer: DmaSpan): readonly DmaSpan[] {
    const max = this.sizeMax;
    if (max === undefined || buffer.len <= max) {
      pair[at] = buffer;
      return pair;
    }
    const pieces: DmaSpan[] = [];
    for (let off = 0; off < buffer.len; off += max) pieces.push({ addr: buffer.addr + off, len: Math.min(max, buffer.len - off) });
    return at === 0 ? [...pieces, pair[1]!] : [pair[0]!, ...pieces];
  }

  /**
   * Start the pump unless it runs. While a round is still notifying, its own end starts the pump:
   * waiting now would find the ring empty and sleep on a timer until the interrupt.
   */
  private ensurePump(): void {
    if (this.pumping || this.inFlight === 0 || this.failed || this.submitting > 0) return;
    this.pumping = true;
    void this.pump();
  }

  /** Reap completions until nothing is in flight, refilling the ring from the backlog. */
  private async pump(): Promise<void> {
    try {
      // Requests submitted while the pump waits raise inFlight, so they are reaped in this loop.
      while (this.inFlight > 0) {
        const used = await this.queue.waitUsed();
        for (const { token } of used) this.complete(token);
        if (this.backlogHead < this.backlog.length) await this.submitRound();
      }
    } catch (err) {
      this.onFault(err instanceof Error ? err : new Error(String(err)));
    } finally {
      this.pumping = false;
    }
  }

  private complete(slot: number): void {
    const op = this.slotOps[slot]!;
    const batch = this.slotBatches[slot]!;
    this.slotOps[slot] = undefined;
    this.slotBatches[slot] = undefined;
    this.freeSlots.push(slot);
    this.inFlight--;
    const status = this.slotView.getUint8(slot * SLOT_SIZE + SLOT_STATUS);
    this.settle(batch, status === VIRTIO_BLK_S_OK ? undefined : new BlkStatusError(status, op.type));
  }

  /** One request of `batch` is done (with `error` if it failed); the batch settles with its last request. */
  private settle(batch: Batch, error: Error | undefined): void {
    if (error) batch.error ??= error;
    if (--batch.left === 0) {
      if (batch.error) batch.reject(batch.error);
      else batch.resolve();
    }
  }

  /** The device or driver failed: every request waiting or in flight here fails with `error`. */
  failAll(error: Error): void {
    this.failed = true;
    const batches = new Set<Batch>();
    for (const b of this.slotBatches) if (b) batches.add(b);
    for (let i = this.backlogHead; i < this.backlog.length; i++) batches.add(this.backlog[i]!.batch);
    this.backlog.length = 0;
    this.backlogHead = 0;
    this.slotOps.fill(undefined);
    this.slotBatches.fill(undefined);
    this.inFlight = 0;
    for (const b of batches) b.reject(error);
  }

  /** Release the slot memory (after the device was reset). */
  destroy(): void {
    this.dma.free(this.slots);
  }
}
