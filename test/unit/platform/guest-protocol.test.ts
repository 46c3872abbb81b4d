import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SERIAL_LINE_CHARS, SERIAL_LOG_CHARS, SerialLog, parseDone, parseResult } from '../../../src/platform/v86/guest-protocol.js';

test('a result line gives its kind, key=value fields and text', () => {
  const r = parseResult('VT-RESULT blkread dev=vda offset=0 length=4096 sha256=ab12');
  assert.deepEqual(r, {
    kind: 'blkread',
    fields: { dev: 'vda', offset: '0', length: '4096', sha256: 'ab12' },
    text: 'dev=vda offset=0 length=4096 sha256=ab12',
  });
});

test('a result is found after noise on the same line (a kernel message without a newline)', () => {
  assert.equal(parseResult('[   12.3] random: crng initVT-RESULT load ok')?.text, 'ok');
});

test('free text keeps its spaces and yields no fields for words without "="', () => {
  const r = parseResult('VT-RESULT dmesg [    3.0] virtio_blk virtio1: [vda] 2048 512-byte logical blocks');
  assert.equal(r?.kind, 'dmesg');
  assert.equal(r?.text, '[    3.0] virtio_blk virtio1: [vda] 2048 512-byte logical blocks');
  assert.deepEqual(r?.fields, {});
});

test('other lines are not results; done lines give command and status', () => {
  assert.equal(parseResult('VT-DONE load rc=0'), undefined);
  assert.equal(parseResult('VT-RESULTS x'), undefined);
  assert.deepEqual(parseDone('VT-DONE blkwrite rc=1'), ['blkwrite', 1]);
  assert.equal(parseDone('VT-RESULT load ok'), undefined);
});

test('serial log: lines end at LF (a CR before it dropped); a guest writing without end leaves what is held bounded', () => {
  const log = new SerialLog();
  const push = (text: string): string[] => [...text].flatMap((c) => log.push(c.charCodeAt(0)) ?? []);
  assert.deepEqual(push('VT-READY 6.1.0\r\nVT-DONE lo'), ['VT-READY 6.1.0']);
  assert.deepEqual(push('ad rc=0\n'), ['VT-DONE load rc=0']);
  // Four million characters and no newline: only the ends are kept.
  for (let i = 0; i < 4_000_000; i++) log.push(0x41);
  assert.ok(log.heldChars <= 2 * (SERIAL_LOG_CHARS + SERIAL_LINE_CHARS), `${log.heldChars} characters held`);
  const [long, done] = push('\nVT-DONE rng rc=0\n');
  assert.ok(
    long!.length >= SERIAL_LINE_CHARS && long!.length <= 2 * SERIAL_LINE_CHARS && /^A+$/.test(long!),
    'the end of the endless line',
  );
  assert.equal(done, 'VT-DONE rng rc=0', 'the protocol still works after it');
  assert.equal(log.text.length, SERIAL_LOG_CHARS);
  assert.ok(log.text.endsWith('A\nVT-DONE rng rc=0\n'));
});
