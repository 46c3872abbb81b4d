import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseDone, parseResult } from '../../../src/platform/v86/guest-protocol.js';

test('a result line gives its kind, key=value fields and text', () => {
  const r = parseResult('VT-RESULT blkread dev=vda offset=0 length=4096 sha256=ab12');
  assert.deepEqual(r, { kind: 'blkread', fields: { dev: 'vda', offset: '0', length: '4096', sha256: 'ab12' }, text: 'dev=vda offset=0 length=4096 sha256=ab12' });
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
