/**
 * The driver audit (issue 14): a device in audit mode records every driver-side normative statement
 * (src/spec/driver-requirements.ts) the driver in front of it breaks, with the register access that
 * broke it. Opt-in: a device without an audit has none of this on its paths. Bounded: a statement
 * broken again only counts (the first occurrence is kept), so a driver breaking a rule on every
 * request costs a counter, not memory.
 *
 *   const audit = new DriverAudit();
 *   machine.plugVirtio(device, { audit });
 *   ... drive it ...
 *   for (const f of audit.findings) console.log(f.requirement.id, f.count, f.access, f.detail);
 */

import type { AccessSize } from '../memory/access-size.js';
import type { QueueFaultCode } from '../errors.js';
import { DRIVER_REQUIREMENTS as R, type DriverRequirement } from '../spec/driver-requirements.js';

/** One statement the driver broke: the first time in full, then how often. */
export interface DriverAuditFinding {
  readonly requirement: DriverRequirement;
  /** What the driver did the first time, in the device's terms. */
  readonly detail: string;
  /** The register access that broke it the first time, or what the device was doing. */
  readonly access: string;
  /** Times it was broken. */
  readonly count: number;
}

interface MutableFinding {
  readonly requirement: DriverRequirement;
  readonly detail: string;
  readonly access: string;
  count: number;
}

/** Describes a register offset of a BAR for findings (e.g. "common_cfg+0x16"). */
export type RegisterLabel = (offset: number) => string;

/** See the file comment. One audit watches one device. */
export class DriverAudit {
  private readonly byId = new Map<string, MutableFinding>();
  // The register access being served, kept as fields (no allocation per access) and formatted only
  // when a finding is recorded.
  private accessBar = -1;
  private accessWrite = false;
  private accessOffset = 0;
  private accessSize: AccessSize = 1;
  private accessValue = 0;
  private accessLabel: RegisterLabel | undefined;

  /** What records into this audit: a function the device layers call (see DriverAuditSink). */
  readonly record = (requirement: DriverRequirement, detail: string): void => {
    const found = this.byId.get(requirement.id);
    if (found !== undefined) {
      found.count++;
      return;
    }
    this.byId.set(requirement.id, { requirement, detail, access: this.describeAccess(), count: 1 });
  };

  /** The findings so far, in the order first seen. */
  get findings(): readonly DriverAuditFinding[] {
    return [...this.byId.values()];
  }

  /** Forget every finding. */
  clear(): void {
    this.byId.clear();
  }

  /** The transport is serving this driver access (until {@link leave}): findings recorded meanwhile name it. */
  enter(bar: number, write: boolean, offset: number, size: AccessSize, value: number, label: RegisterLabel): void {
    this.accessBar = bar;
    this.accessWrite = write;
    this.accessOffset = offset;
    this.accessSize = size;
    this.accessValue = value;
    this.accessLabel = label;
  }
  /** The access is served: findings from now on come from the device's own work. */
  leave(): void {
    this.accessBar = -1;
  }

  private describeAccess(): string {
    if (this.accessBar < 0) return 'device processing (no register access)';
    const op = `${this.accessWrite ? 'write' : 'read'}${this.accessSize * 8}`;
    const value = this.accessWrite ? ` 0x${(this.accessValue >>> 0).toString(16)}` : '';
    const where = `BAR${this.accessBar}+0x${this.accessOffset.toString(16)} (${this.accessLabel!(this.accessOffset)})`;
    return `${op}${value} at ${where}`;
  }
}

/** The statement a ring fault (a guest fault the rings detect) shows broken, per ring format. */
const RING_FAULT_REQUIREMENTS: Partial<Record<QueueFaultCode, readonly [split: DriverRequirement, packed: DriverRequirement]>> = {
  ERR_QUEUE_RING_ADDRESS: [R.splitAlignment, R.packedAlignment],
  ERR_QUEUE_AVAIL_INDEX: [R.splitAvailIdx, R.splitAvailIdx],
  ERR_QUEUE_CHAIN_TOO_LONG: [R.splitChainLength, R.packedChainLength],
  ERR_QUEUE_CHAIN_PAST_AVAIL: [R.packedChainLength, R.packedChainLength],
  ERR_QUEUE_NESTED_INDIRECT: [R.splitIndirectNested, R.packedIndirectFlags],
  ERR_QUEUE_INDIRECT_WITH_NEXT: [R.splitIndirectNext, R.packedIndirectInList],
  ERR_QUEUE_INDIRECT_UNNEGOTIATED: [R.splitIndirectNegotiated, R.packedIndirectNegotiated],
  ERR_QUEUE_WRITE_BEFORE_READ: [R.splitFraming, R.packedFraming],
  ERR_QUEUE_HEAD_IN_USE: [R.cleanupExposedBuffers, R.cleanupExposedBuffers],
  ERR_QUEUE_BUFFER_ID_IN_USE: [R.cleanupExposedBuffers, R.cleanupExposedBuffers],
};

/** The statement the ring fault `code` shows the driver broke, on a packed or a split ring; undefined when none does. */
export function ringFaultRequirement(code: QueueFaultCode, packed: boolean): DriverRequirement | undefined {
  return RING_FAULT_REQUIREMENTS[code]?.[packed ? 1 : 0];
}
