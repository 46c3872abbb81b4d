/**
 * A mutant: one of our devices with one normative rule removed, for the check of that rule to fail
 * on (issue 14, "no vacuous check"). Each family's file (mutants/<family>.ts) exports
 * `<camelFamily>Mutants`, keyed by statement ID; the harness test runs every executable check on
 * `original` (it must pass, or be not applicable for a reason) and on `mutant` (it must fail).
 */

import type { Bdf } from '../../../../src/bus/pci-bus.js';
import type { Machine } from '../../../../src/platform/machine.js';

export interface Mutant {
  /** The rule removed, in words (shown when the check passes on the mutant). */
  readonly breaks: string;
  /** Plugs the unmodified device into `machine`; where it sits. */
  original(machine: Machine): Bdf;
  /** Plugs the mutant (the same device with the rule removed) into `machine`; where it sits. */
  mutant(machine: Machine): Bdf;
}

/** A family's mutants, by statement ID. */
export type Mutants = Readonly<Record<string, Mutant>>;
