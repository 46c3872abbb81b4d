/**
 * The net driver's transmitqs (5.1.9.2): each frame copied behind a zeroed virtio_net_hdr (flags 0,
 * GSO_NONE: a complete frame) into a transmit buffer, frames sent in the order they were given, and
 * one notification for everything submitted in a tick.
 */

import { UsageError } from '../../errors.js';
import type { DmaBuffer, DmaMemory } from '../../memory/dma.js';
import * as N from '../../spec/net.js';
import type { LentBuffers } from '../dma-buffers.js';
import type { Completion, DriverQueue } from '../driver-queue.js';
import { SerialWork } from '../serial-work.js';
import { descriptorsFor, frameSpans, type Framing } from './framing.js';

/**
 * A transmit buffer. Frames up to a full Ethernet frame with a VLAN tag go in buffers of the
 * queue's own pool, taken when first needed and kept until close (at most one per descriptor, so
 * bounded by the queue size); larger ones in a buffer lent for that frame alone.
 */
export interface TxSlot {
  readonly buf: DmaBuffer;
  /** The pool it goes back to when the device returns it; undefined for a lent buffer. */
  readonly home: TxSlot[] | undefined;
}

/** A transmitq with its pool of buffers and the kick queued for this tick. */
interface TxLane {
  readonly queue: DriverQueue<TxSlot>;
  readonly free: TxSlot[];
  kick: Promise<void> | undefined;
}

/** Largest frame a pooled transmit buffer holds: 1514 bytes and a VLAN tag. */
const TX_POOL_FRAME = 1518;

/** See the file comment. */
export class Transmitqs {
  private readonly lanes: TxLane[];
  /** Sends that wait their turn, one after another, across every queue. */
  private readonly serial = new SerialWork();
  /** Sends waiting in the serialized lane; while there are any, new sends queue behind them (order). */
  private queued = 0;

  constructor(
    queues: readonly DriverQueue<TxSlot>[],
    private readonly framing: Framing,
    private readonly hdrSize: number,
    /** Where transmit buffers are lent from (freed after the reset at close). */
    private readonly lent: LentBuffers,
    private readonly dma: DmaMemory,
    private readonly stats: { txFrames: number },
  ) {
    this.lanes = queues.map((queue) => ({ queue, free: [], kick: undefined }));
  }

  /** Queue pairs in use: one transmitq each. */
  get count(): number {
    return this.lanes.length;
  }

  /** See VirtioNetDriver.sendAll. */
  sendAll(frames: readonly Uint8Array[], pair: number): Promise<void> {
    const lane = this.lanes[pair];
    if (!lane) return Promise.reject(new UsageError(`no queue pair ${pair}`));
    for (const frame of frames)
      if (frame.length > N.ETH_MAX_FRAME_NO_GSO)
        return Promise.reject(new UsageError(`frame of ${frame.length} bytes exceeds ${N.ETH_MAX_FRAME_NO_GSO}`));
    const q = lane.queue;
    let i = 0;
    // In-process (coherent DMA) with nothing queued before: reap, copy and submit at once while
    // the ring has room; one kick at the end of the tick.
    if (this.queued === 0 && q.coherent) {
      try {
        this.freeTx(q.reapSync());
        for (; i < frames.length && q.numFree >= descriptorsFor(this.framing, frames[i]!.length); i++) this.submitTx(lane, frames[i]!);
      } catch (err) {
        if (i > 0) void this.kickSoon(lane).catch(() => undefined);
        return Promise.reject(err instanceof Error ? err : new Error(String(err)));
      }
      if (i === frames.length) return this.kickSoon(lane);
    }
    // The rest waits its turn behind earlier sends, and for room in the ring.
    const kicked = i > 0 ? this.kickSoon(lane) : undefined;
    this.queued++;
    return this.serial.run(async () => {
      try {
        for (; i < frames.length; i++) {
          const len = frames[i]!.length;
          this.freeTx(await q.reap());
          while (q.numFree < descriptorsFor(this.framing, len)) {
            // What this call submitted so far goes to the device before waiting for it to give room.
            await q.kick();
            this.freeTx(await q.waitUsed());
          }
          const slot = this.submitTx(lane, frames[i]!);
          await this.dma.flush(slot.buf.addr, this.hdrSize + len);
        }
        await q.kick();
        await kicked;
      } finally {
        this.queued--;
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

  /** Copy `frame` behind a zeroed header (flags 0, GSO_NONE: a complete frame) into a transmit buffer and submit it; not yet kicked. */
  private submitTx(lane: TxLane, frame: Uint8Array): TxSlot {
    const len = frame.length;
    const slot = this.txSlot(lane, this.hdrSize + len);
    const bytes = slot.buf.bytes;
    bytes.fill(0, 0, this.hdrSize);
    bytes.set(frame, this.hdrSize);
    try {
      lane.queue.submit(frameSpans(this.framing, this.hdrSize, slot.buf.addr, len), [], slot);
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
    return lane.free.pop() ?? { buf: this.lent.alloc(poolSize, 16), home: lane.free };
  }

  private freeTx(used: Completion<TxSlot>[]): void {
    for (const u of used) this.releaseTx(u.token);
  }

  /** The device gave `slot` back: to its pool, or freed when it was lent for one frame. */
  private releaseTx(slot: TxSlot): void {
    if (slot.home) slot.home.push(slot);
    else this.lent.free(slot.buf);
  }
}
