import type { Mutants } from './mutant.js';

export const entropyMutants: Mutants = {};
