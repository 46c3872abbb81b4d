import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ArrayGuestMemory, RegionGuestMemory, joinU64, splitU64 } from '../../../src/memory/guest-memory.js';
import { GuestMemoryError } from '../../../src/errors.js';

test('little-endian accessors of every width', () => {
  const m = new ArrayGuestMemory(64);
  m.write32(0, 0x04030201);
  assert.deepEqual([...m.view(0, 4)], [1, 2, 3, 4]);
  assert.equal(m.read16(1), 0x0302);
  m.write64(8, 0x1122334455667788n);
  assert.equal(m.read8(8), 0x88);
  assert.equal(m.read32(12), 0x11223344);
  assert.equal(m.read64(8), 0x1122334455667788n);
});

test('every access is range-checked, including the last byte and overflowing sums', () => {
  const m = new ArrayGuestMemory(16);
  assert.equal(m.read32(12), 0);
  assert.throws(() => m.read32(13), GuestMemoryError);
  assert.throws(() => m.read8(-1), GuestMemoryError);
  assert.throws(() => m.view(8, 9), GuestMemoryError);
  assert.throws(() => m.view(2 ** 53, 1), GuestMemoryError);
  assert.throws(() => m.view(1, Number.MAX_SAFE_INTEGER), GuestMemoryError);
  assert.equal(m.contains(16, 0), true);
  assert.equal(m.contains(0, 2 ** 32), false);
});

test('regions above 4 GiB: nothing truncated to 32 bits', () => {
  const low = new ArrayGuestMemory(4096, 0);
  const high = new ArrayGuestMemory(4096, 0x1_0000_0000);
  const m = new RegionGuestMemory([high, low]);
  m.write32(0x1_0000_0010, 0xdeadbeef);
  assert.equal(m.read32(0x1_0000_0010), 0xdeadbeef);
  assert.equal(m.read32(0x10), 0, 'the low alias of a high address is untouched');
  assert.throws(() => m.read32(0x2000), GuestMemoryError, 'the gap is not memory');
  assert.throws(() => m.view(4090, 16), GuestMemoryError, 'an access spanning a region end');
});

test('joinU64 keeps the high half; splitU64 is its inverse below 2^53', () => {
  assert.equal(joinU64(0x10, 1), 0x1_0000_0010);
  assert.deepEqual(splitU64(0x1_0000_0010), [0x10, 1]);
  assert.deepEqual(splitU64(0xffff_ffff), [0xffff_ffff, 0]);
  assert.deepEqual(splitU64(2 ** 53 - 1), [0xffff_ffff, 0x1f_ffff]);
  assert.ok(joinU64(0, 0xffffffff) > 2 ** 53, 'a 64-bit address near 2^64 stays huge');
  assert.equal(new ArrayGuestMemory(16).contains(joinU64(0, 0xffffffff), 1), false);
});
