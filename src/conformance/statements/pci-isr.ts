import type { Statement } from '../statement.js';

/** Family 'pci-isr' (see Family in ../statement.ts). */
export const pciIsrStatements: readonly Statement[] = [];
