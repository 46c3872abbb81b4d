import type { Statement } from '../statement.js';

/** Family 'split-ring' (see Family in ../statement.ts). */
export const splitRingStatements: readonly Statement[] = [];
