import type { Statement } from '../statement.js';

/** Family 'initialization' (see Family in ../statement.ts). */
export const initializationStatements: readonly Statement[] = [];
