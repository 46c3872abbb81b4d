import type { Statement } from '../statement.js';

/** Family 'pci-cfg-access' (see Family in ../statement.ts). */
export const pciCfgAccessStatements: readonly Statement[] = [];
