// Restore validates everything before touching anything (docs/snapshots.md): each kind of bad
// snapshot is a SnapshotError with its stable code, and the function refusing it is exactly as it
// was (its own snapshot encodes to the same bytes before and after) with guest memory untouched.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { SnapshotError, type SnapshotErrorCode } from '../../../src/errors.js';
import { decodeSnapshot, encodeSnapshot } from '../../../src/snapshot/codec.js';
import { SnapshotReader } from '../../../src/snapshot/snapshot-reader.js';
import { bytes, list, string, u16, u64, u8, type FunctionSnapshot, type SnapshotValue } from '../../../src/snapshot/snapshot-value.js';
import { SCENARIOS, liveScenario, scenarioFunction, type Scenario } from '../../helpers/snapshot-scenario.js';

type Path = readonly (string | number)[];

/** A copy of `v` with the value at `path` replaced by what `f` returns (undefined: removed). */
function edit(v: SnapshotValue, path: Path, f: (old: SnapshotValue) => SnapshotValue | undefined): SnapshotValue {
  if (path.length === 0) throw new Error('empty path');
  const [head, ...rest] = path;
  const apply = (old: SnapshotValue): SnapshotValue | undefined => (rest.length === 0 ? f(old) : edit(old, rest, f));
  if (v.type === 'struct' && typeof head === 'string') {
    const fields = new Map(v.fields);
    const next = apply(fields.get(head)!);
    if (next === undefined) fields.delete(head);
    else fields.set(head, next);
    return { type: 'struct', fields };
  }
  if (v.type === 'list' && typeof head === 'number') {
    const items = [...v.items];
    const next = apply(items[head]!);
    if (next === undefined) items.splice(head, 1);
    else items[head] = next;
    return { type: 'list', items };
  }
  throw new Error(`no ${String(head)} in a ${v.type}`);
}

function mutate(s: FunctionSnapshot, path: Path, f: (old: SnapshotValue) => SnapshotValue | undefined): FunctionSnapshot {
  return { ...s, fields: edit(s.fields, path, f) as FunctionSnapshot['fields'] };
}

const scenario = (kind: Scenario['kind'], packed = false, inOrder = false): Scenario =>
  SCENARIOS.find((s) => s.kind === kind && s.packed === packed && s.inOrder === inOrder)!;

/** Restore `bad` into a fresh function of `target` over the memory of `source`: refused with `code`, nothing changed. */
function refused(source: Scenario, target: Scenario, bad: (s: FunctionSnapshot) => FunctionSnapshot, code: SnapshotErrorCode): void {
  const live = liveScenario(source);
  const snap = decodeSnapshot(encodeSnapshot(live.harness.fn.snapshot()));
  const f = scenarioFunction(target, live.memory.bytes);
  const before = encodeSnapshot(f.harness.fn.snapshot());
  const memory = f.memory.bytes.slice();
  assert.throws(
    () => f.harness.fn.restore(bad(snap)),
    (e: unknown) => e instanceof SnapshotError && e.code === code,
    `expected ${code}`,
  );
  assert.deepEqual(encodeSnapshot(f.harness.fn.snapshot()), before, 'the function is as it was');
  assert.ok(
    f.memory.bytes.every((b, i) => b === memory[i]),
    'guest memory is as it was',
  );
  // The unmodified snapshot restores into the same function afterwards.
  if (source === target) f.harness.fn.restore(snap);
}

const blkSplit = scenario('blk-held');
const blkPackedInOrder = scenario('blk-held', true, true);
const net = scenario('net');
const chain0: Path = ['core', 'queues', 0, 'ring', 'chains', 0];

const CASES: [string, Scenario, Scenario, (s: FunctionSnapshot) => FunctionSnapshot, SnapshotErrorCode][] = [
  ['an unknown version', blkSplit, blkSplit, (s) => ({ ...s, version: 2 }), 'ERR_SNAPSHOT_VERSION'],
  ['another kind of snapshot', blkSplit, blkSplit, (s) => ({ ...s, kind: 'virtio-mmio-device' }), 'ERR_SNAPSHOT_KIND'],
  ['another device type', blkSplit, net, (s) => s, 'ERR_SNAPSHOT_KIND'],
  ['another PCI mode', blkSplit, blkSplit, (s) => mutate(s, ['mode'], () => string('legacy')), 'ERR_SNAPSHOT_KIND'],
  [
    'another vendor ID in config space',
    blkSplit,
    blkSplit,
    (s) =>
      mutate(s, ['config', 'bytes'], (b) => bytes(Uint8Array.from((b as { value: Uint8Array }).value, (x, i) => (i === 0 ? x ^ 1 : x)))),
    'ERR_SNAPSHOT_KIND',
  ],
  [
    'a ring of the other format',
    blkSplit,
    blkSplit,
    (s) => mutate(s, ['core', 'queues', 0, 'ring', 'format'], () => string('packed')),
    'ERR_SNAPSHOT_KIND',
  ],
  ['a missing field', blkSplit, blkSplit, (s) => mutate(s, ['core', 'generation'], () => undefined), 'ERR_SNAPSHOT_FIELD'],
  ['a field of another type', blkSplit, blkSplit, (s) => mutate(s, ['core', 'status'], () => u16(15)), 'ERR_SNAPSHOT_FIELD'],
  ['one queue too few', net, net, (s) => mutate(s, ['core', 'queues', 2], () => undefined), 'ERR_SNAPSHOT_QUEUE_COUNT'],
  [
    'one queue vector too few',
    net,
    net,
    (s) => mutate(s, ['notifications', 'queueVectors', 0], () => undefined),
    'ERR_SNAPSHOT_QUEUE_COUNT',
  ],
  ['DRIVER_OK without FEATURES_OK', blkSplit, blkSplit, (s) => mutate(s, ['core', 'status'], () => u8(0x07)), 'ERR_SNAPSHOT_RANGE'],
  [
    'a queue size beyond the maximum',
    blkSplit,
    blkSplit,
    (s) => mutate(s, ['core', 'queues', 0, 'size'], () => u16(4096)),
    'ERR_SNAPSHOT_RANGE',
  ],
  [
    'a misaligned descriptor table',
    blkSplit,
    blkSplit,
    (s) => mutate(s, ['core', 'queues', 0, 'desc'], (v) => u64((v as { value: bigint }).value + 2n)),
    'ERR_SNAPSHOT_RANGE',
  ],
  [
    'a ring outside guest memory',
    blkSplit,
    blkSplit,
    (s) => mutate(s, ['core', 'queues', 0, 'device'], () => u64(1n << 40n)),
    'ERR_SNAPSHOT_RANGE',
  ],
  [
    'an MSI-X vector the function does not have',
    blkSplit,
    blkSplit,
    (s) => mutate(s, ['notifications', 'configVector'], () => u16(3)),
    'ERR_SNAPSHOT_RANGE',
  ],
  [
    'a buffer outside guest memory',
    blkSplit,
    blkSplit,
    (s) => mutate(s, [...chain0, 'addrs', 0], () => u64(1n << 20n)),
    'ERR_SNAPSHOT_RANGE',
  ],
  [
    'a buffer address beyond 2^53',
    blkSplit,
    blkSplit,
    (s) => mutate(s, [...chain0, 'addrs', 0], () => u64(2n ** 64n - 1n)),
    'ERR_SNAPSHOT_RANGE',
  ],
  ['an id beyond the queue size', blkSplit, blkSplit, (s) => mutate(s, [...chain0, 'id'], () => u16(8)), 'ERR_SNAPSHOT_RANGE'],
  ['more queue pairs than the device has', net, net, (s) => mutate(s, ['device', 'activePairs'], () => u16(2)), 'ERR_SNAPSHOT_RANGE'],
  [
    'a used len beyond the chain',
    blkPackedInOrder,
    blkPackedInOrder,
    (s) =>
      mutate(
        mutate(s, ['core', 'queues', 0, 'ring', 'chains', 1, 'usedLen'], () => ({ type: 'u32', value: 4096 })),
        ['core', 'queues', 0, 'ring', 'chains', 1, 'held'],
        () => u8(1),
      ),
    'ERR_SNAPSHOT_RANGE',
  ],
  [
    'indices that disagree with the chains (split)',
    blkSplit,
    blkSplit,
    (s) => mutate(s, ['core', 'queues', 0, 'ring', 'lastAvail'], (v) => u16(((v as { value: number }).value + 1) & 0xffff)),
    'ERR_SNAPSHOT_IN_FLIGHT',
  ],
  [
    'positions that disagree with the chains (packed)',
    blkPackedInOrder,
    blkPackedInOrder,
    (s) => mutate(s, ['core', 'queues', 0, 'ring', 'nextUsed'], () => u16(1)),
    'ERR_SNAPSHOT_IN_FLIGHT',
  ],
  [
    'one chain twice',
    blkSplit,
    blkSplit,
    (s) => mutate(s, ['core', 'queues', 0, 'ring', 'chains', 1, 'id'], () => u16(readId(s, 0))),
    'ERR_SNAPSHOT_IN_FLIGHT',
  ],
  [
    'a chain with no buffers',
    blkSplit,
    blkSplit,
    (s) =>
      mutate(
        mutate(s, [...chain0, 'addrs'], () => list([])),
        [...chain0, 'lens'],
        () => list([]),
      ),
    'ERR_SNAPSHOT_IN_FLIGHT',
  ],
  [
    'the oldest in-order chain held back',
    blkPackedInOrder,
    blkPackedInOrder,
    (s) => mutate(s, [...chain0, 'held'], () => u8(1)),
    'ERR_SNAPSHOT_IN_FLIGHT',
  ],
  [
    'a completion held back for order without VIRTIO_F_IN_ORDER (fuzz finding)',
    blkSplit,
    blkSplit,
    (s) => mutate(s, [...chain0, 'held'], () => u8(1)),
    'ERR_SNAPSHOT_IN_FLIGHT',
  ],
  [
    'a ring for a disabled queue',
    blkSplit,
    blkSplit,
    (s) => mutate(s, ['core', 'queues', 0, 'enabled'], () => u8(0)),
    'ERR_SNAPSHOT_IN_FLIGHT',
  ],
];

function readId(s: FunctionSnapshot, k: number): number {
  return new SnapshotReader(s.fields, 'function').struct('core').structs('queues', 1)[0]!.struct('ring').structs('chains', 8)[k]!.u16('id');
}

for (const [what, source, target, bad, code] of CASES) {
  test(`restore refuses ${what} (${code}) and leaves the function as it was`, () => refused(source, target, bad, code));
}

test('restore refuses a function in use (ERR_SNAPSHOT_TARGET_BUSY) and leaves it as it was', () => {
  const live = liveScenario(blkSplit);
  const snap = live.harness.fn.snapshot();
  const before = encodeSnapshot(snap);
  assert.throws(
    () => live.harness.fn.restore(snap),
    (e: unknown) => e instanceof SnapshotError && e.code === 'ERR_SNAPSHOT_TARGET_BUSY',
  );
  assert.deepEqual(encodeSnapshot(live.harness.fn.snapshot()), before);
});

test('a snapshot carries what each layer holds: BAR address, command register, committed state, in-flight chains', () => {
  const live = liveScenario(blkPackedInOrder);
  const s = live.harness.fn.snapshot();
  const f = scenarioFunction(blkPackedInOrder, live.memory.bytes);
  f.harness.fn.restore(decodeSnapshot(encodeSnapshot(s)));
  const fn = f.harness.fn;
  assert.deepEqual(fn.decodedBars(), live.harness.fn.decodedBars(), 'BAR4 decodes at the same address');
  assert.equal(fn.core.status, live.harness.fn.core.status);
  assert.equal(fn.core.driverFeatures, live.harness.fn.core.driverFeatures);
  assert.deepEqual(encodeSnapshot(fn.snapshot()), encodeSnapshot(s), 'the restored function snapshots the same');
});

/** Every leaf of `v` with its path. */
function leaves(v: SnapshotValue, path: Path = []): [Path, SnapshotValue][] {
  if (v.type === 'struct') return [...v.fields].flatMap(([k, x]) => leaves(x, [...path, k]));
  if (v.type === 'list') return v.items.flatMap((x, i) => leaves(x, [...path, i]));
  return [[path, v]];
}

test('property: a real mid-I/O snapshot with any leaf replaced restores or is refused with SnapshotError, the function then unchanged', () => {
  const sources = SCENARIOS.map((s) => {
    const live = liveScenario(s);
    return { s, memory: live.memory.bytes.slice(), snap: live.harness.fn.snapshot() };
  });
  const replacement: fc.Arbitrary<SnapshotValue> = fc.oneof(
    fc.integer({ min: 0, max: 0xff }).map(u8),
    fc.integer({ min: 0, max: 0xffff }).map(u16),
    fc.constantFrom(0, 1, 2, 7, 8, 0xffff).map(u16),
    fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }).map(u64),
    fc.uint8Array({ maxLength: 300 }).map(bytes),
    fc.constantFrom('split', 'packed', 'modern', 'legacy', 'none', '').map(string),
    fc.constant(list([])),
  );
  fc.assert(
    fc.property(fc.nat(), fc.nat(), replacement, fc.boolean(), (which, leaf, value, remove) => {
      const { s, memory, snap } = sources[which % sources.length]!;
      const all = leaves(snap.fields);
      const [path] = all[leaf % all.length]!;
      const bad = mutate(snap, path, () => (remove ? undefined : value));
      const f = scenarioFunction(s, memory);
      const before = encodeSnapshot(f.harness.fn.snapshot());
      try {
        f.harness.fn.restore(bad);
      } catch (e) {
        assert.ok(e instanceof SnapshotError, `not a SnapshotError: ${String(e)}`);
        assert.deepEqual(encodeSnapshot(f.harness.fn.snapshot()), before, `${path.join('.')}: refused (${e.code}) but changed`);
        assert.ok(
          f.memory.bytes.every((b, i) => b === memory[i]),
          'guest memory unchanged',
        );
      }
    }),
    { numRuns: 400 },
  );
});

test('a queue address beyond 2^53 (a queue not live) round-trips exactly (fuzz finding: the joined number rounded to 2^64)', () => {
  const live = liveScenario(net);
  const q2: Path = ['core', 'queues', 2];
  let high = mutate(live.harness.fn.snapshot(), [...q2, 'ring'], () => undefined);
  high = mutate(high, [...q2, 'enabled'], () => u8(0));
  high = mutate(high, [...q2, 'desc'], () => u64(2n ** 64n - 1n));
  const f = scenarioFunction(net, live.memory.bytes);
  f.harness.fn.restore(high);
  const again = new SnapshotReader(decodeSnapshot(encodeSnapshot(f.harness.fn.snapshot())).fields, 'function');
  assert.equal(again.struct('core').structs('queues', 3)[2]!.u64('desc'), 2n ** 64n - 1n);
});
