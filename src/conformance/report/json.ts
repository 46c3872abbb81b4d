/**
 * The results as JSON (`results.json`): a versioned document whose field names are those of
 * result.ts. A change of meaning or a removed field bumps {@link RESULTS_SCHEMA}; a new optional
 * field does not.
 */

import type { TargetResults } from '../result.js';

export const RESULTS_SCHEMA = 'virtio-ts/conformance-results/1';

export interface ResultsDocument {
  readonly schema: typeof RESULTS_SCHEMA;
  /** The spec version the catalogue follows. */
  readonly spec: string;
  readonly targets: readonly TargetResults[];
}

export function resultsDocument(targets: readonly TargetResults[]): ResultsDocument {
  return { schema: RESULTS_SCHEMA, spec: 'virtio 1.4', targets };
}

export function formatJson(targets: readonly TargetResults[]): string {
  return `${JSON.stringify(resultsDocument(targets), null, 2)}\n`;
}
