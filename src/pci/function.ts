/**
 * The device half's face to an emulator (shared/DESIGN.md): a PCI function the emulator calls
 * synchronously on every guest access, and the host services the emulator gives it.
 */

import type { AccessSize } from '../memory/access-size.js';
import type { GuestMemory } from '../memory/guest-memory.js';

export type BarKind = 'memory' | 'io';

/** What a BAR is, as the function declares it (sizes are powers of two). */
export interface BarDescriptor {
  readonly kind: BarKind;
  readonly size: number;
  /** 64-bit memory BAR (occupies this BAR slot and the next). */
  readonly is64: boolean;
  readonly prefetchable: boolean;
}

/** A BAR as currently programmed and decoded (command register enables its space). */
export interface DecodedBar extends BarDescriptor {
  readonly index: number;
  /** Bus address (memory) or port (I/O) the BAR is programmed to. */
  readonly base: number;
}

export interface PciFunction {
  /** Config space read of `size` bytes at `offset` (0..255), little-endian. Never throws for guest input. */
  configRead(offset: number, size: AccessSize): number;
  configWrite(offset: number, size: AccessSize, value: number): void;
  /** BAR slots 0..5; undefined for an unused slot or the upper half of a 64-bit BAR. */
  readonly bars: readonly (BarDescriptor | undefined)[];
  /** BARs the guest has programmed whose space is enabled in the command register, for routing. */
  decodedBars(): DecodedBar[];
  /** Access `size` bytes at `offset` inside BAR `bar`. Out-of-range or undecoded reads return 0. */
  barRead(bar: number, offset: number, size: AccessSize): number;
  barWrite(bar: number, offset: number, size: AccessSize, value: number): void;
}

/** Services an emulator gives a device: guest memory and interrupt lines. */
export interface DeviceHost {
  readonly memory: GuestMemory;
  /** Deliver an MSI/MSI-X message (a 32-bit write of `data` to `address`). */
  sendMsi(address: number, data: number): void;
  /** Drive the function's INTx pin (level-triggered). */
  setIntx(level: boolean): void;
}
