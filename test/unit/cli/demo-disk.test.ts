/**
 * `virtio-ts demo`'s disk (issue items 10 and 11): sizes in 64-bit-safe arithmetic, a disk too small
 * or not a whole number of sectors refused, every byte of the disk covered by the verified pattern,
 * and every file error one line with a stable code, before anything is created.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { DEMO_MIN_DISK_BYTES, parseDiskSize, patternVerdict } from '../../../src/cli/commands/demo.js';
import { fillPattern } from '../../../src/cli/fill-pattern.js';
import { UsageError } from '../../../src/errors.js';
import { assertNothingLeft, assertOneLineError, privateTmp, runCli } from '../../helpers/cli-process.js';

test('--size: MiB up to 4096 become bytes without a 32-bit shift (2048 << 20 is 0)', () => {
  assert.equal(parseDiskSize('1'), 1 << 20);
  assert.equal(parseDiskSize('2048'), 2 ** 31);
  assert.equal(parseDiskSize('4096'), 2 ** 32);
  for (const bad of ['0', '4097', '1.5', '-1', 'x', '']) assert.throws(() => parseDiskSize(bad), UsageError, bad);
});

test('the verdict: a pattern that moved 0 bytes, or not the whole disk, verifies nothing and fails', () => {
  const sum = 'a'.repeat(64);
  assert.equal(patternVerdict({ bytes: 0, diskBytes: 0, written: sum, readBack: sum, imageFile: sum }).ok, false);
  assert.equal(patternVerdict({ bytes: 65536, diskBytes: 102400, written: sum, readBack: sum, imageFile: sum }).ok, false);
  assert.equal(patternVerdict({ bytes: 65536, diskBytes: 65536, written: sum, readBack: 'b'.repeat(64), imageFile: sum }).ok, false);
  assert.equal(patternVerdict({ bytes: 65536, diskBytes: 65536, written: sum, readBack: sum, imageFile: sum }).ok, true);
});

test('demo --size 4096: the temporary disk has 2^32 bytes (8388608 sectors), not 0', async (t) => {
  const tmp = await privateTmp(t);
  // Stopped once the disk is described: the pattern over 4 GiB is not the point here.
  const run = await runCli(['demo', '--size', '4096'], { tmp, at: /Disk: .*, (\d+) sectors \(([^)]*)\)/, end: 'SIGINT' });
  assert.equal(run.match?.[1], String(2 ** 32 / 512), run.stdout);
  assert.equal(run.match?.[2], '4096 MiB');
  await assertNothingLeft(tmp, run, 'demo --size 4096 then SIGINT');
});

test('demo --disk: every byte of a disk that is not a multiple of the request size is written, read back and checked in the file', async (t) => {
  const tmp = await privateTmp(t);
  const disk = join(tmp, 'disk.img');
  const bytes = 100 * 1024;
  await writeFile(disk, new Uint8Array(bytes));
  const run = await runCli(['demo', '--disk', disk], { tmp });
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, /Disk: .*, 200 sectors/);
  assert.match(run.stdout, /^checksums verified: .* \(102400 bytes\)$/m);
  // The image holds the pattern (64 KiB requests, the generator carried from one to the next)
  // from its first byte to its last, and that is what the demo says it wrote.
  const want = new Uint8Array(bytes);
  let seed = 0x7f4a7c15;
  for (let at = 0; at < bytes; at += 65536) seed = fillPattern(want.subarray(at, Math.min(bytes, at + 65536)), seed);
  const image = await readFile(disk);
  assert.ok(Buffer.compare(image, want) === 0, 'the image file is the pattern, to the last sector');
  assert.equal(/sha256 written +(\w+)/.exec(run.stdout)?.[1], createHash('sha256').update(want).digest('hex'));
});

test('demo --disk refuses what it cannot use, in one line with a code, creating nothing', async (t) => {
  const tmp = await privateTmp(t);
  const empty = join(tmp, 'empty.img');
  const odd = join(tmp, 'odd.img');
  const small = join(tmp, 'small.img');
  const dir = join(tmp, 'a-directory');
  await writeFile(empty, new Uint8Array(0));
  await writeFile(odd, new Uint8Array(1000));
  await writeFile(small, new Uint8Array(DEMO_MIN_DISK_BYTES - 512));
  await mkdir(dir);
  // Root may open any file; a sysfs attribute without write permission it may not open for writing.
  const unwritable = process.getuid?.() === 0 ? '/sys/kernel/notes' : join(tmp, 'no-access.img');
  if (unwritable !== '/sys/kernel/notes') {
    await writeFile(unwritable, new Uint8Array(65536));
    await chmod(unwritable, 0o000);
  }
  const cases: [string, RegExp, string][] = [
    ['/nonexistent-dir/x.img', /\/nonexistent-dir\/x\.img: no such file/, 'ERR_HOST_FILE_NOT_FOUND'],
    [dir, /a-directory: is a directory/, 'ERR_HOST_FILE_IS_DIRECTORY'],
    [unwritable, /: permission denied/, 'ERR_HOST_FILE_PERMISSION'],
    ['/dev/null', /\/dev\/null: not a regular file/, 'ERR_HOST_FILE_NOT_REGULAR'],
    [empty, /empty\.img: 0 bytes is too small: the demo needs at least 65536 bytes/, 'ERR_HOST_FILE_SIZE'],
    [small, /small\.img: 65024 bytes is too small/, 'ERR_HOST_FILE_SIZE'],
    [odd, /odd\.img: 1000 bytes is not a whole number of 512-byte sectors/, 'ERR_HOST_FILE_SIZE'],
  ];
  const before = await readdir(tmp);
  for (const [path, message, code] of cases) {
    const run = await runCli(['demo', '--disk', path], { tmp });
    assertOneLineError(run, message, code);
    assert.equal(run.stdout, '', `${path}: nothing printed before the error`);
    assert.equal((await readFile(empty)).length, 0, 'the files are left as they were');
    assert.equal((await readFile(odd)).length, 1000);
  }
  assert.deepEqual((await readdir(tmp)).sort(), before.sort(), 'nothing created');
});

test('bad options and sizes are one line with a code and create nothing (the image was made before --mode was checked)', async (t) => {
  const tmp = await privateTmp(t);
  const cases: [string[], RegExp, string][] = [
    [['demo', '--size', '2048', '--mode', 'hybrid'], /--mode hybrid: one of modern, transitional, legacy/, 'ERR_USAGE'],
    [['demo', '--size', '64', '--interrupts', 'often'], /--interrupts often: one of auto, msix, intx/, 'ERR_USAGE'],
    [['demo', '--size', '4097'], /--size 4097: a whole number of MiB from 1 to 4096/, 'ERR_USAGE'],
    [['demo', '--no-such-option'], /unknown option '--no-such-option'/, 'commander.unknownOption; see virtio-ts --help'],
    [['lspci', '--mode', 'hybrid'], /--mode hybrid/, 'ERR_USAGE'],
  ];
  for (const [args, message, code] of cases) {
    const run = await runCli(args, { tmp });
    assertOneLineError(run, message, code);
    await assertNothingLeft(tmp, run, args.join(' '));
  }
});

test('a failed system call outside the disk (TMPDIR missing) is one line with its errno code, not a stack', async (t) => {
  const tmp = await privateTmp(t);
  const run = await runCli(['demo', '--size', '1'], { tmp: join(tmp, 'missing') });
  assertOneLineError(run, /mkdtemp .*missing\/virtio-ts-demo-/, 'ENOENT');
  assert.deepEqual(await readdir(tmp), []);
});
