/**
 * The device status field (2.1) as a transition table: which bit a driver write may add once which
 * others are set (3.1.1), the walk of that table for one write, and the status rules a driver write
 * can break (for the driver audit). What setting a bit does (FEATURES_OK's negotiation, DRIVER_OK's
 * activation) is the device core's; a front-end whose interface has other steps passes its own table.
 */

import { DRIVER_REQUIREMENTS as R, type DriverAuditSink } from '../spec/driver-requirements.js';
import {
  VIRTIO_CONFIG_S_ACKNOWLEDGE,
  VIRTIO_CONFIG_S_DEVICE_NEEDS_RESET,
  VIRTIO_CONFIG_S_DRIVER,
  VIRTIO_CONFIG_S_DRIVER_OK,
  VIRTIO_CONFIG_S_FAILED,
  VIRTIO_CONFIG_S_FEATURES_OK,
  VIRTIO_CONFIG_S_SUSPEND,
} from '../spec/status.js';

/**
 * One row of the status transition table: a driver write may add `bit` only when every bit of
 * `requires` is already set (earlier rows of the same write count) and FAILED is not.
 */
export interface StatusStep {
  readonly bit: number;
  readonly requires: number;
}

/**
 * Spec 3.1.1 (driver initialization) for the modern interface: ACKNOWLEDGE, then DRIVER, then
 * FEATURES_OK (if negotiation succeeds, 2.2.2), then DRIVER_OK; FAILED at any time. Writing 0
 * resets (2.4). DEVICE_NEEDS_RESET is the device's: a driver write neither sets nor clears it.
 * A driver may not clear bits (2.1.1): such a write keeps them. A legacy front-end passes its own
 * table (no FEATURES_OK step).
 */
export const MODERN_STATUS_STEPS: readonly StatusStep[] = [
  { bit: VIRTIO_CONFIG_S_ACKNOWLEDGE, requires: 0 },
  { bit: VIRTIO_CONFIG_S_DRIVER, requires: VIRTIO_CONFIG_S_ACKNOWLEDGE },
  { bit: VIRTIO_CONFIG_S_FEATURES_OK, requires: VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER },
  {
    bit: VIRTIO_CONFIG_S_DRIVER_OK,
    requires: VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK,
  },
  { bit: VIRTIO_CONFIG_S_FAILED, requires: 0 },
];

/**
 * Audit: the status rules a non-zero write of `value` over status `s` can break (2.1.1, 3.1.1);
 * `resetWritten` says whether the driver has reset the device since power-on.
 */
export function auditStatusWrite(audit: DriverAuditSink, s: number, value: number, resetWritten: boolean): void {
  // DEVICE_NEEDS_RESET is the device's bit: a driver write neither keeps nor clears it.
  // SUSPEND: the device clears it on resume (3.4), so the resume write may leave it 0.
  const cleared = s & ~value & ~(VIRTIO_CONFIG_S_DEVICE_NEEDS_RESET | VIRTIO_CONFIG_S_SUSPEND);
  if (cleared !== 0) audit(R.statusNoClear, `status 0x${s.toString(16)} written 0x${value.toString(16)}: clears 0x${cleared.toString(16)}`);
  const added = value & ~s & ~VIRTIO_CONFIG_S_FAILED;
  if ((s & VIRTIO_CONFIG_S_FAILED) !== 0 && added !== 0)
    audit(R.statusResetAfterFailed, `status 0x${s.toString(16)} (FAILED) written 0x${value.toString(16)} without a reset`);
  if ((added & VIRTIO_CONFIG_S_ACKNOWLEDGE) !== 0 && !resetWritten)
    audit(R.initResetFirst, `ACKNOWLEDGE set with no reset written since power-on`);
}

/** device_status as the device holds it, and the transition table it follows. */
export class DeviceStatus {
  /** The bits set. */
  value = 0;
  private steps: readonly StatusStep[] = MODERN_STATUS_STEPS;
  /** Status bits queue configuration needs: those DRIVER_OK requires. */
  private queueSetupRequires = 0;

  /** Follow the table `steps` from now on (RangeError when it has no DRIVER_OK step). */
  useSteps(steps: readonly StatusStep[]): void {
    const driverOk = steps.find((step) => step.bit === VIRTIO_CONFIG_S_DRIVER_OK);
    if (driverOk === undefined) throw new RangeError('the status table has no DRIVER_OK step');
    this.steps = steps;
    this.queueSetupRequires = driverOk.requires;
  }

  /** Whether the interface has the FEATURES_OK step (the modern interface does, the legacy one not). */
  get hasFeaturesOkStep(): boolean {
    return this.steps.some((step) => step.bit === VIRTIO_CONFIG_S_FEATURES_OK);
  }

  /** Whether SUSPEND shows: a suspension under way or complete (3.4). */
  get suspendSet(): boolean {
    return (this.value & VIRTIO_CONFIG_S_SUSPEND) !== 0;
  }

  /** Whether queues may be set up: everything DRIVER_OK requires is set, DRIVER_OK and SUSPEND are not (3.1.1 step 7). */
  get inQueueSetup(): boolean {
    const s = this.value;
    return (s & this.queueSetupRequires) === this.queueSetupRequires && (s & (VIRTIO_CONFIG_S_DRIVER_OK | VIRTIO_CONFIG_S_SUSPEND)) === 0;
  }

  /**
   * A driver write of `value` (not 0: that is a reset): set, row by row, each bit the write has and
   * the table allows now, if `admit(bit)` agrees; `entered(bit)` runs once it is set. Out-of-order
   * bits are reported to `audit` and not set.
   */
  write(value: number, admit: (bit: number) => boolean, entered: (bit: number) => void, audit: DriverAuditSink | undefined): void {
    for (const step of this.steps) {
      // Read afresh: what an earlier row's `entered` did (DEVICE_NEEDS_RESET on a failed activation) counts.
      const s = this.value;
      if ((value & step.bit) === 0 || (s & step.bit) !== 0) continue;
      if ((s & step.requires) !== step.requires) {
        audit?.(
          R.initStatusOrder,
          `status bit 0x${step.bit.toString(16)} set while status is 0x${s.toString(16)} (it needs 0x${step.requires.toString(16)})`,
        );
        continue;
      }
      if (step.bit !== VIRTIO_CONFIG_S_FAILED && (s & VIRTIO_CONFIG_S_FAILED) !== 0) continue;
      if (!admit(step.bit)) continue;
      this.value |= step.bit;
      entered(step.bit);
    }
  }
}
