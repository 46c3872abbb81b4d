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
export const KNOWN_OPEN: readonly KnownOpen[] = [
  {
    target: 'hostile-device',
    match: /the blk driver did not settle/,
    summary:
      'blk driver: a request needing more descriptors than the ring has (e.g. queueSize 2: header, data, status) is never submitted and never fails; request-queue.ts submitRound breaks on numFree < chain length even with nothing in flight (and before an indirect table could be used)',
  },
];

export function knownOpen(target: string, message: string): KnownOpen | undefined {
  return KNOWN_OPEN.find((k) => k.target === target && k.match.test(message));
}
