import type { Statement } from '../statement.js';

/** Family 'pci-msix' (see Family in ../statement.ts). */
export const pciMsixStatements: readonly Statement[] = [];
