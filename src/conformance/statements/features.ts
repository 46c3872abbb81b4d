import type { Statement } from '../statement.js';

/** Family 'features' (see Family in ../statement.ts). */
export const featuresStatements: readonly Statement[] = [];
