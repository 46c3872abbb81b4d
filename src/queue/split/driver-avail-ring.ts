/**
 * The available ring as the driver of a split virtqueue writes it (2.7.6): one entry per chain
 * added, idx moved at publish once the entries are complete (2.7.13), and the driver's side of used
 * buffer notification suppression, which lives in this ring too: flags (VIRTQ_AVAIL_F_NO_INTERRUPT)
 * or, with VIRTIO_F_EVENT_IDX, used_event after the entries (2.7.7).
 *
 * With VIRTIO_F_IN_ORDER it also remembers which head sits at each position, so a used element that
 * stands for a batch (2.7.9) can be traced back to the batch's chains.
 */

import {
  VIRTQ_AVAIL_ELEM_SIZE,
  VIRTQ_AVAIL_F_NO_INTERRUPT,
  VIRTQ_AVAIL_FLAGS,
  VIRTQ_AVAIL_IDX,
  VIRTQ_AVAIL_RING,
} from '../../spec/ring.js';
import { ringRuns, type RingDma, type RingPart } from '../ring-dma.js';

export class DriverAvailRing {
  /** The avail idx the last publish wrote (free-running, 16 bits). */
  published = 0;
  /** The next avail idx to publish: the entries before it and from `published` are added, not yet published. */
  private next = 0;
  private readonly mask: number;
  /** The head at each position (free-running index & mask) and each head's position, for in-order batches. */
  private readonly heads: Uint16Array;
  private readonly positions: Uint16Array;

  constructor(
    private readonly ring: RingPart,
    private readonly size: number,
  ) {
    this.mask = size - 1;
    this.heads = new Uint16Array(size);
    this.positions = new Uint16Array(size);
  }

  /** Put the chain at `head` in the next entry. */
  add(head: number): void {
    const pos = this.next & this.mask;
    this.ring.dv.setUint16(VIRTQ_AVAIL_RING + pos * VIRTQ_AVAIL_ELEM_SIZE, head, true);
    this.heads[pos] = head;
    this.positions[head] = this.next;
    this.next = (this.next + 1) & 0xffff;
  }

  /** Issue the flush of the entries added since the last publish. */
  flushAdded(dma: RingDma): void {
    const added = (this.next - this.published) & 0xffff;
    ringRuns(this.size, this.published & this.mask, added, (first, count) =>
      dma.flush(this.ring.addr + VIRTQ_AVAIL_RING + first * VIRTQ_AVAIL_ELEM_SIZE, count * VIRTQ_AVAIL_ELEM_SIZE),
    );
  }

  /** Take every entry added so far into the next publish; returns the avail idx that publishes them. */
  takeAdded(): number {
    this.published = this.next;
    return this.next;
  }

  /** Write idx = `value` (the entries before it are complete: 2.7.13); with `dma`, issue its flush. */
  writeIdx(value: number, dma?: RingDma): void {
    this.ring.dv.setUint16(VIRTQ_AVAIL_IDX, value, true);
    dma?.flush(this.ring.addr + VIRTQ_AVAIL_IDX, 2);
  }

  /** The head at free-running position `pos`. */
  headAt(pos: number): number {
    return this.heads[pos & this.mask]!;
  }

  /**
   * How many chains a used element at free-running index `at` naming chain `id` (in flight) returns
   * in order (2.7.9): those from the oldest in flight, at `at`, up to `id`.
   */
  batchTo(at: number, id: number): number {
    return ((this.positions[id]! - at) & 0xffff) + 1;
  }

  /** Ask the device not to interrupt (VIRTQ_AVAIL_F_NO_INTERRUPT), or to interrupt again; issues the flush. */
  writeFlags(noInterrupt: boolean, dma: RingDma): void {
    this.ring.dv.setUint16(VIRTQ_AVAIL_FLAGS, noInterrupt ? VIRTQ_AVAIL_F_NO_INTERRUPT : 0, true);
    dma.flush(this.ring.addr + VIRTQ_AVAIL_FLAGS, 2);
  }

  /** used_event (after the entries): the next used index to interrupt for, or one already passed; issues its flush. */
  writeUsedEvent(value: number, dma: RingDma): void {
    const at = VIRTQ_AVAIL_RING + this.size * VIRTQ_AVAIL_ELEM_SIZE;
    this.ring.dv.setUint16(at, value & 0xffff, true);
    dma.flush(this.ring.addr + at, 2);
  }

  /** After a device reset: publishing starts again at idx 0. */
  restart(): void {
    this.next = this.published = 0;
  }
}
