/**
 * `virtio-ts diff --device blk --mode modern`: QEMU's virtio-pci device and our device model of the
 * same type and mode, read by the same driver code, side by side (src/cli/layout-diff.ts).
 * `--ring packed` offers the packed ring on both sides (QEMU's `packed=on`, our `packed: true`).
 * Differences are marked: `~` accepted (the reason follows), `!` unexplained. Exit code 1 when any
 * difference is unexplained.
 */

import type { Command } from 'commander';
import { UsageError } from '../../errors.js';
import type { QemuMachine } from '../../platform/qtest/qemu-process.js';
import { ACCEPTED_DIFFERENCES } from '../accepted-differences.js';
import { LAYOUT_DEVICES, LAYOUT_MODES, type LayoutDevice } from '../layout-devices.js';
import { layoutDiff, type LayoutRow } from '../layout-diff.js';
import type { VirtioPciMode } from '../../transport/pci/virtio-pci-function.js';
import { parseRing } from '../ring-option.js';

interface DiffCommandOptions {
  readonly device?: string;
  readonly mode: string;
  readonly machine: string;
  readonly ring?: string;
  readonly all?: boolean;
  readonly accepted?: boolean;
}

function oneOf<T extends string>(what: string, value: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(value)) throw new UsageError(`--${what} ${value}: use one of ${allowed.join(', ')}`);
  return value as T;
}

/** The rows as a table: section, field, QEMU's value, ours, and a mark. */
export function formatLayoutRows(rows: readonly LayoutRow[], all: boolean): string[] {
  const shown = rows.filter((r) => all || !r.same);
  const cells = shown.map((r) => [
    r.same ? ' ' : r.accepted !== undefined ? '~' : '!',
    `${r.section} ${r.field}`,
    r.qemu ?? '-',
    r.ours ?? '-',
  ]);
  const head = [' ', 'field', 'QEMU', 'virtio-ts'];
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: readonly string[]): string =>
    c
      .map((x, i) => x.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  const out = [line(head), line(widths.map((w) => '-'.repeat(w)))];
  let lastReason: string | undefined;
  shown.forEach((r, i) => {
    out.push(line(cells[i]!));
    // A reason covering several rows in a row is printed under the first.
    if (r.accepted !== undefined && r.accepted !== lastReason) out.push(`     accepted: ${r.accepted}`);
    lastReason = r.accepted;
  });
  return out;
}

/** ACCEPTED_DIFFERENCES as a Markdown table (for the README). */
export function formatAcceptedTable(): string[] {
  const cell = (text: string): string => text.replaceAll('|', '\\|');
  const out = ['| device | modes | rows | reason |', '|---|---|---|---|'];
  for (const a of ACCEPTED_DIFFERENCES) {
    const modes = a.modes.length === LAYOUT_MODES.length ? 'all' : a.modes.join(', ');
    out.push(
      `| ${a.devices.length === LAYOUT_DEVICES.length ? 'all' : a.devices.join(', ')} | ${modes} | ${a.section} \`${cell(a.field.source)}\` | ${cell(a.reason)} |`,
    );
  }
  return out;
}

async function runDiff(options: DiffCommandOptions): Promise<void> {
  if (options.accepted) {
    for (const line of formatAcceptedTable()) process.stdout.write(`${line}\n`);
    return;
  }
  if (options.device === undefined) throw new UsageError('--device is required (or --accepted)');
  const device = oneOf<LayoutDevice>('device', options.device, LAYOUT_DEVICES);
  const mode = oneOf<VirtioPciMode>('mode', options.mode, LAYOUT_MODES);
  const machine = oneOf<QemuMachine>('machine', options.machine, ['pc', 'q35']);
  const diff = await layoutDiff(device, mode, machine, parseRing(options.ring));
  const print = (line: string): void => void process.stdout.write(`${line}\n`);
  print(
    `QEMU -M ${machine} ${diff.qemuArgs.join(' ')}  vs  virtio-ts ${device} model, mode ${mode}${diff.ring === 'packed' ? ', packed ring offered' : ''}`,
  );
  print('');
  for (const line of formatLayoutRows(diff.rows, options.all ?? false)) print(line);
  const differing = diff.rows.filter((r) => !r.same);
  const unexplained = differing.filter((r) => r.accepted === undefined);
  print('');
  print(
    `${diff.rows.length} fields compared, ${differing.length} differ (${differing.length - unexplained.length} accepted, ${unexplained.length} unexplained)`,
  );
  if (unexplained.length > 0) process.exitCode = 1;
}

/** Adds `diff` to the CLI. */
export function register(program: Command): void {
  program
    .command('diff')
    .description(
      "compare QEMU's virtio-pci device with our device model of the same type and mode: header, BARs, capabilities, features, queues, device config",
    )
    .option('--device <device>', `one of ${LAYOUT_DEVICES.join(', ')}`)
    .option('--mode <mode>', `one of ${LAYOUT_MODES.join(', ')}`, 'modern')
    .option('--machine <machine>', 'QEMU machine: pc or q35', 'q35')
    .option('--ring <ring>', 'split (default) or packed: packed offers the packed ring on both sides (QEMU packed=on, our packed: true)')
    .option('--all', 'show identical fields too')
    .option('--accepted', 'print the documented differences (device, modes, rows, reason) as a Markdown table, without running QEMU')
    .action((options: DiffCommandOptions) => runDiff(options));
}
