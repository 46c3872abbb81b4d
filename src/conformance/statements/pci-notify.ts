import type { Statement } from '../statement.js';

/** Family 'pci-notify' (see Family in ../statement.ts). */
export const pciNotifyStatements: readonly Statement[] = [];
