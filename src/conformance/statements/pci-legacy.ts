import type { Statement } from '../statement.js';

/** Family 'pci-legacy' (see Family in ../statement.ts). */
export const pciLegacyStatements: readonly Statement[] = [];
