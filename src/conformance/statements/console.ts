import type { Statement } from '../statement.js';

/** Family 'console' (see Family in ../statement.ts). */
export const consoleStatements: readonly Statement[] = [];
