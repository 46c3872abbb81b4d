import type { Mutants } from './mutant.js';

export const statusMutants: Mutants = {};
