/**
 * What the conformance engine runs against: a factory of sessions, each one function on a bus. The
 * CLI builds targets (our devices in-process, QEMU over qtest, v86's own devices), since this layer
 * may not import platforms. The engine asks for a fresh session whenever the last one hung or died.
 */

import type { Bdf, PciBus } from '../bus/pci-bus.js';

/** One device under test, reachable through the driver-side bus. */
export interface TargetSession {
  readonly bus: PciBus;
  /** The function under test. */
  readonly fn: Bdf;
  /**
   * Settles when the session ends on its own (the emulator exited, its connection closed), with
   * why; the running check is then reported as died. Undefined when the session cannot die.
   */
  readonly ended?: Promise<string>;
  /** Ends the session and whatever it started (processes, files); never throws. */
  close(): Promise<void>;
}

export interface ConformanceTarget {
  /** How the user named it, e.g. `ours:blk,mode=transitional`. */
  readonly label: string;
  /** What it is, in words, e.g. "our virtio-blk, transitional, MSI-X on, split ring". */
  readonly describe: string;
  /** A fresh device in its reset state. */
  open(): Promise<TargetSession>;
}
