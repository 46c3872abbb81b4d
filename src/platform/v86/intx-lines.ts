/**
 * INTx for the functions on v86's bus: each function's pin reaches an interrupt line through v86's
 * PIRQ routing, functions sharing a line are counted so one does not lower it for another, and a
 * level raised while the CPU is mid-instruction is delivered at the next instruction boundary.
 */

import type { PciFunction } from '../../pci/function.js';
import { PCI_INTERRUPT_PIN } from '../../spec/pci.js';
import type { GuestAccess } from './guest-access.js';
import type { V86GuestMemory } from './guest-memory.js';
import { V86_LOOP_COUNTER, type V86Cpu } from './internals.js';

/** EFLAGS.IF: the CPU takes maskable interrupts. */
const EFLAGS_IF = 0x200;
/** PIIX3 PIRQ route control registers in the ISA bridge's config space (what v86's raise_irq reads). */
const PIIX_PIRQ_ROUTE = 0x60;

/** A function as far as its INTx goes. */
export interface IntxSource {
  /** devfn on bus 0 (slot << 3 | function). */
  readonly devfn: number;
  readonly fn: PciFunction;
  readonly memory: V86GuestMemory;
  /** The level the function drives. */
  intx: boolean;
  /** The line it counts on while asserted, else -1. */
  intxLine: number;
}

export class IntxLines {
  /** Asserted INTx count per interrupt line, so functions sharing a line don't lower it for each other. */
  private readonly lineCount = new Map<number, number>();
  /** Level last driven on each line, and a devfn v86 routes to it (raise_irq/lower_irq take a devfn). */
  private readonly lineDriven = new Map<number, boolean>();
  private readonly lineDevfn = new Map<number, number>();
  /** The instruction counter is ahead by V86_LOOP_COUNTER to end the CPU's run (see deliverAtBoundary). */
  private runCut = false;
  private deliveryQueued = false;

  constructor(
    private readonly cpu: V86Cpu,
    private readonly access: GuestAccess,
  ) {
    this.takeRunEnd();
  }

  /** Drive `source`'s INTx to `level`. */
  set(source: IntxSource, level: boolean): void {
    if (source.intx === level) return;
    source.intx = level;
    if (level) {
      source.memory.flushDirty();
      const line = this.lineOf(source);
      if (line === undefined) return; // the function has no INTx pin
      source.intxLine = line;
      this.lineDevfn.set(line, source.devfn);
      this.lineCount.set(line, (this.lineCount.get(line) ?? 0) + 1);
    } else if (source.intxLine >= 0) {
      this.lineCount.set(source.intxLine, (this.lineCount.get(source.intxLine) ?? 1) - 1);
      source.intxLine = -1;
    }
    this.driveLines();
  }

  /**
   * Lower each line of `sources` that none of them asserts, after v86 restored a saved state whose
   * interrupt controller may hold levels of the saving run's functions (V86PciAdapter.syncIntxAfterRestore).
   */
  syncAfterRestore(sources: Iterable<IntxSource>): void {
    for (const source of sources) {
      const line = this.lineOf(source);
      if (line === undefined || (this.lineCount.get(line) ?? 0) > 0) continue;
      this.cpu.devices.pci.lower_irq(source.devfn);
      this.lineDriven.set(line, false);
    }
  }

  /**
   * The interrupt line v86's raise_irq uses for a devfn: PIRQ register (pin - 1 + slot - 1) & 3 of
   * the ISA bridge (relies on pci.isa_bridge_space8 and the pin in v86's config copy).
   */
  private lineOf(source: IntxSource): number | undefined {
    const pin = source.fn.configRead(PCI_INTERRUPT_PIN, 1);
    if (pin < 1 || pin > 4) return undefined;
    return this.cpu.devices.pci.isa_bridge_space8[PIIX_PIRQ_ROUTE + ((pin - 1 + (source.devfn >> 3) - 1) & 3)]!;
  }

  /**
   * Drive each line to "some function asserts it", at once: the interrupt controller sees the level
   * when the function changes it. v86's raise_irq/lower_irq also deliver a pending interrupt on the
   * spot if the CPU takes interrupts, even mid-instruction; so while a guest access is being served
   * with IF set, IF reads clear for the duration of the call (nothing is delivered) and the interrupt
   * waits, pending, for v86's next check between instructions, which deliverAtBoundary brings forward.
   * With IF clear (the usual case: an ISR read in the guest's interrupt handler) nothing can be
   * delivered anyway.
   */
  private driveLines(): void {
    const flags = this.cpu.flags;
    const hold = this.access.active && (flags[0]! & EFLAGS_IF) !== 0;
    const pci = this.cpu.devices.pci;
    let changed = false;
    if (hold) flags[0] = flags[0]! & ~EFLAGS_IF;
    try {
      for (const [line, count] of this.lineCount) {
        const level = count > 0;
        if ((this.lineDriven.get(line) ?? false) === level) continue;
        this.lineDriven.set(line, level);
        changed = true;
        const devfn = this.lineDevfn.get(line)!;
        if (level) pci.raise_irq(devfn);
        else pci.lower_irq(devfn);
      }
    } finally {
      if (hold) flags[0] = flags[0]! | EFLAGS_IF;
    }
    if (hold && changed) this.deliverAtBoundary();
  }

  /**
   * Have v86 take a pending interrupt at its next return to the CPU loop (when compiled code or the
   * interpreter leaves the block it runs), as it takes its timers' interrupts, rather than when its
   * time slice ends: the instruction counter jumps ahead by a whole run, so do_many_cycles_native
   * stops there and main_loop calls handle_irqs; the run's end (takeRunEnd) takes the jump back. (v86
   * also counts the jump as heat for the block the access came from, which makes v86 compile a hot
   * block sooner, nothing else.) When the access was not made by the running CPU (a host-side
   * access, a halted guest), a microtask delivers once the caller's code is done, between
   * instructions.
   */
  private deliverAtBoundary(): void {
    if (!this.runCut) {
      this.runCut = true;
      this.cpu.instruction_counter[0] = (this.cpu.instruction_counter[0]! + V86_LOOP_COUNTER) >>> 0;
    }
    if (this.deliveryQueued) return;
    this.deliveryQueued = true;
    queueMicrotask(() => {
      this.deliveryQueued = false;
      this.cpu.handle_irqs();
    });
  }

  /** Wraps run_hardware_timers, which main_loop calls when a CPU run ends, to undo deliverAtBoundary's jump. */
  private takeRunEnd(): void {
    const cpu = this.cpu;
    const v86Timers = cpu.run_hardware_timers;
    cpu.run_hardware_timers = (acpiEnabled: boolean, now: number) => {
      if (this.runCut) {
        this.runCut = false;
        cpu.instruction_counter[0] = (cpu.instruction_counter[0]! - V86_LOOP_COUNTER) >>> 0;
      }
      return v86Timers.call(cpu, acpiEnabled, now);
    };
  }
}
