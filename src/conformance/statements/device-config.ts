import type { Statement } from '../statement.js';

/** Family 'device-config' (see Family in ../statement.ts). */
export const deviceConfigStatements: readonly Statement[] = [];
