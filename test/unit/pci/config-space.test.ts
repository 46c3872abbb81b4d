/** Type-0 config space against PCI Local Bus 3.0's numbers (literals here, not the src/spec constants). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ConfigSpace, type PciHeader } from '../../../src/pci/config-space.js';
import type { BarDescriptor } from '../../../src/pci/function.js';
import type { AccessSize } from '../../../src/memory/access-size.js';
import { UsageError } from '../../../src/errors.js';

const HEADER: PciHeader = {
  vendorId: 0x1af4,
  deviceId: 0x1042,
  revisionId: 0x01,
  classCode: 0x010000,
  subsystemVendorId: 0x1af4,
  subsystemId: 0x1100,
  interruptPin: 1,
};

const mem32 = (size: number, prefetchable = false): BarDescriptor => ({ kind: 'memory', size, is64: false, prefetchable });
const mem64 = (size: number, prefetchable = true): BarDescriptor => ({ kind: 'memory', size, is64: true, prefetchable });
const io = (size: number): BarDescriptor => ({ kind: 'io', size, is64: false, prefetchable: false });

/** Little-endian composition of `size` bytes of `image` at `offset` (0 beyond the end). */
function compose(image: Uint8Array, offset: number, size: number): number {
  let v = 0;
  for (let i = size - 1; i >= 0; i--) v = v * 256 + (image[offset + i] ?? 0);
  return v;
}

test('header fields at their PCI offsets', () => {
  const cs = new ConfigSpace(HEADER, []);
  assert.equal(cs.read(0x00, 2), 0x1af4);
  assert.equal(cs.read(0x02, 2), 0x1042);
  assert.equal(cs.read(0x00, 4), 0x1042_1af4);
  assert.equal(cs.read(0x08, 1), 0x01);
  assert.equal(cs.read(0x08, 4), 0x0100_0001, 'revision, prog-if 0, subclass 0, base class 1');
  assert.equal(cs.read(0x0e, 1), 0x00, 'header type 0');
  assert.equal(cs.read(0x2c, 4), 0x1100_1af4);
  assert.equal(cs.read(0x3d, 1), 1, 'INTA#');
  assert.equal(cs.read(0x06, 2), 0, 'no capabilities: CAP_LIST clear');
  assert.equal(cs.read(0x34, 1), 0);
});

test('command register: only IO, MEMORY, MASTER and INTX_DISABLE are writable', () => {
  const cs = new ConfigSpace(HEADER, [io(32)]);
  cs.write(0x04, 2, 0xffff);
  assert.equal(cs.read(0x04, 2), 0x0407);
  cs.write(0x04, 4, 0xffff_0000);
  assert.equal(cs.read(0x04, 2), 0, 'a 4-byte write reaches command (status is read-only)');
  assert.equal(cs.read(0x06, 2), 0);
  cs.write(0x05, 1, 0x04);
  assert.equal(cs.read(0x04, 2), 0x0400, 'a byte write to the high byte');
});

test('read-only header fields stay read-only; line and cache line size are writable', () => {
  const cs = new ConfigSpace(HEADER, []);
  for (const [offset, size] of [
    [0x00, 4],
    [0x08, 4],
    [0x0c, 4],
    [0x2c, 4],
    [0x34, 4],
    [0x3c, 4],
  ] as const) {
    const before = cs.read(offset, size);
    cs.write(offset, size, 0xffff_ffff);
    const after = cs.read(offset, size);
    if (offset === 0x0c) assert.equal(after, (before & ~0xff) | 0xff, 'cache line size only');
    else if (offset === 0x3c) assert.equal(after, (before & ~0xff) | 0xff, 'interrupt line only');
    else assert.equal(after, before, `0x${offset.toString(16)}`);
  }
});

test('BAR sizing: 32-bit memory, prefetchable, 64-bit memory (small and >4 GiB), I/O', () => {
  const cs = new ConfigSpace(HEADER, [mem32(0x1000), mem32(0x100, true), mem64(0x4000), undefined, mem64(2 ** 33, false)]);
  const cs2 = new ConfigSpace(HEADER, [io(32), undefined, undefined, undefined, undefined, io(4)]);
  const size = (space: ConfigSpace, reg: number): number => {
    space.write(reg, 4, 0xffff_ffff);
    return space.read(reg, 4);
  };
  assert.equal(size(cs, 0x10), 0xffff_f000);
  assert.equal(size(cs, 0x14), 0xffff_ff08, 'prefetchable bit 3 read-only');
  assert.equal(size(cs, 0x18), 0xffff_c00c, '64-bit prefetchable: type bits 0b1100');
  assert.equal(size(cs, 0x1c), 0xffff_ffff, 'upper half of a 16 KiB 64-bit BAR');
  assert.equal(size(cs, 0x20), 0x0000_0004, '8 GiB 64-bit: no low bits writable');
  assert.equal(size(cs, 0x24), 0xffff_fffe, '8 GiB: bit 33 and up');
  assert.equal(size(cs2, 0x10), 0xffff_ffe1, 'I/O BAR of 32 ports: bit 0 set, bit 1 reserved');
  assert.equal(size(cs2, 0x24), 0xffff_fffd);
  assert.equal(size(cs2, 0x14), 0, 'unimplemented BAR reads 0');
  assert.equal(size(cs, 0x30), 0, 'no expansion ROM');
  // Low type bits survive any write.
  cs.write(0x10, 4, 0);
  assert.equal(cs.read(0x10, 4), 0);
  cs.write(0x18, 4, 0);
  assert.equal(cs.read(0x18, 4), 0xc);
  cs2.write(0x10, 4, 0);
  assert.equal(cs2.read(0x10, 4), 1);
});

test('decodedBars honours the command register and ignores unprogrammed or sizing values', () => {
  const cs = new ConfigSpace(HEADER, [io(32), mem32(0x1000), mem64(0x4000)]);
  cs.write(0x10, 4, 0xc040);
  cs.write(0x14, 4, 0xe000_1000);
  cs.write(0x18, 4, 0x0000_0000);
  cs.write(0x1c, 4, 0x0000_0010);
  assert.deepEqual(cs.decodedBars(), [], 'command 0: nothing decodes');
  cs.write(0x04, 2, 0x1);
  assert.deepEqual(
    cs.decodedBars().map((b) => [b.index, b.kind, b.base]),
    [[0, 'io', 0xc040]],
  );
  cs.write(0x04, 2, 0x2);
  assert.deepEqual(
    cs.decodedBars().map((b) => [b.index, b.kind, b.base]),
    [
      [1, 'memory', 0xe000_1000],
      [2, 'memory', 0x10_0000_0000],
    ],
  );
  cs.write(0x04, 2, 0x3);
  assert.equal(cs.decodedBars().length, 3);
  cs.write(0x14, 4, 0xffff_ffff);
  cs.write(0x18, 4, 0xffff_ffff);
  cs.write(0x1c, 4, 0xffff_ffff);
  assert.deepEqual(
    cs.decodedBars().map((b) => b.index),
    [0],
    'BARs left at the sizing pattern do not decode',
  );
  cs.write(0x10, 4, 0);
  assert.deepEqual(cs.decodedBars(), [], 'a BAR at 0 does not decode');
});

test('bad BAR declarations are refused', () => {
  assert.throws(() => new ConfigSpace(HEADER, [mem32(0x1800)]), UsageError);
  assert.throws(() => new ConfigSpace(HEADER, [mem32(8)]), UsageError);
  assert.throws(() => new ConfigSpace(HEADER, [io(2)]), UsageError);
  assert.throws(() => new ConfigSpace(HEADER, [mem64(0x1000), mem32(0x1000)]), UsageError);
  assert.throws(() => new ConfigSpace(HEADER, [undefined, undefined, undefined, undefined, undefined, mem64(0x1000)]), UsageError);
  assert.throws(() => new ConfigSpace(HEADER, [{ kind: 'io', size: 16, is64: true, prefetchable: false }]), UsageError);
});

test('capability list: from 0x40, DWORD-aligned, newest first, CAP_LIST set, masks and hooks', () => {
  const cs = new ConfigSpace(HEADER, []);
  const calls: string[] = [];
  const a = cs.addCapability({ id: 0x09, length: 5 });
  const b = cs.addCapability({
    id: 0x11,
    length: 12,
    beforeRead: (rel, len) => calls.push(`r${rel}+${len}`),
    afterWrite: (rel, len) => calls.push(`w${rel}+${len}`),
  });
  assert.equal(a.offset, 0x40);
  assert.equal(b.offset, 0x48, '0x40 + 5 rounded up to 4');
  assert.equal(cs.read(0x06, 2) & 0x10, 0x10);
  assert.equal(cs.read(0x34, 1), 0x48);
  assert.equal(cs.read(0x48, 2), 0x40_11, 'b: id 0x11, next 0x40');
  assert.equal(cs.read(0x40, 2), 0x00_09, 'a: id 0x09, end of list');
  b.set(4, 4, 0x1234_5678);
  b.setWritable(4, 4, 0x0000_ff00);
  cs.write(0x4c, 4, 0xffff_ffff);
  assert.equal(cs.read(0x4c, 4), 0x1234_ff78);
  cs.write(0x48, 2, 0);
  assert.equal(cs.read(0x48, 2), 0x40_11, 'id and next are read-only');
  calls.length = 0;
  cs.read(0x46, 4); // bytes 0x46..0x49: a's padding and b's first two bytes
  cs.write(0x53, 2, 0); // bytes 0x53..0x54: b's last byte and beyond
  assert.deepEqual(calls, ['r0+2', 'w11+1']);
  assert.throws(() => b.set(0, 1, 0), UsageError, 'device code cannot rewrite id/next');
});

test('every width at every offset equals the byte-wise composition of an independent image', () => {
  const cs = new ConfigSpace(HEADER, [io(64), undefined, undefined, undefined, mem64(0x4000)]);
  const cap = cs.addCapability({ id: 0x09, length: 16 });
  cap.set(2, 2, 0x0110);
  cap.set(8, 4, 0xdead_beef);
  cs.write(0x10, 4, 0xc001);
  cs.write(0x20, 4, 0xfebf_0000);
  cs.write(0x04, 2, 0x0003);
  const image = new Uint8Array(256);
  const put = (at: number, bytes: number[]): void => bytes.forEach((b, i) => (image[at + i] = b));
  put(0x00, [0xf4, 0x1a, 0x42, 0x10, 0x03, 0x00, 0x10, 0x00, 0x01, 0x00, 0x00, 0x01]);
  put(0x10, [0x01, 0xc0, 0x00, 0x00]);
  put(0x20, [0x0c, 0x00, 0xbf, 0xfe]);
  put(0x2c, [0xf4, 0x1a, 0x00, 0x11]);
  put(0x34, [0x40]);
  put(0x3d, [0x01]);
  put(0x40, [0x09, 0x00, 0x10, 0x01, 0, 0, 0, 0, 0xef, 0xbe, 0xad, 0xde]);
  for (const size of [1, 2, 4] as const)
    for (let offset = 0; offset < 256; offset++)
      assert.equal(cs.read(offset, size), compose(image, offset, size), `read${size * 8} at 0x${offset.toString(16)}`);
});

test('unaligned writes go byte by byte through the masks', () => {
  const cs = new ConfigSpace(HEADER, [mem32(0x100)]);
  cs.write(0x0f, 4, 0xaabb_ccdd); // BIST (RO), then BAR0 bytes 0..2
  assert.equal(cs.read(0x0f, 1), 0);
  assert.equal(cs.read(0x10, 4), 0x00aa_bb00, 'BAR0 byte 0 is type bits and size, bytes 1-2 writable');
  cs.write(0x3b, 2, 0x5a5a); // reserved byte 0x3b, interrupt line 0x3c
  assert.equal(cs.read(0x3b, 2), 0x5a00);
});

test('out-of-range offsets and sizes: reads 0, writes ignored, nothing throws', () => {
  const cs = new ConfigSpace(HEADER, []);
  const before = Array.from({ length: 256 }, (_, i) => cs.read(i, 1));
  for (const offset of [-1, 256, 1000, 1.5, Number.NaN]) {
    assert.equal(cs.read(offset, 4), 0);
    cs.write(offset, 4, 0xffff_ffff);
  }
  assert.equal(cs.read(0, 3 as AccessSize), 0);
  cs.write(4, 8 as AccessSize, 0xffff_ffff);
  assert.equal(cs.read(254, 4), compose(Uint8Array.from(before), 254, 4), 'bytes past 255 read 0');
  assert.deepEqual(
    Array.from({ length: 256 }, (_, i) => cs.read(i, 1)),
    before,
  );
});

test('property: random accesses never throw and never change read-only bytes', () => {
  const cs = new ConfigSpace(HEADER, [io(32), mem32(0x1000), undefined, undefined, mem64(0x4000)]);
  cs.addCapability({ id: 0x09, length: 20 });
  const readOnly = [0x00, 0x01, 0x02, 0x03, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0e, 0x2c, 0x2d, 0x2e, 0x2f, 0x34, 0x3d, 0x40, 0x41, 0x42];
  const snapshot = readOnly.map((o) => cs.read(o, 1));
  fc.assert(
    fc.property(
      fc.array(fc.record({ offset: fc.integer({ min: -4, max: 260 }), size: fc.constantFrom(1, 2, 4), value: fc.nat() })),
      (ops) => {
        for (const op of ops) {
          cs.write(op.offset, op.size, op.value);
          const v = cs.read(op.offset, op.size);
          assert.ok(Number.isInteger(v) && v >= 0 && v < 2 ** (8 * op.size));
        }
        assert.deepEqual(
          readOnly.map((o) => cs.read(o, 1) & (o === 0x06 ? ~0x08 : 0xff)),
          snapshot,
        );
      },
    ),
  );
});
