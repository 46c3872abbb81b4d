/**
 * Wraps any PciBus and records every access the driver makes through it, in order, so a test can
 * assert what a driver touched (which registers, which widths, which values) and what it never
 * touched. Accesses are forwarded unchanged. With `keep`, only the last `keep` accesses are kept (the
 * conformance engine's evidence: a long check must not grow an unbounded log).
 */

import type { Bdf, BusResources, InterruptEvent, PciBus } from '../bus/pci-bus.js';
import type { DmaMemory } from '../memory/dma.js';
import type { AccessSize } from '../memory/access-size.js';
import { UsageError } from '../errors.js';

export interface RecordedAccess {
  readonly op: 'configRead' | 'configWrite' | 'memRead' | 'memWrite' | 'ioRead' | 'ioWrite';
  /** Config offset, or the bus address / port. */
  readonly addr: number;
  readonly size: AccessSize;
  /** Value written, or value read. */
  readonly value: number;
}

export interface RecordingBusOptions {
  /** Keep only the last `keep` accesses (default: every access). */
  readonly keep?: number;
}

export class RecordingBus implements PciBus {
  readonly log: RecordedAccess[] = [];
  readonly name: string;
  private readonly keep: number;

  constructor(
    readonly inner: PciBus,
    options: RecordingBusOptions = {},
  ) {
    this.name = `recording(${inner.name})`;
    this.keep = options.keep ?? Infinity;
    if (!(this.keep >= 1)) throw new UsageError(`RecordingBus keep ${this.keep}: must be at least 1`);
  }

  get dma(): DmaMemory {
    return this.inner.dma;
  }
  get resources(): BusResources | undefined {
    return this.inner.resources;
  }

  /** Accesses of kind `op` whose address lies in [base, base + size). */
  within(op: RecordedAccess['op'], base: number, size: number): RecordedAccess[] {
    return this.log.filter((a) => a.op === op && a.addr >= base && a.addr < base + size);
  }

  private record(access: RecordedAccess): void {
    this.log.push(access);
    if (this.log.length > this.keep) this.log.splice(0, this.log.length - this.keep);
  }

  async configRead(fn: Bdf, offset: number, size: AccessSize): Promise<number> {
    const value = await this.inner.configRead(fn, offset, size);
    this.record({ op: 'configRead', addr: offset, size, value });
    return value;
  }
  async configWrite(fn: Bdf, offset: number, size: AccessSize, value: number): Promise<void> {
    this.record({ op: 'configWrite', addr: offset, size, value });
    await this.inner.configWrite(fn, offset, size, value);
  }
  async memRead(addr: number, size: AccessSize): Promise<number> {
    const value = await this.inner.memRead(addr, size);
    this.record({ op: 'memRead', addr, size, value });
    return value;
  }
  async memWrite(addr: number, size: AccessSize, value: number): Promise<void> {
    this.record({ op: 'memWrite', addr, size, value });
    await this.inner.memWrite(addr, size, value);
  }
  async ioRead(port: number, size: AccessSize): Promise<number> {
    const value = await this.inner.ioRead(port, size);
    this.record({ op: 'ioRead', addr: port, size, value });
    return value;
  }
  async ioWrite(port: number, size: AccessSize, value: number): Promise<void> {
    this.record({ op: 'ioWrite', addr: port, size, value });
    await this.inner.ioWrite(port, size, value);
  }
  onInterrupt(fn: Bdf, listener: (event: InterruptEvent) => void): () => void {
    return this.inner.onInterrupt(fn, listener);
  }
  msiMessage(fn: Bdf, vector: number): { address: number; data: number } | undefined {
    return this.inner.msiMessage(fn, vector);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}
