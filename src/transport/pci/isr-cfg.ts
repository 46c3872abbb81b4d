/**
 * The ISR status structure, device side (4.1.4.5): a read of any width anywhere in the block returns
 * the ISR and clears it (INTx drops); writes do nothing (as QEMU 7.2).
 */

import type { BarRegion } from '../../pci/bar-region.js';
import type { PciNotifications } from './pci-notifications.js';

/** The ISR block of BAR4 over `notifications` (which holds the ISR). */
export function isrCfgRegion(notifications: PciNotifications): BarRegion {
  return { read: () => notifications.readIsr(), write: () => {} };
}
