import type { Statement } from '../statement.js';

/** Family 'packed-ring' (see Family in ../statement.ts). */
export const packedRingStatements: readonly Statement[] = [];
