import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UsageError } from '../../../src/errors.js';
import {
  b64readCommand,
  b64writeCommand,
  inCommand,
  irqInterceptInCommand,
  memsetCommand,
  outCommand,
  parseHexValue,
  parseLine,
  readCommand,
  writeCommand,
} from '../../../src/platform/qtest/qtest-protocol.js';

test('commands are built with every argument QEMU asserts on', () => {
  assert.equal(inCommand(4, 0xcfc), 'inl 0xcfc');
  assert.equal(outCommand(1, 0x80, 0xff), 'outb 0x80 0xff');
  assert.equal(outCommand(4, 0xcf8, 0x8000_0810), 'outl 0xcf8 0x80000810');
  assert.equal(readCommand(8, 0x1_0000_0000), 'readq 0x100000000');
  assert.equal(writeCommand(2, 0x1000, 0xbeef), 'writew 0x1000 0xbeef');
  assert.equal(writeCommand(8, 0x1000, 0xffff_ffff_ffff_ffffn), 'writeq 0x1000 0xffffffffffffffff');
  assert.equal(b64readCommand(0x10_0000, 4096), 'b64read 0x100000 0x1000');
  assert.equal(b64writeCommand(0x2000, Uint8Array.of(1, 2, 3)), 'b64write 0x2000 0x3 AQID');
  assert.equal(memsetCommand(0x2000, 16, 0), 'memset 0x2000 0x10 0x0');
  assert.equal(irqInterceptInCommand('ioapic'), 'irq_intercept_in ioapic');
});

test('a command QEMU would abort on is refused before it is sent', () => {
  const refused: Array<() => string> = [
    () => inCommand(4, 0x1_0000), // port above 0xffff: QEMU asserts
    () => inCommand(4, -1),
    () => outCommand(1, 0x80, 0x100), // value wider than the access
    () => outCommand(4, 0x80, 1.5),
    () => readCommand(4, Number.NaN),
    () => readCommand(4, 2 ** 53), // not exact as a number
    () => writeCommand(4, 0, -1),
    () => writeCommand(8, 0, 1n << 64n),
    () => b64readCommand(0, 0), // QEMU asserts on a zero length
    () => b64writeCommand(0, new Uint8Array(0)), // QEMU answers ERR: refused here instead
    () => memsetCommand(0, 1, 256),
    () => irqInterceptInCommand(''), // a missing word aborts QEMU
    () => irqInterceptInCommand('ioapic\nreadl 0'), // a second command smuggled in
    () => irqInterceptInCommand('io apic'),
  ];
  for (const build of refused) assert.throws(build, UsageError, String(build));
});

test('reply lines are classified: OK, OK value, FAIL, ERR, IRQ, and nothing else', () => {
  assert.deepEqual(parseLine('OK'), { kind: 'ok', value: '' });
  assert.deepEqual(parseLine('OK 0x00000000deadbeef'), { kind: 'ok', value: '0x00000000deadbeef' });
  assert.deepEqual(parseLine("FAIL Unknown command 'bogus'"), { kind: 'fail', text: "FAIL Unknown command 'bogus'" });
  assert.deepEqual(parseLine('ERR invalid argument size'), { kind: 'fail', text: 'ERR invalid argument size' });
  assert.deepEqual(parseLine('IRQ raise 11'), { kind: 'irq', line: 11, raised: true });
  assert.deepEqual(parseLine('IRQ lower 20'), { kind: 'irq', line: 20, raised: false });
  for (const junk of ['', 'OKAY', 'IRQ raise', 'IRQ up 3', 'ok']) assert.equal(parseLine(junk), undefined, junk);
});

test('hex values parse exactly, 64 bits included', () => {
  assert.equal(parseHexValue('0xffffffffffffffff'), 0xffff_ffff_ffff_ffffn);
  assert.equal(parseHexValue('0x0001'), 1n);
  assert.equal(parseHexValue('AQID'), undefined);
  assert.equal(parseHexValue('0x'), undefined);
});
