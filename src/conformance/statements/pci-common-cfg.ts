import type { Statement } from '../statement.js';

/** Family 'pci-common-cfg' (see Family in ../statement.ts). */
export const pciCommonCfgStatements: readonly Statement[] = [];
