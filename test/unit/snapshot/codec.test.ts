// The snapshot byte format (src/snapshot/codec.ts, docs/snapshots.md): any tree of named fields
// round-trips; every malformed input is a SnapshotError with a stable code, never another exception,
// and decoding allocates nothing a short input could not pay for.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { SnapshotError, UsageError } from '../../../src/errors.js';
import { SNAPSHOT_MAX_DEPTH, decodeSnapshot, encodeSnapshot } from '../../../src/snapshot/codec.js';
import { SnapshotReader } from '../../../src/snapshot/snapshot-reader.js';
import {
  SNAPSHOT_FORMAT_VERSION,
  bytes,
  list,
  string,
  struct,
  u16,
  u32,
  u64,
  u8,
  type FunctionSnapshot,
  type SnapshotValue,
} from '../../../src/snapshot/snapshot-value.js';

const name = fc.stringMatching(/^[A-Za-z0-9_-]{1,12}$/);
const leaf: fc.Arbitrary<SnapshotValue> = fc.oneof(
  fc.integer({ min: 0, max: 0xff }).map(u8),
  fc.integer({ min: 0, max: 0xffff }).map(u16),
  fc.integer({ min: 0, max: 0xffff_ffff }).map(u32),
  fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }).map(u64),
  fc.uint8Array({ maxLength: 40 }).map(bytes),
  fc.string({ maxLength: 20, unit: 'grapheme' }).map(string),
);
const tree = fc.letrec<{ value: SnapshotValue; node: SnapshotValue }>((tie) => ({
  value: fc.oneof({ depthSize: 'small', withCrossShrink: true }, leaf, tie('node')),
  node: fc.oneof(
    fc.array(tie('value'), { maxLength: 4 }).map(list),
    fc
      .uniqueArray(fc.tuple(name, tie('value')), { maxLength: 4, selector: ([n]) => n })
      .map((entries) => struct(Object.fromEntries(entries))),
  ),
}));
const snapshotArb: fc.Arbitrary<FunctionSnapshot> = fc
  .uniqueArray(fc.tuple(name, tree.value), { maxLength: 6, selector: ([n]) => n })
  .map((entries) => ({ version: SNAPSHOT_FORMAT_VERSION, kind: 'test-kind', fields: struct(Object.fromEntries(entries)) }));

test('codec: every snapshot round-trips, and encodes to the same bytes again', () => {
  fc.assert(
    fc.property(snapshotArb, (s) => {
      const b = encodeSnapshot(s);
      const d = decodeSnapshot(b);
      assert.deepEqual(d, s);
      assert.deepEqual(encodeSnapshot(d), b);
    }),
    { numRuns: 300 },
  );
});

test('codec: hostile mutations of a valid encoding decode or throw SnapshotError, nothing else', () => {
  fc.assert(
    fc.property(
      snapshotArb,
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 }), fc.constantFrom('set', 'cut', 'insert')), {
        minLength: 1,
        maxLength: 6,
      }),
      (s, edits) => {
        let b = Array.from(encodeSnapshot(s));
        for (const [at, value, op] of edits) {
          const i = b.length === 0 ? 0 : at % b.length;
          if (op === 'set') b[i] = value;
          else if (op === 'cut') b = b.slice(0, i);
          else b.splice(i, 0, value, 0xff, 0xff, 0xff);
        }
        try {
          const d = decodeSnapshot(Uint8Array.from(b));
          // Whatever decodes is a snapshot the encoder takes back.
          encodeSnapshot(d);
        } catch (e) {
          assert.ok(e instanceof SnapshotError, `not a SnapshotError: ${String(e)}`);
          assert.ok(e.code === 'ERR_SNAPSHOT_MALFORMED' || e.code === 'ERR_SNAPSHOT_VERSION', e.code);
        }
      },
    ),
    { numRuns: 1000 },
  );
});

const header = [0x56, 0x54, 0x53, 0x4e, 1, 0, 1, 0x6b];
function code(b: number[]): string {
  try {
    decodeSnapshot(Uint8Array.from(b));
  } catch (e) {
    assert.ok(e instanceof SnapshotError);
    return e.code;
  }
  return 'decoded';
}

test('codec: each malformed shape has its refusal', () => {
  const empty = [...header, 8, 0, 0, 0, 0];
  assert.equal(code(empty), 'decoded');
  assert.equal(code([]), 'ERR_SNAPSHOT_MALFORMED', 'empty');
  assert.equal(code([0x56, 0x54, 0x53, 0x4f, 1, 0]), 'ERR_SNAPSHOT_MALFORMED', 'bad magic');
  assert.equal(code([0x56, 0x54, 0x53, 0x4e, 2, 0, 1, 0x6b, 8, 0, 0, 0, 0]), 'ERR_SNAPSHOT_VERSION', 'a later version');
  assert.equal(code([...empty, 0]), 'ERR_SNAPSHOT_MALFORMED', 'a trailing byte');
  assert.equal(code(empty.slice(0, -1)), 'ERR_SNAPSHOT_MALFORMED', 'truncated');
  assert.equal(code([...header, 1, 0]), 'ERR_SNAPSHOT_MALFORMED', 'the root is not a struct');
  assert.equal(code([...header, 9]), 'ERR_SNAPSHOT_MALFORMED', 'unknown tag');
  // A count of 2^32 - 1 items in a 13-byte input: refused before anything is allocated for it.
  assert.equal(code([...header, 8, 0xff, 0xff, 0xff, 0xff]), 'ERR_SNAPSHOT_MALFORMED', 'a count beyond the input');
  assert.equal(code([...header, 8, 1, 0, 0, 0, 1, 0x61, 5, 0xff, 0xff, 0xff, 0x7f]), 'ERR_SNAPSHOT_MALFORMED', 'a length beyond the input');
  assert.equal(code([...header, 8, 2, 0, 0, 0, 1, 0x61, 1, 0, 1, 0x61, 1, 0]), 'ERR_SNAPSHOT_MALFORMED', 'a field twice');
  assert.equal(code([...header, 8, 1, 0, 0, 0, 1, 0x2e, 1, 0]), 'ERR_SNAPSHOT_MALFORMED', 'a name with a bad character');
  assert.equal(code([...header, 8, 1, 0, 0, 0, 1, 0x61, 6, 1, 0, 0, 0, 0xc3]), 'ERR_SNAPSHOT_MALFORMED', 'a string that is not UTF-8');
  // Nesting: the root struct, then lists down to the limit, decodes; one more level is refused.
  const nested = (depth: number): number[] => [
    ...header,
    8,
    1,
    0,
    0,
    0,
    1,
    0x61,
    ...Array.from({ length: depth - 1 }, () => [7, 1, 0, 0, 0]).flat(),
    7,
    0,
    0,
    0,
    0,
  ];
  assert.equal(code(nested(SNAPSHOT_MAX_DEPTH - 1)), 'decoded');
  assert.equal(code(nested(SNAPSHOT_MAX_DEPTH)), 'ERR_SNAPSHOT_MALFORMED', 'too deep');
  assert.throws(
    () => decodeSnapshot('VTSN' as unknown as Uint8Array),
    (e: unknown) => e instanceof SnapshotError,
  );
});

test('codec: the encoder refuses what no decoder would take', () => {
  assert.throws(() => encodeSnapshot({ version: 1, kind: 'k', fields: struct({ a: { type: 'u8', value: 256 } }) }), UsageError);
  assert.throws(() => encodeSnapshot({ version: 1, kind: 'bad kind', fields: struct({}) }), UsageError);
  assert.throws(() => struct({ 'a.b': u8(1) }), UsageError);
  let deep: SnapshotValue = u8(0);
  for (let i = 0; i < SNAPSHOT_MAX_DEPTH + 1; i++) deep = list([deep]);
  assert.throws(() => encodeSnapshot({ version: 1, kind: 'k', fields: struct({ a: deep }) }), UsageError);
});

test('reader: missing fields, wrong types and ranges are typed refusals naming the field; unknown fields are ignored', () => {
  const r = new SnapshotReader(struct({ a: u8(7), s: string('x'), extra: u32(1), l: list([u8(1), u16(2)]) }), 'root');
  assert.equal(r.u8('a'), 7);
  const refused = (f: () => unknown, c: string, path: string): void =>
    assert.throws(f, (e: unknown) => e instanceof SnapshotError && e.code === c && e.message.includes(path));
  refused(() => r.u8('b'), 'ERR_SNAPSHOT_FIELD', 'root.b');
  refused(() => r.u16('a'), 'ERR_SNAPSHOT_FIELD', 'root.a');
  refused(() => r.int('a', 'u8', 0, 5), 'ERR_SNAPSHOT_RANGE', 'root.a');
  refused(() => r.choice('s', ['y', 'z']), 'ERR_SNAPSHOT_RANGE', 'root.s');
  refused(() => r.ints('l', 'u8', 4), 'ERR_SNAPSHOT_FIELD', 'root.l[1]');
  refused(() => r.list('l', 1), 'ERR_SNAPSHOT_RANGE', 'root.l');
});
