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

/** Findings 1-8 of fuzz/RESULTS.md are fixed; 9 is open. */
export const KNOWN_OPEN: readonly KnownOpen[] = [
  {
    target: 'hostile-device',
    // A ring field (used.idx or event field: 2 bytes; the packed device event area: 4) of a freed ring.
    match: /refresh of \[0x[0-9a-f]+, \+[24]\) outside every live DMA allocation/,
    summary:
      'finding 9: a publish() still running when close() destroys the ring reads (and may write) the freed ring (split and packed driver rings)',
  },
];

export function knownOpen(target: string, message: string): KnownOpen | undefined {
  return KNOWN_OPEN.find((k) => k.target === target && k.match.test(message));
}
