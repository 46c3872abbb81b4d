import type { Statement } from '../statement.js';

/** Family 'blk' (see Family in ../statement.ts). */
export const blkStatements: readonly Statement[] = [];
