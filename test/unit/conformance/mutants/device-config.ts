import type { Mutants } from './mutant.js';

export const deviceConfigMutants: Mutants = {};
