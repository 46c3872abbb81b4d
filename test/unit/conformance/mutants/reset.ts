import type { Mutants } from './mutant.js';

export const resetMutants: Mutants = {};
