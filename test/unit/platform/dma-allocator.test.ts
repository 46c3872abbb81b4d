import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { DmaAllocator } from '../../../src/bus/dma-allocator.js';
import { UsageError } from '../../../src/errors.js';

test('aligned first fit; the freed space is reused', () => {
  const a = new DmaAllocator(0x1000, 0x1000);
  const x = a.alloc(10, 1);
  assert.equal(x, 0x1000);
  const y = a.alloc(16, 64);
  assert.equal(y, 0x1040);
  const z = a.alloc(4, 4);
  assert.equal(z, 0x100c, 'first fit: the gap left by alignment');
  a.free(x);
  assert.equal(a.alloc(8, 8), 0x1000);
  assert.equal(a.sizeOf(y), 16);
});

test('free coalesces with both neighbours, whatever the order', () => {
  const a = new DmaAllocator(0, 0x10000);
  const blocks = Array.from({ length: 16 }, () => a.alloc(0x100, 0x100));
  for (const i of [3, 1, 2, 0, 15, 8, 9, 7, 4, 6, 5, 10, 12, 11, 14, 13]) a.free(blocks[i]!);
  assert.equal(a.freeBlocks, 1);
  assert.equal(a.freeBytes, 0x10000);
  assert.equal(a.alloc(0x10000, 1), 0, 'the whole range is one block again');
});

test('addresses above 4 GiB and large alignments are exact', () => {
  const a = new DmaAllocator(0x1_0000_0010, 0x10_0000);
  assert.equal(a.alloc(1, 0x1000), 0x1_0000_1000);
  assert.equal(a.alloc(0, 1), 0x1_0000_0010, 'size 0 takes one byte');
  assert.notEqual(a.alloc(0, 1), 0x1_0000_0010);
});

test('exhaustion, double free and bad arguments are UsageErrors', () => {
  const a = new DmaAllocator(0, 0x100);
  const x = a.alloc(0x80, 1);
  assert.throws(() => a.alloc(0x81, 1), UsageError);
  assert.throws(() => a.alloc(0x10, 0x100), UsageError, 'only address 0 is 0x100-aligned, and it is taken');
  a.free(x);
  assert.throws(() => a.free(x), UsageError);
  assert.throws(() => a.free(0x7), UsageError);
  assert.throws(() => a.alloc(1, 3), UsageError);
  assert.throws(() => a.alloc(-1, 1), UsageError);
  assert.throws(() => new DmaAllocator(0, 0), UsageError);
});

test('property: allocations are aligned, inside the range, disjoint; freeing all restores one block', () => {
  fc.assert(
    fc.property(
      fc.array(
        fc.record({ size: fc.integer({ min: 0, max: 300 }), alignLog: fc.integer({ min: 0, max: 8 }), freeIndex: fc.option(fc.nat()) }),
        { maxLength: 80 },
      ),
      (ops) => {
        const base = 0x2000;
        const size = 0x4000;
        const a = new DmaAllocator(base, size);
        const live: { addr: number; size: number }[] = [];
        for (const op of ops) {
          if (op.freeIndex !== null && live.length > 0) {
            const [victim] = live.splice(op.freeIndex % live.length, 1);
            a.free(victim!.addr);
            continue;
          }
          const align = 1 << op.alignLog;
          let addr: number;
          try {
            addr = a.alloc(op.size, align);
          } catch (e) {
            assert.ok(e instanceof UsageError);
            continue;
          }
          const len = Math.max(op.size, 1);
          assert.equal(addr % align, 0);
          assert.ok(addr >= base && addr + len <= base + size);
          for (const other of live) assert.ok(addr + len <= other.addr || other.addr + other.size <= addr, 'disjoint');
          live.push({ addr, size: len });
        }
        for (const b of live) a.free(b.addr);
        assert.equal(a.freeBlocks, 1);
        assert.equal(a.freeBytes, size);
      },
    ),
  );
});
