/**
 * A group member's legacy interface as the owner reaches it (2.12.1.1 "Legacy Interfaces"): the
 * registers of the legacy header (4.1.4.10: features, queue PFN/size/select/notify, status, ISR)
 * and the device-specific configuration after them. The PCI transport's legacy BAR0 decoder is one
 * (transport/pci/legacy-device.ts: a function's `legacy`); the device half never sees PCI, so it asks only for this.
 */

import type { AccessSize } from '../../memory/access-size.js';

export interface LegacyInterface {
  /** A register access at `offset` of the legacy header and device configuration, as BAR0 takes it. */
  read(offset: number, size: AccessSize): number;
  write(offset: number, size: AccessSize, value: number): void;
  /** Where the device-specific configuration starts (20, or 24 while MSI-X is enabled). */
  readonly deviceConfigOffset: number;
  /** Its length. */
  readonly deviceConfigSize: number;
}
