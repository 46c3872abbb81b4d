/**
 * `virtio-ts conformance`: the command on our devices with example statements (tables, summary,
 * reports written, exit status by level), and its usage errors as one line without a stack.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { conformanceCommand, type CommandOutput, type ConformanceCommandOptions } from '../../../src/cli/commands/conformance.js';
import { parseTarget } from '../../../src/cli/conformance-targets.js';
import type { CheckContext, Statement } from '../../../src/conformance/statement.js';
import { UsageError } from '../../../src/errors.js';
import { CLI } from '../../helpers/cli-process.js';
import { deviceIdStatement, resetStatement, uncheckableStatement } from '../conformance/fixtures/example-statements.js';

const run = promisify(execFile);

/** A statement our rng breaks on purpose (its device ID is not 0x1234), at `level`. */
const wrongId = (level: Statement['level']): Statement => ({
  ...deviceIdStatement,
  id: `pci-header/example-wrong-id-${level === 'MUST' ? 'must' : 'should'}`,
  level,
  check: {
    async run(ctx: CheckContext) {
      const id = await ctx.bus.configRead(ctx.fn, 2, 2);
      ctx.require(id === 0x1234, `device ID 0x${id.toString(16)}`);
    },
  },
});

function capture(): CommandOutput & { stdout: string[]; stderr: string[] } {
  const stdout: string[] = [];
  const stderr: string[] = [];
  return { stdout, stderr, out: (t) => void stdout.push(t), err: (t) => void stderr.push(t), tty: false };
}

const options = (over: Partial<ConformanceCommandOptions>): ConformanceCommandOptions => ({
  target: ['ours:rng,mode=transitional'],
  family: [],
  machine: 'q35',
  timeout: '2000',
  ...over,
});

test('a run: progress lines, a table per target, the failure with its evidence, a summary; exit 1 for a failed MUST; reports written', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'virtio-ts-conformance-test-'));
  try {
    const io = capture();
    const catalogue = [deviceIdStatement, resetStatement, uncheckableStatement, wrongId('MUST')];
    const code = await conformanceCommand(
      options({ target: ['ours:rng,mode=transitional', 'ours:rng,msix=off'], out: dir }),
      io,
      catalogue,
    );
    assert.equal(code, 1);
    const out = io.stdout.join('');
    assert.match(out, /^ours:rng,mode=transitional: our virtio-rng model, transitional, MSI-X on, split ring$/m);
    assert.match(out, /^status\/example-reset-reads-zero\s+2\.1\.2\s+MUST\s+legacy\s+pass$/m);
    assert.match(out, /^status\/example-uncheckable\s+2\.1\.2\s+SHOULD\s+-\s+not-checkable$/m);
    assert.match(
      out,
      /^FAIL pci-header\/example-wrong-id-must \(modern\)\n {2}requires \(4\.1\.2\.1, MUST\): .*\n {2}found: device ID 0x1005\n {2}last 1 accesses:\n {4}configRead 0x2\/2 -> 0x1005$/m,
    );
    assert.match(out, /^ours:rng,mode=transitional: 3 pass, 1 fail, 0 n\/a, 1 not checkable; 1 MUST\/MUST NOT not met$/m);
    assert.match(out, /^ours:rng,msix=off: 2 pass, 1 fail, 1 n\/a, 1 not checkable; 1 MUST\/MUST NOT not met$/m);
    assert.match(io.stderr.join(''), /^ours:rng,msix=off 5\/5 pci-header\/example-wrong-id-must \(modern\): fail$/m);
    const json = JSON.parse(await readFile(join(dir, 'results.json'), 'utf8')) as { targets: { label: string }[] };
    assert.deepEqual(
      json.targets.map((t) => t.label),
      ['ours:rng,mode=transitional', 'ours:rng,msix=off'],
    );
    assert.match(await readFile(join(dir, 'results.md'), 'utf8'), /^## ours:rng,msix=off$/m);
    assert.match(await readFile(join(dir, 'junit.xml'), 'utf8'), /<testsuites name="virtio-ts conformance" tests="10" failures="2"/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a failed SHOULD does not fail the run; --json prints the document; --family selects', async () => {
  const io = capture();
  const code = await conformanceCommand(options({ json: true, family: ['pci-header'] }), io, [
    deviceIdStatement,
    resetStatement,
    wrongId('SHOULD'),
  ]);
  assert.equal(code, 0);
  const doc = JSON.parse(io.stdout.join('')) as { targets: { results: { statement: string; verdict: string }[] }[] };
  assert.deepEqual(
    doc.targets[0]!.results.map((r) => `${r.statement} ${r.verdict}`),
    ['pci-header/example-device-id pass', 'pci-header/example-wrong-id-should fail'],
  );
});

test('bad targets are usage errors that say what to write', () => {
  const choice = { machine: 'q35' as const };
  const cases: [string, RegExp][] = [
    ['floppy', /^--target floppy: use ours:<type>/],
    ['ours:floppy', /^--target ours:floppy: type floppy: use one of rng, blk, net, console$/],
    ['ours:blk,mode=hybrid', /mode hybrid: use one of modern, transitional, legacy$/],
    ['ours:blk,msix=maybe', /msix maybe: use one of on, off$/],
    ['ours:blk,colour=red', /unknown property "colour": use mode, msix, ring or admin$/],
    ['ours:blk,admin=yes', /admin yes: use one of on, off$/],
    ['ours:blk,mode=legacy,ring=packed', /--ring packed needs the modern interface/],
    ['qemu:', /give a -device string/],
    ['v86:blk', /type blk: use one of console, net, balloon$/],
  ];
  for (const [text, message] of cases)
    assert.throws(
      () => parseTarget(text, choice),
      (err: unknown) => err instanceof UsageError && message.test(err.message),
      text,
    );
  assert.equal(parseTarget('ours:net,mode=legacy,msix=off', choice).describe, 'our virtio-net model, legacy, MSI-X off, split ring');
  assert.equal(
    parseTarget('ours:rng,admin=on', choice).describe,
    'our virtio-rng model, modern, MSI-X on, split ring, an administration queue with 2 SR-IOV members',
  );
  assert.equal(
    parseTarget('qemu:"virtio-rng-pci,disable-legacy=on"', { machine: 'pc', qemu: process.execPath }).describe,
    `QEMU (${process.execPath}) -M pc -device virtio-rng-pci,disable-legacy=on`,
  );
});

test('the CLI: a usage error is one line on stderr, exit status 1, no stack', async () => {
  for (const args of [
    ['--target', 'ours:floppy'],
    ['--target', 'ours:rng', '--family', 'nope'],
    ['--target', 'ours:rng', '--machine', 'isa'],
    ['--target', 'qemu:virtio-rng-pci', '--qemu', '9.9'],
    ['--family', 'status'],
  ]) {
    const err = await run(process.execPath, [CLI, 'conformance', ...args], { timeout: 30_000 }).then(
      () => assert.fail(`${args.join(' ')} succeeded`),
      (e: { code: number; stderr: string; stdout: string }) => e,
    );
    assert.equal(err.code, 1, args.join(' '));
    assert.equal(err.stdout, '');
    assert.match(err.stderr, /^virtio-ts: .* \((ERR_USAGE|commander\.\w+; see virtio-ts --help)\)\n$/, args.join(' '));
  }
});
