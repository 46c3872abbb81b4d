/**
 * The used ring as the driver of a split virtqueue reads it (2.7.8), the device's to write and so
 * hostile: idx may not move past the chains in flight, and each element must name a published chain
 * in flight with len at most its writable bytes, all checked before any is taken. It also holds the
 * device's side of available buffer notification suppression: flags (VIRTQ_USED_F_NO_NOTIFY) or,
 * with VIRTIO_F_EVENT_IDX, avail_event after the elements (2.7.10).
 *
 * With VIRTIO_F_IN_ORDER (2.7.9) an element may stand for a batch: it names the batch's last chain,
 * sits where the batch's first would have, and idx moves by the batch's size.
 */

import { DeviceFaultError, type DeviceFaultCode } from '../../errors.js';
import {
  VIRTQ_USED_ELEM_SIZE,
  VIRTQ_USED_F_NO_NOTIFY,
  VIRTQ_USED_FLAGS,
  VIRTQ_USED_IDX,
  VIRTQ_USED_RING,
  vringNeedEvent,
} from '../../spec/ring.js';
import type { InFlightChains } from '../in-flight-chains.js';
import { ringRuns, type RingPart } from '../ring-dma.js';
import type { DriverAvailRing } from './driver-avail-ring.js';

export class DriverUsedRing {
  /** The used idx up to which elements were taken (free-running, 16 bits). */
  lastUsed = 0;
  private readonly mask: number;

  constructor(
    private readonly ring: RingPart,
    private readonly size: number,
    private readonly index: number,
    private readonly eventIdx: boolean,
    private readonly inOrder: boolean,
  ) {
    this.mask = size - 1;
  }

  /** Where the device says whether it wants notifications: avail_event with EVENT_IDX, else the flags. */
  notificationField(): number {
    return this.eventIdx ? VIRTQ_USED_RING + this.size * VIRTQ_USED_ELEM_SIZE : VIRTQ_USED_FLAGS;
  }

  /** Whether the device wants to hear that avail idx moved from `old` to `target`. */
  wantsNotification(old: number, target: number): boolean {
    const value = this.ring.dv.getUint16(this.notificationField(), true);
    return this.eventIdx ? vringNeedEvent(value, target, old) : (value & VIRTQ_USED_F_NO_NOTIFY) === 0;
  }

  /** Elements the device returned since the last take; ERR_DEVICE_USED_INDEX when more than the `inFlight` chains. */
  count(inFlight: number): number {
    const usedIdx = this.ring.dv.getUint16(VIRTQ_USED_IDX, true);
    const n = (usedIdx - this.lastUsed) & 0xffff;
    if (n > inFlight)
      throw this.fault('ERR_DEVICE_USED_INDEX', `used idx moved from ${this.lastUsed} to ${usedIdx} with ${inFlight} chains in flight`);
    return n;
  }

  /** The bus ranges of the `n` elements from `lastUsed` (one, or two when wrapping), for their refresh. */
  elementRanges(n: number, each: (addr: number, len: number) => void): void {
    ringRuns(this.size, this.lastUsed & this.mask, n, (first, count) =>
      each(this.ring.addr + VIRTQ_USED_RING + first * VIRTQ_USED_ELEM_SIZE, count * VIRTQ_USED_ELEM_SIZE),
    );
  }

  /** The id of the element at free-running index `i`. */
  id(i: number): number {
    return this.ring.dv.getUint32(this.element(i), true);
  }

  /** The len of the element at free-running index `i`. */
  len(i: number): number {
    return this.ring.dv.getUint32(this.element(i) + 4, true);
  }

  /**
   * How many chains the element at free-running index `at`, naming chain `id` (in flight), returns:
   * 1, or with IN_ORDER the chains from the oldest in flight up to `id` (2.7.9).
   */
  batchSize(at: number, id: number, avail: DriverAvailRing): number {
    return this.inOrder ? avail.batchTo(at, id) : 1;
  }

  /**
   * Check all `n` new elements before any is taken: ERR_DEVICE_USED_ID, ERR_DEVICE_USED_LEN, and with
   * IN_ORDER ERR_DEVICE_USED_ORDER for a batch that reaches past used idx.
   */
  check<T>(n: number, chains: InFlightChains<T>, avail: DriverAvailRing): void {
    chains.beginUsedPass();
    for (let k = 0, i = this.lastUsed; k < n;) {
      const id = this.id(i);
      const len = this.len(i);
      const refused = chains.checkUsed(id, len);
      if (refused === 'ERR_DEVICE_USED_ID') throw this.fault(refused, `used ring entry ${i} names id ${id}, which is not in flight`);
      if (refused === 'ERR_DEVICE_USED_LEN')
        throw this.fault(refused, `used ring entry ${i}: len ${len} for chain ${id} with ${chains.writable[id]} writable bytes`);
      // In order, a chain used earlier in this pass sits before `i`: its batch would wrap past used idx.
      const batch = this.batchSize(i, id, avail);
      if (batch > n - k)
        throw this.fault(
          'ERR_DEVICE_USED_ORDER',
          `used ring entry ${i} names chain ${id}, ${batch} chains on in order, but used idx moved ${n - k} past it`,
        );
      k += batch;
      i = (i + batch) & 0xffff;
    }
  }

  private element(i: number): number {
    return VIRTQ_USED_RING + (i & this.mask) * VIRTQ_USED_ELEM_SIZE;
  }

  private fault(code: DeviceFaultCode, message: string): DeviceFaultError {
    return new DeviceFaultError(code, `queue ${this.index}: ${message}`);
  }
}
