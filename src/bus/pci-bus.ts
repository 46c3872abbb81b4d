/**
 * The driver half's only view of the world (shared/DESIGN.md). The bus may be remote (QEMU over a
 * socket), so every access is async. Accesses on one bus are performed in the order issued.
 */

import type { AccessSize } from '../memory/access-size.js';
import type { DmaMemory } from '../memory/dma.js';

/** A PCI function's address as a bus/device/function number: bus << 8 | device << 3 | function. */
export type Bdf = number;

export function bdf(bus: number, device: number, fn: number): Bdf {
  return ((bus & 0xff) << 8) | ((device & 0x1f) << 3) | (fn & 0x7);
}

export function formatBdf(addr: Bdf): string {
  const hex = (n: number, w: number): string => n.toString(16).padStart(w, '0');
  return `${hex(addr >> 8, 2)}:${hex((addr >> 3) & 0x1f, 2)}.${addr & 7}`;
}

export type InterruptEvent =
  { readonly kind: 'intx'; readonly asserted: boolean } | { readonly kind: 'msi'; readonly address: number; readonly data: number };

/** Address windows the driver may assign BARs from when no firmware has done it. */
export interface BusResources {
  readonly mem32: { readonly base: number; readonly size: number };
  readonly mem64?: { readonly base: number; readonly size: number };
  readonly io: { readonly base: number; readonly size: number };
}

export interface PciBus {
  /** For messages: "in-process", "qemu-qtest (pc)", ... */
  readonly name: string;
  configRead(fn: Bdf, offset: number, size: AccessSize): Promise<number>;
  configWrite(fn: Bdf, offset: number, size: AccessSize, value: number): Promise<void>;
  memRead(addr: number, size: AccessSize): Promise<number>;
  memWrite(addr: number, size: AccessSize, value: number): Promise<void>;
  ioRead(port: number, size: AccessSize): Promise<number>;
  ioWrite(port: number, size: AccessSize, value: number): Promise<void>;
  readonly dma: DmaMemory;
  /** Where to put BARs that are not yet programmed; undefined when firmware assigns them. */
  readonly resources: BusResources | undefined;
  /** Listen for the function's interrupts; returns the unsubscribe function. */
  onInterrupt(fn: Bdf, listener: (event: InterruptEvent) => void): () => void;
  /**
   * The MSI message (address, data) the driver should program for vector `vector` of function `fn`
   * so that the bus can deliver it as an event; undefined when this bus cannot deliver MSI.
   */
  msiMessage(fn: Bdf, vector: number): { address: number; data: number } | undefined;
  close(): Promise<void>;
}
