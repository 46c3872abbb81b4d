/**
 * `virtio-ts conformance --target T [--target T2 ...]`: runs every applicable device-side statement
 * of the catalogue (src/conformance/) against each target (src/cli/conformance-targets.ts), shows
 * progress, prints a table per target with the evidence of each failure and a summary line, and with
 * `--out DIR` writes results.json, results.md and junit.xml. Exit status 1 when a MUST or MUST NOT
 * failed, hung or died on any target, or a target could not be run at all.
 */

import cliProgress from 'cli-progress';
import type { Command } from 'commander';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CATALOGUE, FAMILIES, isFamily } from '../../conformance/catalogue.js';
import { formatJson } from '../../conformance/report/json.js';
import { formatJunit } from '../../conformance/report/junit.js';
import { formatMarkdown } from '../../conformance/report/markdown.js';
import { isFailure, summaryLine, type CheckResult, type TargetResults } from '../../conformance/result.js';
import { runConformance, type RunOptions } from '../../conformance/runner.js';
import type { Statement } from '../../conformance/statement.js';
import type { ConformanceTarget } from '../../conformance/target.js';
import { UsageError, VirtioError } from '../../errors.js';
import type { QemuMachine } from '../../platform/qtest/qemu-process.js';
import { parseTarget } from '../conformance-targets.js';

export interface ConformanceCommandOptions {
  readonly target: readonly string[];
  readonly out?: string;
  readonly family: readonly string[];
  readonly json?: boolean;
  readonly machine: string;
  readonly qemu?: string;
  readonly timeout: string;
}

/** Where the command writes: results to `out`, progress and per-target errors to `err` (a bar when `tty`). */
export interface CommandOutput {
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
  readonly tty: boolean;
}

const PROCESS_OUTPUT: CommandOutput = {
  out: (text) => void process.stdout.write(text),
  err: (text) => void process.stderr.write(text),
  get tty() {
    return process.stderr.isTTY === true;
  },
};

/** The statements `--family` selects (every family when none is given), device side only. */
export function selectStatements(families: readonly string[], catalogue: readonly Statement[] = CATALOGUE): Statement[] {
  for (const f of families) if (!isFamily(f)) throw new UsageError(`--family ${f}: use one of ${FAMILIES.join(', ')}`);
  const chosen = catalogue.filter((s) => s.side === 'device' && (families.length === 0 || families.includes(s.family)));
  if (chosen.length === 0)
    throw new UsageError(
      families.length === 0
        ? 'the catalogue has no device-side statement yet'
        : `no device-side statement in family ${families.join(', ')}`,
    );
  return chosen;
}

/** The table of one target's results: statement, section, level, interface, verdict; then each failure's evidence. */
export function formatResultTable(t: TargetResults): string[] {
  const head = ['statement', 'section', 'level', 'interface', 'verdict'];
  const cells = t.results.map((r) => [r.statement, r.section, r.level, r.via ?? '-', r.verdict]);
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: readonly string[]): string =>
    c
      .map((x, i) => x.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  const out = [`${t.label}: ${t.describe}`, '', line(head), line(widths.map((w) => '-'.repeat(w))), ...cells.map(line)];
  const failures = t.results.filter((r) => isFailure(r.verdict));
  for (const r of failures) out.push('', ...failureLines(r));
  out.push('', `${t.label}: ${summaryLine(t.counts)}${t.failingMusts > 0 ? `; ${t.failingMusts} MUST/MUST NOT not met` : ''}`);
  return out;
}

function failureLines(r: CheckResult): string[] {
  const out = [
    `${r.verdict.toUpperCase()} ${r.statement}${r.via === undefined ? '' : ` (${r.via})`}`,
    `  requires (${r.section}, ${r.level}): ${r.text}`,
    `  found: ${r.reason ?? '-'}${r.error === undefined ? '' : ` (${r.error})`}`,
  ];
  for (const note of r.notes ?? []) out.push(`  note: ${note}`);
  if (r.evidence !== undefined) out.push(`  last ${r.evidence.length} accesses:`, ...r.evidence.map((e) => `    ${e}`));
  return out;
}

/** Progress on stderr: a bar on a terminal, one line per result otherwise. */
function progressReporter(
  target: ConformanceTarget,
  io: CommandOutput,
): { onProgress: NonNullable<RunOptions['onProgress']>; stop(): void } {
  if (io.tty) {
    const bar = new cliProgress.SingleBar(
      { format: `${target.label} [{bar}] {value}/{total} {statement}`, stream: process.stderr, hideCursor: true, clearOnComplete: true },
      cliProgress.Presets.shades_classic,
    );
    let started = false;
    return {
      onProgress: (done, total, result) => {
        if (!started) bar.start(total, 0, { statement: '' });
        started = true;
        bar.update(done, { statement: `${result.statement}: ${result.verdict}` });
      },
      stop: () => bar.stop(),
    };
  }
  return {
    onProgress: (done, total, r) =>
      io.err(`${target.label} ${done}/${total} ${r.statement}${r.via === undefined ? '' : ` (${r.via})`}: ${r.verdict}\n`),
    stop: () => undefined,
  };
}

async function writeReports(dir: string, all: readonly TargetResults[]): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'results.json'), formatJson(all));
  await writeFile(join(dir, 'results.md'), formatMarkdown(all));
  await writeFile(join(dir, 'junit.xml'), formatJunit(all));
}

function positiveMs(value: string): number {
  const ms = Number(value);
  if (!Number.isInteger(ms) || ms <= 0) throw new UsageError(`--timeout ${value}: a positive number of milliseconds`);
  return ms;
}

/**
 * The command: every target parsed first (a typo in the third fails at once), then run one after
 * the other. Returns the exit status.
 */
export async function conformanceCommand(
  options: ConformanceCommandOptions,
  io: CommandOutput = PROCESS_OUTPUT,
  catalogue: readonly Statement[] = CATALOGUE,
): Promise<number> {
  if (options.machine !== 'pc' && options.machine !== 'q35') throw new UsageError(`--machine ${options.machine}: use pc or q35`);
  const machine: QemuMachine = options.machine;
  const timeoutMs = positiveMs(options.timeout);
  if (options.target.length === 0) throw new UsageError('--target is required');
  const statements = selectStatements(options.family, catalogue);
  const targets = options.target.map((t) => parseTarget(t, { machine, ...(options.qemu === undefined ? {} : { qemu: options.qemu }) }));
  const all: TargetResults[] = [];
  let broken = false;
  for (const target of targets) {
    const progress = progressReporter(target, io);
    try {
      all.push(await runConformance(target, statements, { timeoutMs, onProgress: progress.onProgress }));
    } catch (err) {
      if (!(err instanceof VirtioError)) throw err;
      // The target could not be run at all (QEMU did not start, the function did not probe): say so, go on.
      io.err(`virtio-ts: ${target.label}: ${err.message} (${err.code})\n`);
      broken = true;
    } finally {
      progress.stop();
    }
  }
  if (options.json) io.out(formatJson(all));
  else io.out(all.map((t) => `${formatResultTable(t).join('\n')}\n`).join('\n'));
  if (options.out !== undefined) await writeReports(options.out, all);
  return broken || all.some((t) => t.failingMusts > 0) ? 1 : 0;
}

/** Adds `conformance` to the CLI. */
export function register(program: Command): void {
  const repeat = (value: string, all: string[]): string[] => [...all, ...value.split(',').filter(Boolean)];
  program
    .command('conformance')
    .description("run the spec's normative statements (virtio 1.4) as checks against a device: ours, QEMU's or v86's")
    .requiredOption(
      '--target <target>',
      'ours:<blk|net|console|rng>[,mode=modern|transitional|legacy][,msix=on|off][,ring=split|packed], qemu:"<-device string>" or v86:<console|net|balloon> (repeat for more)',
      (value: string, all: string[] | undefined) => [...(all ?? []), value],
    )
    .option('--family <family>', `only these families (repeat or comma-separate): ${FAMILIES.join(', ')}`, repeat, [] as string[])
    .option('--out <dir>', 'write results.json, results.md and junit.xml there')
    .option('--json', 'print the results as JSON instead of tables')
    .option('--machine <machine>', 'QEMU machine for qemu: targets: pc or q35', 'q35')
    .option('--qemu <version>', 'QEMU for qemu: targets: 7.2 or 10.0 (as the project installs them) or a binary path')
    .option('--timeout <ms>', 'how long any one wait of a check may take', '2000')
    .action(async (options: ConformanceCommandOptions) => {
      process.exitCode = await conformanceCommand(options);
    });
}
