/**
 * The used descriptors as the driver of a packed virtqueue reads them (2.8.4, 2.8.6): the device
 * overwrites published descriptors, in ring order, and so is hostile. Each used descriptor must carry
 * AVAIL and USED equal to the used wrap counter and name a published buffer in flight with len at
 * most its writable bytes, all checked before any is taken. The driver then skips past as many slots
 * as the chain took, which it remembers itself.
 *
 * With VIRTIO_F_IN_ORDER (2.8.8) one used descriptor may stand for a batch: it names the batch's last
 * buffer, overwrites the batch's first descriptor, and the driver skips every descriptor of the batch.
 */

import { DeviceFaultError, type DeviceFaultCode } from '../../errors.js';
import {
  PVIRTQ_DESC_FLAGS,
  PVIRTQ_DESC_ID,
  PVIRTQ_DESC_LEN,
  PVIRTQ_DESC_SIZE,
  VIRTQ_DESC_F_AVAIL,
  VIRTQ_DESC_F_USED,
} from '../../spec/packed-ring.js';
import type { InFlightChains } from '../in-flight-chains.js';
import { ringRuns, type RingPart } from '../ring-dma.js';

export class DriverUsedDescriptors {
  /** Next slot to read a used descriptor from, and the wrap counter it is expected with. */
  next = 0;
  wrap = 1;
  /** Descriptors published and not yet used: slots [next, next + published). */
  published = 0;
  /**
   * With IN_ORDER: chains are numbered in the order they were added (`addSeq` per id, `seqId` per
   * number modulo the size: no more chains are in flight than the ring has descriptors); `usedSeq`
   * is the oldest in flight. A used descriptor's batch is the chains from `usedSeq` to the one it names.
   */
  private readonly addSeq: Float64Array;
  private readonly seqId: Uint16Array;
  private addedSeq = 0;
  private usedSeq = 0;

  constructor(
    private readonly ring: RingPart,
    private readonly size: number,
    private readonly index: number,
    private readonly inOrder: boolean,
  ) {
    this.addSeq = new Float64Array(size);
    this.seqId = new Uint16Array(size);
  }

  /** Chain `id` was added: the next in order. */
  added(id: number): void {
    this.addSeq[id] = this.addedSeq;
    this.seqId[this.addedSeq % this.size] = id;
    this.addedSeq++;
  }

  /** Whether the device has used the next descriptor (its flags read from the local image). */
  nextIsUsed(): boolean {
    return descState(this.ring.dv.getUint16(this.next * PVIRTQ_DESC_SIZE + PVIRTQ_DESC_FLAGS, true), this.wrap) === USED;
  }

  /** The published slots after the next one as runs of slots, for their refresh. */
  laterRuns(each: (slot: number, count: number) => void): void {
    if (this.published <= 1) return;
    ringRuns(this.size, this.next + 1 === this.size ? 0 : this.next + 1, this.published - 1, each);
  }

  /**
   * Walk the used descriptors from the next one, checking each, without taking any; returns how many
   * there are. The walk stays inside the published descriptors, each of which the driver wrote on the
   * lap it expects, so it ends at the first one still available.
   */
  check<T>(chains: InFlightChains<T>): number {
    chains.beginUsedPass();
    const dv = this.ring.dv;
    let slot = this.next;
    let wrap = this.wrap;
    let n = 0;
    let oldest = this.usedSeq;
    for (let left = this.published; left > 0;) {
      const at = slot * PVIRTQ_DESC_SIZE;
      const flags = dv.getUint16(at + PVIRTQ_DESC_FLAGS, true);
      const state = descState(flags, wrap);
      if (state === AVAILABLE) break; // not used yet
      if (state === INCONSISTENT)
        throw this.fault('ERR_DEVICE_USED_FLAGS', `descriptor ${slot}: flags 0x${flags.toString(16)} with used wrap counter ${wrap}`);
      const id = dv.getUint16(at + PVIRTQ_DESC_ID, true);
      const len = dv.getUint32(at + PVIRTQ_DESC_LEN, true);
      const refused = chains.checkUsed(id, len);
      if (refused === 'ERR_DEVICE_USED_ID') throw this.fault(refused, `descriptor ${slot} names buffer id ${id}, which is not in flight`);
      if (refused === 'ERR_DEVICE_USED_LEN')
        throw this.fault(refused, `descriptor ${slot}: len ${len} for buffer ${id} with ${chains.writable[id]} writable bytes`);
      n++;
      // The ids are distinct chains in flight, so the skips add up to at most the published slots.
      let skip = chains.descriptors[id]!;
      if (this.inOrder) {
        // 2.8.8: the descriptor stands for every chain from the oldest in flight up to this one.
        const seq = this.addSeq[id]!;
        if (seq < oldest)
          throw this.fault('ERR_DEVICE_USED_ORDER', `descriptor ${slot} names buffer ${id}, which an earlier batch already covered`);
        for (skip = 0; oldest <= seq; oldest++) skip += chains.descriptors[this.seqId[oldest % this.size]!]!;
      }
      left -= skip;
      slot += skip;
      if (slot >= this.size) {
        slot -= this.size;
        wrap ^= 1;
      }
    }
    return n;
  }

  /** The buffer id of the next used descriptor. */
  id(): number {
    return this.ring.dv.getUint16(this.next * PVIRTQ_DESC_SIZE + PVIRTQ_DESC_ID, true);
  }

  /** The len of the next used descriptor. */
  len(): number {
    return this.ring.dv.getUint32(this.next * PVIRTQ_DESC_SIZE + PVIRTQ_DESC_LEN, true);
  }

  /** With IN_ORDER: the oldest chain in flight (the first of a batch). */
  oldest(): number {
    return this.seqId[this.usedSeq % this.size]!;
  }

  /** Move past the oldest chain in flight (in order) or the one used, which took `skip` slots. */
  skip(skip: number): void {
    this.published -= skip;
    this.next += skip;
    if (this.next >= this.size) {
      this.next -= this.size;
      this.wrap ^= 1;
    }
    this.usedSeq++;
  }

  /** After a device reset: slot 0, wrap counter 1, nothing published. */
  restart(): void {
    this.next = 0;
    this.wrap = 1;
    this.published = 0;
    this.addedSeq = this.usedSeq = 0;
  }

  private fault(code: DeviceFaultCode, message: string): DeviceFaultError {
    return new DeviceFaultError(code, `queue ${this.index}: ${message}`);
  }
}

const AVAILABLE = 0;
const USED = 1;
const INCONSISTENT = 2;

/**
 * What the flags of a published descriptor say on the lap whose wrap counter is `wrap` (2.8.1): the
 * driver wrote AVAIL = wrap, USED = !wrap; the device, using it, sets both to wrap. Anything else
 * (AVAIL != wrap) the driver never wrote on this lap and no compliant device writes.
 */
function descState(flags: number, wrap: number): number {
  const avail = (flags & VIRTQ_DESC_F_AVAIL) !== 0 ? 1 : 0;
  const used = (flags & VIRTQ_DESC_F_USED) !== 0 ? 1 : 0;
  if (avail !== wrap) return INCONSISTENT;
  return used === wrap ? USED : AVAILABLE;
}
