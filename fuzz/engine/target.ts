/** What a fuzz target module (fuzz/targets/<name>.ts) exports. */

import type { MutationShape } from './mutator.js';

export interface Seed {
  /** File-name-safe name; the corpus file is fuzz/corpus/<target>/<name>.bin. */
  readonly name: string;
  readonly data: Uint8Array;
}

export interface FuzzTargetModule {
  /** One line for `--list` and fuzz/RESULTS.md. */
  readonly description: string;
  readonly shape: MutationShape;
  /**
   * Runs one input from a fresh state. Returns normally when every guarantee held; throws a
   * {@link GuaranteeViolation} (or lets an unexpected exception escape) on a finding.
   */
  run(data: Uint8Array): void | Promise<void>;
  /** Named seed inputs: the CVE shapes and well-formed traffic the campaign starts from. */
  seeds(): readonly Seed[];
}
