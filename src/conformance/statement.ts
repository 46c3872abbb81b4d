/**
 * The conformance catalogue's unit: one normative statement of the virtio spec (1.4), as a stable ID,
 * its section, a one-line paraphrase and its level, with either an executable check or the reason it
 * cannot be checked from the driver side. Device-side statements are checked against a device
 * through the driver-side bus; driver-side statements are what the audit (our devices watching a
 * driver) records: a driver-side statement is either `audited` (its ID is one of DRIVER_REQUIREMENTS,
 * src/spec/driver-requirements.ts, and it is built from that entry by auditedStatement) or
 * `uncheckable`, saying why the audit cannot see it.
 */

import type { Bdf, PciBus } from '../bus/pci-bus.js';
import type { DriverTransport } from '../transport/pci/driver-transport.js';
import type { ProbeResult } from '../transport/pci/probe.js';
import type { VirtioDriver, VirtioDriverOptions } from '../driver/virtio-driver.js';

/** RFC 2119 levels as the spec uses them. */
export type Level = 'MUST' | 'MUST NOT' | 'SHOULD' | 'SHOULD NOT';

/** Whose duty the statement is. */
export type Side = 'device' | 'driver';

/** Which interface of the function a check talks through. */
export type Interface = 'modern' | 'legacy';

/**
 * The families checks are grouped in (each family has its mutants in the unit tests, and its file
 * under statements/): the PCI transport (4.1), the basic facilities (2), the initialisation (3),
 * the device types (5).
 */
export type Family =
  | 'pci-header' // 4.1.2: IDs, revision, subsystem
  | 'pci-capabilities' // 4.1.4: the virtio vendor capabilities and the structures they point to
  | 'pci-common-cfg' // 4.1.4.3: common configuration fields
  | 'pci-notify' // 4.1.4.4, 4.1.5.2: notification structure and notifications
  | 'pci-isr' // 4.1.4.5, 4.1.5.3-4: ISR status and interrupts
  | 'pci-cfg-access' // 4.1.4.9: the PCI configuration access capability
  | 'pci-legacy' // 4.1.4.10, 4.1.5.1.x legacy: the legacy interface
  | 'pci-msix' // 4.1.4.x, 4.1.5.x: MSI-X vectors
  | 'status' // 2.1: device status field
  | 'features' // 2.2, 6: feature bits and their dependencies
  | 'notifications' // 2.3
  | 'device-config' // 2.5: device configuration space, config_generation
  | 'reset' // 2.4 device reset, 2.6.1 virtqueue reset
  | 'split-ring' // 2.7
  | 'packed-ring' // 2.8
  | 'event-suppression' // 2.7.7-2.7.10, 2.8.10, 2.8.14
  | 'initialization' // 3.1
  | 'blk' // 5.2
  | 'net' // 5.1
  | 'console' // 5.3
  | 'entropy' // 5.4
  | 'admin'; // 2.12, 2.13: group administration commands and the administration virtqueue

/** What a check reaches the device through. The bus records every access for the evidence. */
export interface CheckContext {
  /** The bus the target sits on, recording every access for the evidence. */
  readonly bus: PciBus;
  readonly fn: Bdf;
  /** Virtio device type (spec 5) of the function, from its PCI IDs. */
  readonly deviceType: number;
  /** The interface this check talks through (modern when the function has one, unless the check asks for legacy). */
  readonly via: Interface;
  /** Whether the function offers both interfaces (device ID 0x1000..0x103f with capabilities). */
  readonly transitional: boolean;
  /** Time any wait may take, in ms (the engine gives a check a fresh device when it hangs past its budget). */
  readonly timeoutMs: number;
  /** The probe's result for `via`; a ProbeError (the device failed the probe) fails the check with it. */
  probe(): Promise<ProbeResult>;
  /** A driver-side transport for `via`, on the probe's result: register-level access. */
  transport(): Promise<DriverTransport>;
  /**
   * Our driver core on the function, through `via` (reset, ACKNOWLEDGE, DRIVER done): for checks
   * that need negotiation, queues and data. Closed by the engine after the check.
   */
  openDriver(options?: Omit<VirtioDriverOptions, 'forceLegacy'>): Promise<VirtioDriver>;
  /** A fact for the evidence (what was done, what was seen). */
  note(text: string): void;
  /**
   * Fails the check unless `ok`: ConformanceViolation with the statement's ID, `found` saying what
   * was read or seen (the statement itself says what is required).
   */
  require(ok: boolean, found: string): asserts ok;
}

/** An executable device-side check. */
export interface Check {
  /** The interfaces it runs through (default: whichever the function has, modern first). */
  readonly via?: readonly Interface[];
  /**
   * Whether it applies to this function; a reason when it does not (e.g. "the device offers no
   * VIRTIO_F_EVENT_IDX"), reported as not applicable. Runs before `run`, with the same context.
   */
  applies?(ctx: CheckContext): Promise<string | undefined>;
  /** Resolves when the device conforms; ConformanceViolation (via ctx.require) when it does not. */
  run(ctx: CheckContext): Promise<void>;
}

export interface Statement {
  /** Stable ID: `<family>/<slug>`, e.g. "status/reset-reads-zero". Never reused for another statement. */
  readonly id: string;
  /** Spec 1.4 section of the normative statement, e.g. "2.1.2". */
  readonly section: string;
  readonly level: Level;
  readonly side: Side;
  readonly family: Family;
  /** One-line paraphrase in our words (never the spec's prose). */
  readonly text: string;
  /** The executable check (device side only), or... */
  readonly check?: Check;
  /** ...why it cannot be checked from the driver side (or, for driver statements, why the audit cannot see it). */
  readonly uncheckable?: string;
  /** Driver side only: the driver audit records it (the ID is a DRIVER_REQUIREMENTS ID; see auditedStatement). */
  readonly audited?: true;
}
