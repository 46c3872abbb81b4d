import type { Statement } from '../statement.js';

/** Family 'entropy' (see Family in ../statement.ts). */
export const entropyStatements: readonly Statement[] = [];
