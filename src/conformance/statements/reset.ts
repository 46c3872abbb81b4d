import type { Statement } from '../statement.js';

/** Family 'reset' (see Family in ../statement.ts). */
export const resetStatements: readonly Statement[] = [];
