/**
 * The reports: JSON keeps its schema (field names are stable), Markdown escapes what would break a
 * table, JUnit XML is well-formed with every hostile character escaped or replaced.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatJson, RESULTS_SCHEMA } from '../../../src/conformance/report/json.js';
import { escapeXml, formatJunit } from '../../../src/conformance/report/junit.js';
import { formatMarkdown } from '../../../src/conformance/report/markdown.js';
import { countVerdicts, failsRun, type CheckResult, type TargetResults } from '../../../src/conformance/result.js';

/** What a device may put in a message: markup, quotes, pipes, a control character, a lone surrogate, an emoji, a fence. */
const HOSTILE = 'read <0x1> & "0x2" \'q\' | pipe \u0001 \ud800 😀 ```';

const RESULTS: CheckResult[] = [
  {
    statement: 'pci-header/a',
    section: '4.1.2.1',
    level: 'MUST',
    family: 'pci-header',
    text: 'IDs',
    via: 'modern',
    verdict: 'pass',
    durationMs: 3,
  },
  {
    statement: 'status/b',
    section: '2.1.2',
    level: 'MUST',
    family: 'status',
    text: 'status <b>',
    via: 'legacy',
    verdict: 'fail',
    reason: HOSTILE,
    notes: ['wrote 0'],
    evidence: ['ioWrite 0xc012/1 <- 0x00', 'ioRead 0xc012/1 -> 0x01'],
    durationMs: 12,
  },
  {
    statement: 'status/c',
    section: '2.1.2',
    level: 'SHOULD',
    family: 'status',
    text: 'c',
    via: 'modern',
    verdict: 'not-applicable',
    reason: 'no such feature',
    durationMs: 1,
  },
  {
    statement: 'status/d',
    section: '2.1',
    level: 'MUST',
    family: 'status',
    text: 'd',
    via: undefined,
    verdict: 'not-checkable',
    reason: 'internal',
    durationMs: 0,
  },
  {
    statement: 'reset/e',
    section: '2.4',
    level: 'MUST',
    family: 'reset',
    text: 'e',
    via: 'modern',
    verdict: 'hung',
    reason: 'no answer',
    evidence: ['memRead 0xe0000014/1 -> 0x0f'],
    durationMs: 15000,
  },
];

const TARGET: TargetResults = {
  label: 'ours:rng,mode=transitional',
  describe: 'our virtio-rng & <friends>',
  results: RESULTS,
  counts: countVerdicts(RESULTS),
  failingMusts: RESULTS.filter(failsRun).length,
};

test('JSON: the schema, the target fields and every result field as result.ts names them', () => {
  const doc = JSON.parse(formatJson([TARGET])) as { schema: string; spec: string; targets: TargetResults[] };
  assert.equal(doc.schema, RESULTS_SCHEMA);
  assert.equal(RESULTS_SCHEMA, 'virtio-ts/conformance-results/1');
  assert.equal(doc.spec, 'virtio 1.4');
  assert.deepEqual(Object.keys(doc.targets[0]!), ['label', 'describe', 'results', 'counts', 'failingMusts']);
  assert.deepEqual(doc.targets[0]!.counts, { pass: 1, fail: 1, 'not-applicable': 1, 'not-checkable': 1, hung: 1, died: 0 });
  assert.equal(doc.targets[0]!.failingMusts, 2);
  assert.deepEqual(Object.keys(doc.targets[0]!.results[1]!), [
    'statement',
    'section',
    'level',
    'family',
    'text',
    'via',
    'verdict',
    'reason',
    'notes',
    'evidence',
    'durationMs',
  ]);
  assert.equal(doc.targets[0]!.results[1]!.reason, HOSTILE);
  // A result without an interface has none in the JSON either.
  assert.equal('via' in doc.targets[0]!.results[3]!, false);
});

test('Markdown: one table row per result with pipes escaped, and a section per failure with its evidence', () => {
  const md = formatMarkdown([TARGET]);
  const rows = md.split('\n').filter((l) => l.startsWith('| '));
  assert.equal(rows.length, 1 + RESULTS.length);
  // Every row has the header's six cells: no unescaped pipe split one.
  for (const row of rows) assert.equal(row.split(/(?<!\\)\|/).length - 2, 6, row);
  assert.match(md, /^## ours:rng,mode=transitional$/m);
  assert.match(md, /: 1 pass, 1 fail, 1 n\/a, 1 not checkable, 1 hung\.$/m);
  assert.match(md, /^#### status\/b \(legacy\): fail$/m);
  assert.match(md, /^#### reset\/e \(modern\): hung$/m);
  assert.match(md, /^```\nioWrite 0xc012\/1 <- 0x00\nioRead 0xc012\/1 -> 0x01\n```$/m);
  // Markup a device put in a message is shown, not rendered.
  assert.match(md, /^- found: read &lt;0x1> & "0x2" 'q' \\\| pipe/m);
  assert.match(md, /^our virtio-rng & &lt;friends>: /m);
});

/** A small well-formedness check: balanced tags, quoted attributes, no raw markup characters in text. */
function assertWellFormed(xml: string): void {
  assert.ok(xml.startsWith('<?xml version="1.0" encoding="UTF-8"?>\n'));
  const body = xml.slice(xml.indexOf('\n') + 1);
  const stack: string[] = [];
  const token = /<(\/?)([A-Za-z]+)((?:\s+[a-zA-Z]+="[^"<&]*(?:&(?:amp|lt|gt|quot|apos);[^"<&]*)*")*)\s*(\/?)>|([^<]+)/gy;
  let m: RegExpExecArray | null;
  let at = 0;
  while ((m = token.exec(body)) !== null) {
    at = token.lastIndex;
    const [, close, name, , selfClose, text] = m;
    if (text !== undefined) {
      assert.doesNotMatch(text, /&(?!(amp|lt|gt|quot|apos);)/, 'raw & in text');
      // eslint-disable-next-line no-control-regex -- the characters XML 1.0 cannot carry
      assert.doesNotMatch(text, /[>\u0000-\u0008\u000b\u000c\u000e-\u001f]/, 'raw > or a control character in text');
    } else if (close === '/') assert.equal(stack.pop(), name);
    else if (selfClose !== '/') stack.push(name!);
  }
  assert.equal(at, body.length, `not XML at ${body.slice(at, at + 40)}`);
  assert.deepEqual(stack, []);
}

test('JUnit XML: well-formed, a testcase per result, failures, errors and skips counted, hostile text escaped', () => {
  const xml = formatJunit([TARGET]);
  assertWellFormed(xml);
  assert.match(xml, /<testsuites name="virtio-ts conformance" tests="5" failures="1" errors="1" skipped="2" time="15\.016">/);
  assert.match(xml, /<testsuite name="ours:rng,mode=transitional" tests="5" failures="1" errors="1" skipped="2"/);
  assert.match(xml, /<property name="describe" value="our virtio-rng &amp; &lt;friends&gt;"\/>/);
  assert.match(
    xml,
    /<testcase classname="status" name="status\/b \[legacy\]" time="0\.012">\n {6}<failure message="read &lt;0x1&gt; &amp; &quot;0x2&quot; &apos;q&apos; \| pipe \ufffd \ufffd 😀 ```" type="ConformanceViolation">/,
  );
  assert.match(xml, /<error message="no answer" type="hung">/);
  assert.match(xml, /<skipped message="not-checkable: internal"\/>/);
  assert.equal((xml.match(/<testcase /g) ?? []).length, 5);
});

test('escapeXml: markup escaped, characters XML cannot carry replaced, pairs and ordinary text kept', () => {
  assert.equal(escapeXml('a<b>&"\''), 'a&lt;b&gt;&amp;&quot;&apos;');
  assert.equal(escapeXml('\u0000\u001f\t\n\r\ufffe\udc00'), '\ufffd\ufffd\t\n\r\ufffd\ufffd');
  assert.equal(escapeXml('😀 é &amp;'), '😀 é &amp;amp;');
});
