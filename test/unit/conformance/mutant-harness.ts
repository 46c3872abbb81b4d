/**
 * "No vacuous check" (issue 14): every executable statement is run on the unmodified device of its
 * mutant (it must pass, or not apply for a stated reason) and on the mutant (it must fail with a
 * ConformanceViolation through at least one interface). A check that passes on its mutant proves
 * nothing, and fails the build.
 */

import { machineTarget } from '../../../src/cli/conformance-targets.js';
import { FAMILIES } from '../../../src/conformance/catalogue.js';
import type { CheckResult } from '../../../src/conformance/result.js';
import { runConformance } from '../../../src/conformance/runner.js';
import type { Family, Statement } from '../../../src/conformance/statement.js';
import type { Mutant, Mutants } from './mutants/mutant.js';

export interface HarnessProblem {
  readonly statement: string;
  /** On the unmodified device (it did not pass), or on the mutant (it did not fail). */
  readonly on: 'original' | 'mutant';
  /** "<id>: what happened". */
  readonly text: string;
}

export interface HarnessFindings {
  /** Executable statements without a mutant. */
  readonly missing: readonly string[];
  readonly problems: readonly HarnessProblem[];
}

/** "pciCommonCfgMutants" for "pci-common-cfg". */
export function mutantsExportName(family: Family): string {
  return `${family.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase())}Mutants`;
}

/**
 * Every family's mutants (mutants/<family>.js, export `<camelFamily>Mutants`); a family without a
 * file has none yet (its statements then show up as missing), a file without the export is an error.
 */
export async function loadAllMutants(): Promise<Mutants> {
  const all: Record<string, Mutant> = {};
  for (const family of FAMILIES) {
    let module: Record<string, unknown>;
    try {
      module = (await import(`./mutants/${family}.js`)) as Record<string, unknown>;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ERR_MODULE_NOT_FOUND' && String(err).includes(`mutants/${family}.js`)) continue;
      throw err;
    }
    const mutants = module[mutantsExportName(family)];
    if (typeof mutants !== 'object' || mutants === null) throw new Error(`mutants/${family}.ts exports no ${mutantsExportName(family)}`);
    Object.assign(all, mutants);
  }
  return all;
}

const describe = (r: CheckResult): string => `${r.via ?? '-'}: ${r.verdict}${r.reason === undefined ? '' : ` (${r.reason})`}`;

async function runOn(statement: Statement, name: string, plug: Mutant['original']): Promise<readonly CheckResult[]> {
  const run = await runConformance(machineTarget(name, name, plug), [statement]);
  return run.results;
}

/**
 * Statements checked side by side: the in-process machines are independent, and most of a check's
 * time is a wait (for a used buffer, or to see that none comes).
 */
const CONCURRENCY = 8;

/** The findings of one statement (an entry of `missing` or of `problems`). */
async function checkOne(s: Statement, m: Mutant | undefined): Promise<{ missing?: string; problems: HarnessProblem[] }> {
  if (m === undefined) return { missing: s.id, problems: [] };
  const problems: HarnessProblem[] = [];
  const original = await runOn(s, `original of ${s.id}`, m.original);
  const bad = original.filter((r) => r.verdict !== 'pass' && !(r.verdict === 'not-applicable' && r.reason !== undefined));
  if (bad.length > 0)
    problems.push({ statement: s.id, on: 'original', text: `${s.id}: on the unmodified device ${original.map(describe).join('; ')}` });
  const mutant = await runOn(s, `mutant of ${s.id}`, m.mutant);
  if (!mutant.some((r) => r.verdict === 'fail' && r.error === undefined))
    problems.push({
      statement: s.id,
      on: 'mutant',
      text: `${s.id}: does not fail on its mutant (${m.breaks}): ${mutant.map(describe).join('; ')}`,
    });
  return { problems };
}

export async function checkMutants(statements: readonly Statement[], mutants: Mutants): Promise<HarnessFindings> {
  const executable = statements.filter((s) => s.side === 'device' && s.check !== undefined);
  const found: { missing?: string; problems: HarnessProblem[] }[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < executable.length) {
      const i = next++;
      const s = executable[i]!;
      found[i] = await checkOne(s, mutants[s.id]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, executable.length) }, worker));
  return {
    missing: found.flatMap((f) => (f.missing === undefined ? [] : [f.missing])),
    problems: found.flatMap((f) => f.problems),
  };
}
