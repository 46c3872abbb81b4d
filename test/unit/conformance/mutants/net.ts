import type { Mutants } from './mutant.js';

export const netMutants: Mutants = {};
