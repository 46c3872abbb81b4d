import type { Mutants } from './mutant.js';

export const featuresMutants: Mutants = {};
