import type { Statement } from '../statement.js';

/** Family 'notifications' (see Family in ../statement.ts). */
export const notificationsStatements: readonly Statement[] = [];
