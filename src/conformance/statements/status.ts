import type { Statement } from '../statement.js';

/** Family 'status' (see Family in ../statement.ts). */
export const statusStatements: readonly Statement[] = [];
