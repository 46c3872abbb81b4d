import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NaturallyAligned, RegionMap, type BarRegion } from '../../../src/pci/bar-region.js';
import type { AccessSize } from '../../../src/memory/access-size.js';
import { UsageError } from '../../../src/errors.js';

/** A block that logs accesses and reads back offset-derived bytes. */
function logger(log: string[]): BarRegion {
  return {
    read: (o: number, s: AccessSize) => {
      log.push(`r${s}@${o}`);
      return 0x100 * o + s;
    },
    write: (o: number, s: AccessSize, v: number) => void log.push(`w${s}@${o}=${v.toString(16)}`),
  };
}

test('RegionMap: accesses inside one block reach it at block offsets; holes and straddles read 0', () => {
  const log: string[] = [];
  const map = new RegionMap().add(0x10, 0x10, logger(log)).add(0x20, 0x10, logger(log));
  assert.equal(map.read(0x12, 2), 0x202);
  map.write(0x2c, 4, 0xabc);
  assert.equal(map.read(0x00, 4), 0, 'hole');
  assert.equal(map.read(0x1e, 4), 0, 'straddles two blocks');
  map.write(0x30, 1, 1);
  assert.deepEqual(log, ['r2@2', 'w4@12=abc']);
  assert.throws(() => map.add(0x18, 0x10, logger(log)), UsageError);
});

test('NaturallyAligned: aligned accesses pass through; others split into aligned pieces, low address first', () => {
  const log: string[] = [];
  const r = new NaturallyAligned(logger(log));
  assert.equal(r.read(8, 4), 0x804);
  assert.equal(r.read(6, 2), 0x602);
  assert.deepEqual(log.splice(0), ['r4@8', 'r2@6']);
  // read32 at 6: pieces 2@6 and 2@8, composed little-endian (each piece's value truncated by the block).
  r.read(6, 4);
  assert.deepEqual(log.splice(0), ['r2@6', 'r2@8']);
  r.read(5, 4);
  assert.deepEqual(log.splice(0), ['r1@5', 'r2@6', 'r1@8']);
  r.read(7, 2);
  assert.deepEqual(log.splice(0), ['r1@7', 'r1@8']);
  r.write(5, 4, 0x44332211);
  assert.deepEqual(log.splice(0), ['w1@5=11', 'w2@6=3322', 'w1@8=44']);
  r.write(2, 4, 0xffff_0001);
  assert.deepEqual(log.splice(0), ['w2@2=1', 'w2@4=ffff']);
  const bytes = new NaturallyAligned({ read: (o: number) => o, write: () => {} });
  // Pieces 1@1 (1), 2@2 (2: bytes 02 00), 1@4 (4).
  assert.equal(bytes.read(1, 4), 0x04_00_02_01, 'pieces compose little-endian');
});
