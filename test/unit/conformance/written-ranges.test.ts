import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WriteTrackingMemory } from '../../../src/conformance/written-ranges.js';

test('WriteTrackingMemory hands out what was written, in order, adjacent writes joined, and forgets it', () => {
  const memory = new WriteTrackingMemory(256, 0x1000);
  memory.write32(0x1010, 1);
  memory.write16(0x1014, 2);
  memory.write(0x1080, Uint8Array.of(1, 2, 3));
  memory.write8(0x1000, 9);
  memory.view(0x1040, 16).fill(7); // views are for reading: not recorded
  assert.deepEqual(memory.takeWritten(), [
    { addr: 0x1010, len: 6 },
    { addr: 0x1080, len: 3 },
    { addr: 0x1000, len: 1 },
  ]);
  assert.deepEqual(memory.takeWritten(), []);
  memory.write64(0x1020, 5n);
  assert.deepEqual(memory.takeWritten(), [{ addr: 0x1020, len: 8 }]);
  assert.equal(memory.read16(0x1014), 2);
});
