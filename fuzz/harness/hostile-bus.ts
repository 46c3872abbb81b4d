/**
 * A PciBus in front of a real in-process device whose every answer the fuzz input may replace: each
 * config, MMIO and port read may come back as the device's value, a bit-flipped one, all-ones or any
 * value the input picks; writes may be dropped; and each `dma.refresh` (the driver's "let me see
 * what the device wrote": used.idx, used elements, data) may find the range overwritten with
 * input-chosen bytes, ids and lengths. When the input runs out the device turns honest, so a driver
 * can still finish: every outcome is then success or a typed error, never a hang.
 *
 * Every bus operation counts against OPERATION_BUDGET: a driver that loops without end (even one
 * that yields only to microtasks, starving timers) exhausts it, the operation then throws, and the
 * harness reports a hang instead of freezing.
 */

import { BusError } from '../../src/errors.js';
import type { Bdf, BusResources, InterruptEvent, PciBus } from '../../src/bus/pci-bus.js';
import type { DmaBuffer, DmaMemory } from '../../src/memory/dma.js';
import type { GuestMemory } from '../../src/memory/guest-memory.js';
import type { AccessSize } from '../../src/memory/access-size.js';
import { GuaranteeViolation } from '../engine/guarantees.js';
import type { FuzzInput } from '../engine/input.js';

const MASK: Record<AccessSize, number> = { 1: 0xff, 2: 0xffff, 4: 0xffff_ffff };
/** Bus operations one run may make; an honest open/read/write/close needs a few thousand. */
export const OPERATION_BUDGET = 10_000;

/** Thrown by the bus once the budget is gone: a hang finding, whoever catches it first. */
export class OperationBudgetExceeded extends GuaranteeViolation {
  constructor() {
    super('hang', `more than ${OPERATION_BUDGET} bus operations: a loop without end, or one the device made unboundedly long`);
  }
}

export class HostileBus implements PciBus {
  readonly name = 'hostile';
  readonly dma: DmaMemory;
  /** Tampered answers so far (for the harness: a run with none must succeed). */
  tampered = 0;
  operations = 0;
  /** Set once the operation budget ran out (the driver loops without end). */
  exhausted = false;
  /** After close() every operation fails, as on a remote bus whose peer is gone. */
  private closed = false;

  constructor(
    private readonly inner: PciBus,
    memory: GuestMemory,
    private readonly input: FuzzInput,
  ) {
    this.dma = new HostileDma(inner.dma, memory, input, this);
  }

  /** Count one operation; throws once the budget is gone, or BusError once the bus is closed. */
  spend(): void {
    if (this.closed) throw new BusError('hostile bus closed');
    if (++this.operations > OPERATION_BUDGET) {
      this.exhausted = true;
      throw new OperationBudgetExceeded();
    }
  }

  get resources(): BusResources | undefined {
    return this.inner.resources;
  }

  /** The device's value, or a replacement the input chooses (unsigned, as every bus returns them). */
  private answer(value: number, size: AccessSize): number {
    const d = this.input.u8();
    if (d < 0xc0) return value;
    this.tampered++;
    if (d < 0xd0) return ((value ^ (1 << this.input.u8() % (8 * size))) & MASK[size]) >>> 0;
    if (d < 0xd8) return MASK[size];
    if (d < 0xe0) return 0;
    return (this.input.u32() & MASK[size]) >>> 0;
  }
  /** Whether the device ignores this write. */
  private dropped(): boolean {
    const drop = this.input.u8() >= 0xf8;
    if (drop) this.tampered++;
    return drop;
  }

  async configRead(fn: Bdf, offset: number, size: AccessSize): Promise<number> {
    this.spend();
    return this.answer(await this.inner.configRead(fn, offset, size), size);
  }
  async configWrite(fn: Bdf, offset: number, size: AccessSize, value: number): Promise<void> {
    this.spend();
    if (!this.dropped()) await this.inner.configWrite(fn, offset, size, value);
  }
  async memRead(addr: number, size: AccessSize): Promise<number> {
    this.spend();
    return this.answer(await this.inner.memRead(addr, size), size);
  }
  async memWrite(addr: number, size: AccessSize, value: number): Promise<void> {
    this.spend();
    if (!this.dropped()) await this.inner.memWrite(addr, size, value);
  }
  async ioRead(port: number, size: AccessSize): Promise<number> {
    this.spend();
    return this.answer(await this.inner.ioRead(port, size), size);
  }
  async ioWrite(port: number, size: AccessSize, value: number): Promise<void> {
    this.spend();
    if (!this.dropped()) await this.inner.ioWrite(port, size, value);
  }
  onInterrupt(fn: Bdf, listener: (event: InterruptEvent) => void): () => void {
    return this.inner.onInterrupt(fn, listener);
  }
  msiMessage(fn: Bdf, vector: number): { address: number; data: number } | undefined {
    return this.inner.msiMessage(fn, vector);
  }
  close(): Promise<void> {
    this.closed = true;
    return this.inner.close();
  }
}

class HostileDma implements DmaMemory {
  constructor(
    private readonly inner: DmaMemory,
    private readonly memory: GuestMemory,
    private readonly input: FuzzInput,
    private readonly bus: HostileBus,
  ) {}

  alloc(size: number, align: number): DmaBuffer {
    return this.inner.alloc(size, align);
  }
  free(buffer: DmaBuffer): void {
    this.inner.free(buffer);
  }
  async flush(addr: number, len: number): Promise<void> {
    // async: a failing bus rejects, as a remote one would, rather than throwing at the call.
    this.bus.spend();
    return this.inner.flush(addr, len);
  }

  /** Before the driver looks: maybe the device rewrote the range (a used.idx, a used element, data). */
  async refresh(addr: number, len: number): Promise<void> {
    this.bus.spend();
    await this.inner.refresh(addr, len);
    const d = this.input.u8();
    if (d < 0xd0 || !this.memory.contains(addr, len)) return;
    this.bus.tampered++;
    const m = this.memory;
    if (len === 2) m.write16(addr, d & 1 ? this.input.u8() : this.input.u16());
    else if (len % 8 === 0 && len <= 64) {
      // used elements: ids near the queue's range (or anything), lengths small (or anything)
      for (let at = addr; at < addr + len; at += 8) {
        m.write32(at, d & 1 ? this.input.u8() % 32 : this.input.u32());
        m.write32(at + 4, d & 2 ? this.input.u16() : this.input.u32());
      }
    } else m.write(addr, this.input.bytes(Math.min(len, 4096)));
  }
}
