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

export const KNOWN_OPEN: readonly KnownOpen[] = [
  {
    target: 'hostile-device',
    match: /console(-multiport)? driver: console port write did not settle/,
    summary: 'console driver: ConsoleDriverPort.write has no overall timeout; a device that never takes the bytes makes it wait forever',
  },
  {
    target: 'hostile-device',
    match: /console(-multiport)? driver: more than \d+ bus operations/,
    summary: 'console driver: receive loops re-post and kick forever when the device returns every buffer with used len 0 (microtask livelock)',
  },
  {
    target: 'hostile-device',
    match: /unhandled rejection in the console(-multiport)? driver/,
    summary: 'console driver: the control receive loop awaits dma.refresh/kick outside any try, so a bus error becomes an unhandled rejection',
  },
];

export function knownOpen(target: string, message: string): KnownOpen | undefined {
  return KNOWN_OPEN.find((k) => k.target === target && k.match.test(message));
}
