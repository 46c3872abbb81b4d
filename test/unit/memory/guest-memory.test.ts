import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ArrayGuestMemory, RegionGuestMemory, joinU64, splitU64 } from '../../../src/memory/guest-memory.js';
import { GuestMemoryError, UsageError } from '../../../src/errors.js';

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

test('a RAM map: holes and the bytes past RAM refuse every accessor, RAM on both sides serves', () => {
  // Backed [0x1000, 0x3000); RAM [0x1000, 0x1400) and [0x1800, 0x2800), as a firmware map states it.
  const m = new ArrayGuestMemory(0x2000, 0x1000, [
    { base: 0x1800, size: 0x1000 },
    { base: 0x1000, size: 0x400 },
  ]);
  assert.equal(m.end, 0x2800, 'end is RAM end, not the backing end');
  m.write32(0x13fc, 0x11223344);
  m.write32(0x1800, 0x55667788);
  m.write32(0x27fc, 0x99aabbcc);
  assert.equal(m.read32(0x13fc), 0x11223344);
  assert.equal(m.contains(0x2800, 0), true, 'an empty range at RAM end');
  const refused: [string, () => unknown][] = [
    ['straddling the hole start', () => m.read32(0x13fe)],
    ['inside the hole', () => m.write8(0x1600, 1)],
    ['ending inside RAM from the hole', () => m.view(0x17f0, 0x20)],
    ['spanning the hole', () => m.write(0x1300, new Uint8Array(0x600))],
    ['running past RAM end', () => m.write(0x2700, new Uint8Array(0x200))],
    ['exactly at RAM end', () => m.write64(0x2800, 1n)],
    ['past the backing', () => m.read8(0x3000)],
  ];
  for (const [what, access] of refused) assert.throws(access, GuestMemoryError, what);
  assert.equal(m.contains(0x1600, 1), false);
  assert.equal(m.contains(0x2700, 0x200), false);
  const holes = [...m.bytes.subarray(0x400, 0x800), ...m.bytes.subarray(0x1800)];
  assert.ok(
    holes.every((b) => b === 0),
    'no refused access wrote a byte',
  );
});

test('a RAM map must be non-empty ranges inside the backing, without overlap', () => {
  assert.throws(() => new ArrayGuestMemory(0x1000, 0, []), UsageError);
  assert.throws(() => new ArrayGuestMemory(0x1000, 0, [{ base: 0, size: 0x1001 }]), UsageError);
  assert.throws(() => new ArrayGuestMemory(0x1000, 0x1000, [{ base: 0, size: 0x10 }]), UsageError);
  assert.throws(() => new ArrayGuestMemory(0x1000, 0, [{ base: 0x100, size: 0 }]), UsageError);
  assert.throws(
    () =>
      new ArrayGuestMemory(0x1000, 0, [
        { base: 0, size: 0x200 },
        { base: 0x1ff, size: 0x10 },
      ]),
    UsageError,
  );
});

test('joinU64 keeps the high half; splitU64 is its inverse below 2^53', () => {
  assert.equal(joinU64(0x10, 1), 0x1_0000_0010);
  assert.deepEqual(splitU64(0x1_0000_0010), [0x10, 1]);
  assert.deepEqual(splitU64(0xffff_ffff), [0xffff_ffff, 0]);
  assert.deepEqual(splitU64(2 ** 53 - 1), [0xffff_ffff, 0x1f_ffff]);
  assert.ok(joinU64(0, 0xffffffff) > 2 ** 53, 'a 64-bit address near 2^64 stays huge');
  assert.equal(new ArrayGuestMemory(16).contains(joinU64(0, 0xffffffff), 1), false);
});

test('memory over a view of a larger buffer: views, reads and writes are of that view, at its offset', () => {
  const whole = new Uint8Array(0x3000).map((_, i) => i & 0xff);
  const m = new ArrayGuestMemory(whole.subarray(0x1000, 0x2000), 0x10_0000);
  assert.deepEqual(m.view(0x10_0010, 4), whole.subarray(0x1010, 0x1014));
  m.view(0x10_0020, 2).fill(0xee);
  assert.deepEqual([whole[0x1020], whole[0x1021], whole[0x1022]], [0xee, 0xee, 0x22], 'a write through a view lands in the backing view');
  assert.equal(m.read32(0x10_0ffc), 0xfffefdfc);
  assert.throws(() => m.view(0x10_0ff0, 0x11), GuestMemoryError, 'a view one byte past the region, though the buffer goes on');
  assert.ok(
    whole.subarray(0x2000).every((x, i) => x === ((0x2000 + i) & 0xff)),
    'nothing past the view touched',
  );
});

test('region(): one check for a range, then its bytes at addr - base; refused like a view', () => {
  const low = new ArrayGuestMemory(0x1000, 0);
  const high = new ArrayGuestMemory(0x1000, 0x1_0000_0000, [{ base: 0x1_0000_0000, size: 0x800 }]);
  const m = new RegionGuestMemory([low, high]);
  const r = m.region(0x1_0000_0100, 0x20);
  assert.equal(r, high, 'the region that holds the range');
  r.dv.setUint32(0x1_0000_0100 - r.base, 0xcafef00d, true);
  r.bytes.set([1, 2, 3], 0x1_0000_0110 - r.base);
  assert.equal(m.read32(0x1_0000_0100), 0xcafef00d);
  assert.deepEqual([...m.view(0x1_0000_0110, 3)], [1, 2, 3]);
  assert.deepEqual(new Uint8Array(r.buffer, r.byteOffset + 0x110, 3), m.view(0x1_0000_0110, 3), 'buffer and byteOffset are those of bytes');
  assert.equal(low.region(0xff0, 0x10), low);
  assert.throws(() => low.region(0xff0, 0x11), GuestMemoryError, 'one byte past the region');
  assert.throws(() => m.region(0x1_0000_07f0, 0x20), GuestMemoryError, 'into the hole past RAM');
  assert.throws(() => m.region(0x800, 0x1000), GuestMemoryError, 'spanning the gap');
  assert.throws(() => low.region(2 ** 53, 1), GuestMemoryError);
});
