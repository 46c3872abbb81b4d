/**
 * A check's view of one function: the recording bus, the probe for the interface the check talks
 * through, a transport and our driver core on it, and `require`, which turns a mismatch into the
 * statement's ConformanceViolation.
 */

import type { Bdf, PciBus } from '../bus/pci-bus.js';
import { ConformanceViolation } from '../errors.js';
import { VirtioDriver } from '../driver/virtio-driver.js';
import { LegacyDriverTransport } from '../transport/pci/legacy-driver.js';
import { ModernDriverTransport } from '../transport/pci/modern-driver.js';
import type { DriverTransport } from '../transport/pci/driver-transport.js';
import { probe as probeFunction, type ProbeResult } from '../transport/pci/probe.js';
import type { CheckContext, Interface, Statement } from './statement.js';

export interface CheckContextOptions {
  readonly bus: PciBus;
  readonly fn: Bdf;
  readonly deviceType: number;
  readonly via: Interface;
  readonly transitional: boolean;
  readonly timeoutMs: number;
  readonly statement: Statement;
}

/** The context of one run of `options.statement`'s check; `close()` ends what the check opened. */
export class FunctionCheckContext implements CheckContext {
  readonly bus: PciBus;
  readonly fn: Bdf;
  readonly deviceType: number;
  readonly via: Interface;
  readonly transitional: boolean;
  readonly timeoutMs: number;
  /** What the check noted, in order. */
  readonly notes: string[] = [];
  private readonly statement: Statement;
  private probed: Promise<ProbeResult> | undefined;
  private readonly drivers: VirtioDriver[] = [];

  constructor(options: CheckContextOptions) {
    this.bus = options.bus;
    this.fn = options.fn;
    this.deviceType = options.deviceType;
    this.via = options.via;
    this.transitional = options.transitional;
    this.timeoutMs = options.timeoutMs;
    this.statement = options.statement;
  }

  probe(): Promise<ProbeResult> {
    this.probed ??= probeFunction(this.bus, this.fn, { forceLegacy: this.via === 'legacy' });
    return this.probed;
  }

  async transport(): Promise<DriverTransport> {
    const result = await this.probe();
    return result.kind === 'modern'
      ? new ModernDriverTransport(this.bus, result.layout, { resetTimeoutMs: this.timeoutMs })
      : new LegacyDriverTransport(this.bus, result.bar0, { resetTimeoutMs: this.timeoutMs });
  }

  async openDriver(options: Parameters<CheckContext['openDriver']>[0] = {}): Promise<VirtioDriver> {
    const driver = await VirtioDriver.open(this.bus, this.fn, {
      timeoutMs: this.timeoutMs,
      ...options,
      forceLegacy: this.via === 'legacy',
    });
    this.drivers.push(driver);
    return driver;
  }

  note(text: string): void {
    this.notes.push(text);
  }

  require(ok: boolean, found: string): asserts ok {
    if (!ok) throw new ConformanceViolation(this.statement.id, found);
  }

  /** Ends every driver the check opened (their queues and interrupt listeners). */
  async close(): Promise<void> {
    // A device that broke or died under the check may refuse the close; the engine replaces it then.
    for (const driver of this.drivers.splice(0)) await driver.close().catch(() => undefined);
  }
}
