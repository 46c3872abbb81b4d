/**
 * The two event suppression areas of a packed virtqueue as its driver uses them (2.8.10, 2.8.14):
 * the driver's, which it writes to ask for used buffer notifications (ENABLE, DISABLE, or with
 * VIRTIO_F_EVENT_IDX DESC naming a descriptor), and the device's, which it reads to decide whether
 * to notify and which is the device's to write, so hostile: reserved flags, DESC without EVENT_IDX or
 * an offset outside the ring are ERR_DEVICE_EVENT_SUPPRESSION.
 */

import { DeviceFaultError } from '../../errors.js';
import {
  PVIRTQ_EVENT_DESC,
  PVIRTQ_EVENT_FLAGS,
  PVIRTQ_EVENT_SUPPRESS_SIZE,
  RING_EVENT_FLAGS_DESC,
  RING_EVENT_FLAGS_DISABLE,
  RING_EVENT_FLAGS_ENABLE,
  RING_EVENT_FLAGS_RESERVED,
  RING_EVENT_OFF_MASK,
  RING_EVENT_WRAP_SHIFT,
} from '../../spec/packed-ring.js';
import { vringNeedEvent } from '../../spec/ring.js';
import type { RingDma, RingPart } from '../ring-dma.js';

/** The bits of an event suppression area's flags field that may be set: desc_event_flags (2.8.14). */
const RING_EVENT_FLAGS_MASK = 0x3;

export class DriverEventSuppression {
  /** The driver asked not to be interrupted (its area says DISABLE). */
  suppressed = false;

  constructor(
    private readonly driverArea: RingPart,
    private readonly deviceArea: RingPart,
    private readonly size: number,
    private readonly index: number,
    private readonly eventIdx: boolean,
  ) {}

  /** Issue the refresh of the device's area, before {@link wantsNotification} reads it. */
  refreshDevice(dma: RingDma): void {
    dma.refresh(this.deviceArea.addr, PVIRTQ_EVENT_SUPPRESS_SIZE);
  }

  /**
   * Whether the device wants to hear that the `added` descriptors before slot `next` (whose wrap
   * counter is `wrap`) became available: its event suppression area (2.8.10, 2.8.21.3).
   */
  wantsNotification(next: number, wrap: number, added: number): boolean {
    const flags = this.deviceArea.dv.getUint16(PVIRTQ_EVENT_FLAGS, true);
    const desc = this.deviceArea.dv.getUint16(PVIRTQ_EVENT_DESC, true);
    const mode = flags & RING_EVENT_FLAGS_MASK;
    if ((flags & ~RING_EVENT_FLAGS_MASK) !== 0 || mode === RING_EVENT_FLAGS_RESERVED || (mode === RING_EVENT_FLAGS_DESC && !this.eventIdx))
      throw this.fault(`device event suppression flags 0x${flags.toString(16)}`);
    if (mode === RING_EVENT_FLAGS_ENABLE) return true;
    if (mode === RING_EVENT_FLAGS_DISABLE) return false;
    const off = desc & RING_EVENT_OFF_MASK;
    if (off >= this.size) throw this.fault(`device event offset ${off} is outside the ring`);
    // The event descriptor as a position on the lap of `next`: one lap back when its wrap differs.
    const event = desc >>> RING_EVENT_WRAP_SHIFT === wrap ? off : off - this.size;
    return vringNeedEvent(event, next, next - added);
  }

  /**
   * Write the driver's area for the current state, with EVENT_IDX naming `usedSlot` (on the lap of
   * `usedWrap`), the next descriptor the driver will read; issues its flush.
   */
  writeDriverArea(usedSlot: number, usedWrap: number, dma: RingDma): void {
    const dv = this.driverArea.dv;
    let flags = RING_EVENT_FLAGS_DISABLE;
    if (!this.suppressed && this.eventIdx) {
      flags = RING_EVENT_FLAGS_DESC;
      dv.setUint16(PVIRTQ_EVENT_DESC, usedSlot | (usedWrap << RING_EVENT_WRAP_SHIFT), true);
    } else if (!this.suppressed) flags = RING_EVENT_FLAGS_ENABLE;
    dv.setUint16(PVIRTQ_EVENT_FLAGS, flags, true);
    dma.flush(this.driverArea.addr, PVIRTQ_EVENT_SUPPRESS_SIZE);
  }

  private fault(message: string): DeviceFaultError {
    return new DeviceFaultError('ERR_DEVICE_EVENT_SUPPRESSION', `queue ${this.index}: ${message}`);
  }
}
