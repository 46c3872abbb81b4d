/**
 * Where a bus-0 function's INTx pin arrives at the IOAPIC in QEMU's two x86 machines, with no
 * firmware to set up routing or fill in the Interrupt Line register. These are chipset facts (QEMU
 * hw/pci-host/i440fx.c + hw/isa/piix3.c, hw/isa/lpc_ich9.c), not virtio ones.
 *
 * pc (i440FX/PIIX3): slot and pin swizzle onto PIRQA..D; the PIIX3's PIRQ route control registers
 * (config 0x60..0x63 of 00:01.0, reset to 0x80 = disabled) name the ISA IRQ each PIRQ drives, and
 * ISA IRQ n is IOAPIC input n.
 *
 * q35 (ICH9): every PIRQ A..H drives IOAPIC input 16..23 directly (APIC mode needs no set-up); the
 * chipset's per-slot routing sends slots 25..29 and 31 INTA..D to PIRQA..D, slot 30 (the DMI-to-PCI
 * bridge) to PIRQE..H, and every other slot to PIRQ E..H by (slot + pin) mod 4.
 */

import { bdf } from '../../bus/pci-bus.js';
import type { QemuMachine } from './qemu-process.js';

/** The PIIX3 PCI-to-ISA bridge of `-M pc`. */
export const PIIX3_BDF = bdf(0, 1, 0);
/** PIIX3 PIRQRC[A:D]: one byte per PIRQ, the ISA IRQ it drives (bit 7 set = disabled). */
export const PIIX3_PIRQRC = 0x60;
/** The ISA IRQs we route PIRQA..D to, as SeaBIOS does: free lines, not 0/1/2/8/9 or the IDE ones. */
const PC_PIRQ_ISA_IRQS: readonly number[] = [10, 10, 11, 11];
/** PIRQRC[A:D] as one little-endian dword for a single 4-byte config write. */
export const PIIX3_PIRQRC_VALUE = PC_PIRQ_ISA_IRQS.reduce((v, irq, i) => v | (irq << (8 * i)), 0) >>> 0;

/** ICH9: PIRQ n drives IOAPIC input 16 + n. */
const ICH9_PIRQ_GSI_BASE = 16;
const ICH9_DMI_BRIDGE_SLOT = 30;
const ICH9_CHIPSET_SLOTS = new Set([25, 26, 27, 28, 29, 31]);

/** The QOM path `irq_intercept_in` takes for the IOAPIC on both machines. */
export const IOAPIC_QOM_PATH = 'ioapic';

/**
 * The IOAPIC input that INTx pin `pin` (1 = INTA .. 4 = INTD) of device `slot` on bus 0 drives,
 * or undefined for pin 0 (no INTx) and invalid pins.
 */
export function ioapicInputOf(machine: QemuMachine, slot: number, pin: number): number | undefined {
  if (!Number.isInteger(pin) || pin < 1 || pin > 4 || !Number.isInteger(slot) || slot < 0 || slot > 31) return undefined;
  const intx = pin - 1;
  if (machine === 'pc') return PC_PIRQ_ISA_IRQS[(slot - 1 + intx) & 3];
  let pirq: number;
  if (ICH9_CHIPSET_SLOTS.has(slot)) pirq = intx;
  else if (slot === ICH9_DMI_BRIDGE_SLOT) pirq = intx + 4;
  else pirq = ((slot + intx) % 4) + 4;
  return ICH9_PIRQ_GSI_BASE + pirq;
}
