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

/**
 * Kernel parameters every boot of this guest gets: the serial console (where /init's protocol runs),
 * quiet, INTx only (v86 cannot deliver MSI), and no ISA PnP probing, PnP BIOS calls or crypto
 * self-tests (seconds of emulated CPU each).
 */
export const BASE_CMDLINE = 'console=ttyS0 quiet pci=nomsi noisapnp pnpbios=off cryptomgr.notests mitigations=off';

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

/** The features Linux negotiated, from a "virtio" result (sysfs prints bit i as character i). */
export function guestFeatures(virtio: GuestResult): bigint {
  const bits = virtio.fields['features'] ?? '';
  let set = 0n;
  for (let i = 0; i < bits.length; i++) if (bits[i] === '1') set |= 1n << BigInt(i);
  return set;
}

/** [command, rc] of a VT-DONE line, or undefined. */
export function parseDone(line: string): [command: string, rc: number] | undefined {
  const m = new RegExp(`${DONE_MARK} (\\S+) rc=(\\d+)`).exec(line);
  return m ? [m[1]!, Number(m[2])] : undefined;
}

/** Characters of serial output a {@link SerialLog} keeps for error messages. */
export const SERIAL_LOG_CHARS = 64 << 10;
/** Characters of an unfinished line a {@link SerialLog} keeps (protocol lines are far shorter). */
export const SERIAL_LINE_CHARS = 64 << 10;

/**
 * The guest's serial output, split into lines, and kept bounded whatever the guest writes: the
 * last {@link SERIAL_LOG_CHARS} characters, and the end of a line that never ends. Each bound is
 * trimmed back once it is exceeded twice over, so that trimming costs O(1) per character.
 */
export class SerialLog {
  private log = '';
  private partial = '';

  /** Add one byte; returns the line it completes (without its CR LF), if it completes one. */
  push(byte: number): string | undefined {
    const ch = String.fromCharCode(byte);
    this.log += ch;
    if (this.log.length > 2 * SERIAL_LOG_CHARS) this.log = this.log.slice(-SERIAL_LOG_CHARS);
    if (ch === '\n') {
      const line = this.partial.replace(/\r$/, '');
      this.partial = '';
      return line;
    }
    this.partial += ch;
    if (this.partial.length > 2 * SERIAL_LINE_CHARS) this.partial = this.partial.slice(-SERIAL_LINE_CHARS);
    return undefined;
  }

  /** The output so far, or its last {@link SERIAL_LOG_CHARS} characters. */
  get text(): string {
    return this.log.length > SERIAL_LOG_CHARS ? this.log.slice(-SERIAL_LOG_CHARS) : this.log;
  }

  /** Characters held: the log and the unfinished line. */
  get heldChars(): number {
    return this.log.length + this.partial.length;
  }
}
