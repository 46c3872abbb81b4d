import type { Mutants } from './mutant.js';

export const consoleMutants: Mutants = {};
