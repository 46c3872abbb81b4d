/**
 * The line protocol of the guest's /init (scripts/guest/init) on the serial console:
 *   VT-READY <kernel release>                 /init is waiting for commands
 *   VT-RESULT <kind> key=value ... | <text>   a result of the running command
 *   VT-DONE <command> rc=<status>             the command finished
 *   VT-POWEROFF                               the guest is powering off
 * The host sends one command per line, e.g. "rng 64" or "blkread vda 0 4096".
 */

export const READY_MARK = 'VT-READY';
export const RESULT_MARK = 'VT-RESULT';
export const DONE_MARK = 'VT-DONE';
export const POWEROFF_MARK = 'VT-POWEROFF';

/** One VT-RESULT line. */
export interface GuestResult {
  readonly kind: string;
  /** The key=value tokens. */
  readonly fields: Readonly<Record<string, string>>;
  /** Everything after the kind, as printed. */
  readonly text: string;
}

/** What a command printed. */
export interface CommandOutput {
  readonly command: string;
  readonly rc: number;
  readonly results: readonly GuestResult[];
}

/** The result in a VT-RESULT line, or undefined for any other line. */
export function parseResult(line: string): GuestResult | undefined {
  const at = line.indexOf(`${RESULT_MARK} `);
  if (at < 0) return undefined;
  const rest = line.slice(at + RESULT_MARK.length + 1).trim();
  const space = rest.indexOf(' ');
  const kind = space < 0 ? rest : rest.slice(0, space);
  const text = space < 0 ? '' : rest.slice(space + 1);
  const fields: Record<string, string> = {};
  for (const token of text.split(/\s+/)) {
    const eq = token.indexOf('=');
    if (eq > 0) fields[token.slice(0, eq)] = token.slice(eq + 1);
  }
  return { kind, fields, text };
}

/** [command, rc] of a VT-DONE line, or undefined. */
export function parseDone(line: string): [command: string, rc: number] | undefined {
  const m = new RegExp(`${DONE_MARK} (\\S+) rc=(\\d+)`).exec(line);
  return m ? [m[1]!, Number(m[2])] : undefined;
}
