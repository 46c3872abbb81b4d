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
export const KNOWN_OPEN: readonly KnownOpen[] = [
  {
    target: 'hostile-device',
    match: /driver: more than \d+ bus operations/,
    summary:
      'MSI-X vector plan (transport/pci/msix-driver.ts tryPlan): programs a vector for every queue the device claims (num_queues up to 65535), not the queues the driver sets up, so a hostile num_queues costs ~3 bus accesses per claimed queue (~200,000 accesses)',
  },
];

export function knownOpen(target: string, message: string): KnownOpen | undefined {
  return KNOWN_OPEN.find((k) => k.target === target && k.match.test(message));
}
