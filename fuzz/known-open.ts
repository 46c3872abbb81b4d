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

/** The three console-driver findings of the first campaigns were fixed in 9617591. */
/** The blk driver's request-larger-than-the-ring finding was fixed: such a request now fails with ERR_DEVICE_QUEUE. */
/** The MSI-X vector plan's walk over every claimed queue was fixed: the shared plan tries queue 0, each queue gets its vector at set-up. */
export const KNOWN_OPEN: readonly KnownOpen[] = [];

export function knownOpen(target: string, message: string): KnownOpen | undefined {
  return KNOWN_OPEN.find((k) => k.target === target && k.match.test(message));
}
