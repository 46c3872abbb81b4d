import type { Statement } from '../statement.js';

/** Family 'net' (see Family in ../statement.ts). */
export const netStatements: readonly Statement[] = [];
