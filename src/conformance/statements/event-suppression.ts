import type { Statement } from '../statement.js';

/** Family 'event-suppression' (see Family in ../statement.ts). */
export const eventSuppressionStatements: readonly Statement[] = [];
