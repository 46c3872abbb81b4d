/**
 * The results as Markdown (`results.md`): per target a summary line, a table of every result and,
 * for each failure, what the statement requires, what was found and the check's last accesses.
 */

import { isFailure, summaryLine, type CheckResult, type TargetResults } from '../result.js';

/** Text from a device or a check in a table cell or a list item: pipes and markup escaped, line breaks flattened. */
function cell(text: string): string {
  return text.replaceAll('\\', '\\\\').replaceAll('|', '\\|').replaceAll('<', '&lt;').replace(/\r?\n/g, ' ');
}

function failureSection(r: CheckResult): string[] {
  const out = [
    `#### ${r.statement}${r.via === undefined ? '' : ` (${r.via})`}: ${r.verdict}`,
    '',
    `- requires (${r.section}, ${r.level}): ${cell(r.text)}`,
    `- found: ${cell(r.reason ?? '-')}${r.error === undefined ? '' : ` (${r.error})`}`,
  ];
  for (const note of r.notes ?? []) out.push(`- note: ${cell(note)}`);
  // Evidence lines are the engine's own text (runner.ts formatAccess): no backticks to escape.
  if (r.evidence !== undefined) out.push('', `Last ${r.evidence.length} accesses:`, '', '```', ...r.evidence, '```');
  out.push('');
  return out;
}

export function formatMarkdown(targets: readonly TargetResults[]): string {
  const out = ['# virtio-ts conformance results', ''];
  for (const t of targets) {
    out.push(`## ${t.label}`, '', `${cell(t.describe)}: ${summaryLine(t.counts)}.`, '');
    out.push('| statement | section | level | interface | verdict | reason |', '|---|---|---|---|---|---|');
    for (const r of t.results)
      out.push(`| ${cell(r.statement)} | ${r.section} | ${r.level} | ${r.via ?? '-'} | ${r.verdict} | ${cell(r.reason ?? '')} |`);
    out.push('');
    const failures = t.results.filter((r) => isFailure(r.verdict));
    if (failures.length > 0) {
      out.push('### Failures', '');
      for (const r of failures) out.push(...failureSection(r));
    }
  }
  return `${out.join('\n').trimEnd()}\n`;
}
