/**
 * The results as JUnit XML (`junit.xml`), for CI systems that show test reports: one testsuite per
 * target, one testcase per result (classname = family, name = statement and interface). fail is a
 * <failure>, hung and died are <error>s, not-applicable and not-checkable are <skipped>.
 */

import { summaryLine, type CheckResult, type TargetResults } from '../result.js';

/**
 * Characters XML 1.0 cannot carry at all: C0 controls other than tab, LF and CR, U+FFFE/U+FFFF, and
 * (in unicode mode a pair is one code point) lone surrogates.
 */
// eslint-disable-next-line no-control-regex
const NOT_XML = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\ud800-\udfff\ufffe\uffff]/gu;

/** Text for an attribute or element content: markup escaped, characters XML cannot carry replaced by U+FFFD. */
export function escapeXml(text: string): string {
  return text
    .replace(NOT_XML, '\ufffd')
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&apos;');
}

const seconds = (ms: number): string => (ms / 1000).toFixed(3);

function testcase(r: CheckResult): string[] {
  const name = escapeXml(`${r.statement}${r.via === undefined ? '' : ` [${r.via}]`}`);
  const head = `    <testcase classname="${escapeXml(r.family)}" name="${name}" time="${seconds(r.durationMs)}"`;
  const body = (tag: 'failure' | 'error', type: string): string[] => {
    const details = [
      `requires (${r.section}, ${r.level}): ${r.text}`,
      `found: ${r.reason ?? '-'}`,
      ...(r.notes ?? []).map((n) => `note: ${n}`),
    ];
    if (r.evidence !== undefined) details.push('last accesses:', ...r.evidence);
    return [
      `${head}>`,
      `      <${tag} message="${escapeXml(r.reason ?? r.verdict)}" type="${escapeXml(type)}">${escapeXml(details.join('\n'))}</${tag}>`,
      '    </testcase>',
    ];
  };
  switch (r.verdict) {
    case 'pass':
      return [`${head}/>`];
    case 'fail':
      return body('failure', r.error ?? 'ConformanceViolation');
    case 'hung':
    case 'died':
      return body('error', r.verdict);
    case 'not-applicable':
    case 'not-checkable':
      return [`${head}>`, `      <skipped message="${escapeXml(`${r.verdict}: ${r.reason ?? ''}`)}"/>`, '    </testcase>'];
  }
}

export function formatJunit(targets: readonly TargetResults[]): string {
  const total = (f: (t: TargetResults) => number): number => targets.reduce((n, t) => n + f(t), 0);
  const tests = total((t) => t.results.length);
  const failures = total((t) => t.counts.fail);
  const errors = total((t) => t.counts.hung + t.counts.died);
  const skipped = total((t) => t.counts['not-applicable'] + t.counts['not-checkable']);
  const time = seconds(total((t) => t.results.reduce((n, r) => n + r.durationMs, 0)));
  const out = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites name="virtio-ts conformance" tests="${tests}" failures="${failures}" errors="${errors}" skipped="${skipped}" time="${time}">`,
  ];
  for (const t of targets) {
    const suiteTime = seconds(t.results.reduce((n, r) => n + r.durationMs, 0));
    out.push(
      `  <testsuite name="${escapeXml(t.label)}" tests="${t.results.length}" failures="${t.counts.fail}" errors="${t.counts.hung + t.counts.died}" skipped="${t.counts['not-applicable'] + t.counts['not-checkable']}" time="${suiteTime}">`,
      `    <properties><property name="describe" value="${escapeXml(t.describe)}"/><property name="summary" value="${escapeXml(summaryLine(t.counts))}"/></properties>`,
    );
    for (const r of t.results) out.push(...testcase(r));
    out.push('  </testsuite>');
  }
  out.push('</testsuites>');
  return `${out.join('\n')}\n`;
}
