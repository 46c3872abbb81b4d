/**
 * Hostile snapshots: bytes fed to decodeSnapshot and, when they decode, to VirtioPciFunction.restore
 * of a fresh function (rng, blk with held requests, net, multiport console; split or packed ring,
 * with or without VIRTIO_F_IN_ORDER), over a copy of the guest memory its seed snapshot was taken
 * with. The first byte picks the function; the rest are the snapshot's bytes. Seeds are real
 * snapshots taken mid-I/O (test/helpers/snapshot-scenario.ts).
 *
 * Checked on every input: decoding and restoring throw nothing but SnapshotError; a refused restore
 * leaves the function exactly as it was (its snapshot before and after encode to the same bytes); a
 * restored function can be snapshotted, and that snapshot restores into another fresh function and
 * encodes the same; the restored function then serves notifications and its backend without
 * anything but typed errors (a hostile in-flight set may only end in DEVICE_NEEDS_RESET).
 */

import { SnapshotError } from '../../src/errors.js';
import { decodeSnapshot, encodeSnapshot } from '../../src/snapshot/codec.js';
import type { FunctionSnapshot } from '../../src/snapshot/snapshot-value.js';
import { MODERN_NOTIFY_OFF_MULTIPLIER } from '../../src/transport/pci/notify-cfg.js';
import { SCENARIOS, liveScenario, scenarioFunction, scenarioName, type ScenarioFunction } from '../../test/helpers/snapshot-scenario.js';
import { check, expectTyped } from '../engine/guarantees.js';
import type { MutationShape } from '../engine/mutator.js';
import type { Seed } from '../engine/target.js';

export const description =
  'hostile snapshot bytes: decode, restore into a fresh function (blk/net/console/rng, split/packed, in-order), refusal leaves it unchanged';

export const shape: MutationShape = {
  maxLength: 16 * 1024,
  headerSize: 1,
  dictionary: [
    Uint8Array.of(0x56, 0x54, 0x53, 0x4e, 1, 0),
    Uint8Array.of(0xff, 0xff, 0xff, 0xff),
    Uint8Array.of(0x08, 0xff, 0xff, 0xff, 0x7f),
    Uint8Array.of(0x07, 0x00, 0x00, 0x01, 0x00),
  ],
};

/** Per scenario: the guest memory its seed snapshot was taken with (built once). */
const images = new Map<number, Uint8Array>();

function image(index: number): Uint8Array {
  let img = images.get(index);
  if (img === undefined) {
    img = liveScenario(SCENARIOS[index]!).memory.bytes.slice();
    images.set(index, img);
  }
  return img;
}

function encoded(f: ScenarioFunction): Uint8Array {
  const s = expectTyped('snapshot', [], () => f.harness.fn.snapshot());
  return encodeSnapshot(s as FunctionSnapshot);
}

function same(a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === b.byteLength && a.every((x, i) => x === b[i]);
}

export async function run(data: Uint8Array): Promise<void> {
  const index = (data[0] ?? 0) % SCENARIOS.length;
  const decoded = expectTyped('decodeSnapshot', [SnapshotError], () => decodeSnapshot(data.subarray(1)));
  if (decoded instanceof SnapshotError) return;
  const target = scenarioFunction(SCENARIOS[index]!, image(index));
  const before = encoded(target);
  const memoryBefore = target.memory.bytes.slice();
  const result = expectTyped('restore', [SnapshotError], () => target.harness.fn.restore(decoded as FunctionSnapshot));
  if (result instanceof SnapshotError) {
    check(same(encoded(target), before), 'contract', () => `restore refused (${result.code}) but changed the function`);
    check(same(target.memory.bytes, memoryBefore), 'memory-outside', () => `restore refused (${result.code}) but wrote guest memory`);
    return;
  }
  // A restored function's own snapshot is a valid one: it restores elsewhere and reads back the same.
  const again = encoded(target);
  const other = scenarioFunction(SCENARIOS[index]!, target.memory.bytes);
  const second = expectTyped('restore of a snapshot of a restored function', [], () => other.harness.fn.restore(decodeSnapshot(again)));
  check(!(second instanceof SnapshotError), 'contract', () => 'the snapshot of a restored function was refused');
  check(same(encoded(other), again), 'contract', () => 'a snapshot restored and taken again differs');
  // Serve what the snapshot left in flight: notifications, held backend operations, host input.
  const fn = target.harness.fn;
  expectTyped('notify after restore', [], () => {
    for (let q = 0; q < fn.core.queues.length; q++) target.harness.notify(q * MODERN_NOTIFY_OFF_MULTIPLIER, 2, q);
    target.zoo.hostInput(0, new Uint8Array(40).fill(0x33));
  });
  for (let round = 0; round < 4 && target.zoo.held !== undefined && target.zoo.held.pending.length > 0; round++) {
    target.zoo.held.releaseAll();
    await new Promise((resolve) => setImmediate(resolve));
  }
  expectTyped('snapshot after serving', [], () => fn.snapshot());
}

export function seeds(): Seed[] {
  return SCENARIOS.map((s, i) => {
    const live = liveScenario(s);
    return { name: `mid-io-${scenarioName(s)}`, data: Uint8Array.of(i, ...encodeSnapshot(live.harness.fn.snapshot())) };
  });
}
