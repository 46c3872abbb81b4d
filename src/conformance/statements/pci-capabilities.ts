import type { Statement } from '../statement.js';

/** Family 'pci-capabilities' (see Family in ../statement.ts). */
export const pciCapabilitiesStatements: readonly Statement[] = [];
