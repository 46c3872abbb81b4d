import type { Mutants } from './mutant.js';

export const notificationsMutants: Mutants = {};
