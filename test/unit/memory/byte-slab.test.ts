import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ByteSlab } from '../../../src/memory/byte-slab.js';

test('ByteSlab: every array taken is zeroed, of the size asked, and shares no byte with another', () => {
  const slab = new ByteSlab(256);
  const taken: Uint8Array[] = [];
  // Sizes that fill a slab unevenly, so that several slabs are opened and arrays sit at their ends.
  for (let i = 0; i < 200; i++) {
    const n = [1, 7, 8, 13, 64, 0][i % 6]!;
    const a = slab.take(n);
    assert.equal(a.length, n);
    assert.ok(
      a.every((b) => b === 0),
      `array ${i} came zeroed`,
    );
    a.fill(i & 0xff);
    taken.push(a);
  }
  // Had two arrays overlapped, the later fill would show in the earlier one.
  taken.forEach((a, i) =>
    assert.ok(
      a.every((b) => b === (i & 0xff)),
      `array ${i} kept its bytes`,
    ),
  );
});

test('ByteSlab: a request larger than a quarter of a slab gets an array of its own', () => {
  const slab = new ByteSlab(256);
  const big = slab.take(65);
  assert.equal(big.byteOffset, 0);
  assert.equal(big.buffer.byteLength, 65);
  const small = slab.take(64);
  assert.equal(small.buffer.byteLength, 256, 'a small one comes from the slab');
});
