/**
 * Findings reported to their owners and not fixed yet. A campaign still saves and prints them
 * ("known open"), but they do not fail `--ci`; each has a TODO regression file in fuzz/corpus and
 * a line in fuzz/RESULTS.md. Remove the entry when the fix lands (the regression then must pass).
 */

export interface KnownOpen {
  readonly target: string;
  /** Matches the finding's message. */
  readonly match: RegExp;
  readonly summary: string;
}

/** Findings 1-9 of fuzz/RESULTS.md are fixed; none is open. */
export const KNOWN_OPEN: readonly KnownOpen[] = [];

export function knownOpen(target: string, message: string): KnownOpen | undefined {
  return KNOWN_OPEN.find((k) => k.target === target && k.match.test(message));
}
