import type { Statement } from '../statement.js';

/** Family 'pci-header' (see Family in ../statement.ts). */
export const pciHeaderStatements: readonly Statement[] = [];
