/**
 * The catalogue: every statement of every family, in spec order within a family. IDs are unique
 * (checked by the unit tests).
 */

import type { Family, Statement } from './statement.js';
import { pciHeaderStatements } from './statements/pci-header.js';
import { pciCapabilitiesStatements } from './statements/pci-capabilities.js';
import { pciCommonCfgStatements } from './statements/pci-common-cfg.js';
import { pciNotifyStatements } from './statements/pci-notify.js';
import { pciIsrStatements } from './statements/pci-isr.js';
import { pciCfgAccessStatements } from './statements/pci-cfg-access.js';
import { pciLegacyStatements } from './statements/pci-legacy.js';
import { pciMsixStatements } from './statements/pci-msix.js';
import { statusStatements } from './statements/status.js';
import { featuresStatements } from './statements/features.js';
import { notificationsStatements } from './statements/notifications.js';
import { deviceConfigStatements } from './statements/device-config.js';
import { resetStatements } from './statements/reset.js';
import { splitRingStatements } from './statements/split-ring.js';
import { packedRingStatements } from './statements/packed-ring.js';
import { eventSuppressionStatements } from './statements/event-suppression.js';
import { initializationStatements } from './statements/initialization.js';
import { blkStatements } from './statements/blk.js';
import { netStatements } from './statements/net.js';
import { consoleStatements } from './statements/console.js';
import { entropyStatements } from './statements/entropy.js';
import { adminStatements } from './statements/admin.js';

export const CATALOGUE: readonly Statement[] = [
  ...pciHeaderStatements,
  ...pciCapabilitiesStatements,
  ...pciCommonCfgStatements,
  ...pciNotifyStatements,
  ...pciIsrStatements,
  ...pciCfgAccessStatements,
  ...pciLegacyStatements,
  ...pciMsixStatements,
  ...statusStatements,
  ...featuresStatements,
  ...notificationsStatements,
  ...deviceConfigStatements,
  ...resetStatements,
  ...splitRingStatements,
  ...packedRingStatements,
  ...eventSuppressionStatements,
  ...initializationStatements,
  ...blkStatements,
  ...netStatements,
  ...consoleStatements,
  ...entropyStatements,
  ...adminStatements,
];

/** Every family, in the catalogue's order (a Record, so that the compiler sees each one named once). */
const FAMILY_SET: Readonly<Record<Family, true>> = {
  'pci-header': true,
  'pci-capabilities': true,
  'pci-common-cfg': true,
  'pci-notify': true,
  'pci-isr': true,
  'pci-cfg-access': true,
  'pci-legacy': true,
  'pci-msix': true,
  status: true,
  features: true,
  notifications: true,
  'device-config': true,
  reset: true,
  'split-ring': true,
  'packed-ring': true,
  'event-suppression': true,
  initialization: true,
  blk: true,
  net: true,
  console: true,
  entropy: true,
  admin: true,
};

export const FAMILIES = Object.keys(FAMILY_SET) as readonly Family[];

export function isFamily(name: string): name is Family {
  return Object.hasOwn(FAMILY_SET, name);
}
