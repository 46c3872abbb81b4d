// State waiting inside a device at the save point reaches the guest after restore exactly as it would
// have: a multiport console's control messages queued for want of a control receive buffer, and a
// net receive buffer held for the next frame. The function is driven through its registers with mock
// rings (test/helpers/snapshot-scenario.ts); the original and the restored function (a fresh one over
// a copy of guest memory) get the same notification and host input, and must leave the same memory.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeSnapshot, encodeSnapshot } from '../../../src/snapshot/codec.js';
import { SnapshotReader } from '../../../src/snapshot/snapshot-reader.js';
import { MODERN_NOTIFY_OFF_MULTIPLIER } from '../../../src/transport/pci/notify-cfg.js';
import { SCENARIOS, liveScenario, scenarioFunction, scenarioName, type ScenarioFunction } from '../../helpers/snapshot-scenario.js';

const notify = (f: ScenarioFunction, q: number): void => f.harness.notify(q * MODERN_NOTIFY_OFF_MULTIPLIER, 2, q);

for (const s of SCENARIOS.filter((x) => x.kind === 'console-multiport' || x.kind === 'net')) {
  test(`${scenarioName(s)}: what waited in the device at the save point reaches the guest after restore as without the save`, () => {
    const live = liveScenario(s);
    if (s.kind === 'console-multiport') {
      // A control receive buffer, made available but not yet notified.
      live.rings[2]!.addChain({ writable: [64] });
      live.rings[2]!.addChain({ writable: [64] });
    }
    const bytes = encodeSnapshot(live.harness.fn.snapshot());
    const device = new SnapshotReader(decodeSnapshot(bytes).fields, 'function').struct('device');
    if (s.kind === 'console-multiport') assert.equal(device.list('controlOut', 8).length, 2, 'two DEVICE_ADD messages wait');
    const restored = scenarioFunction(s, live.memory.bytes);
    restored.harness.fn.restore(decodeSnapshot(bytes));
    for (const f of [live, restored]) {
      if (s.kind === 'console-multiport') notify(f, 2);
      else {
        // The transmit chain the scenario left un-notified: the restored device served it when it
        // was activated (as DRIVER_OK does), the original does now.
        notify(f, 1);
        f.zoo.hostInput(
          0,
          Uint8Array.from({ length: 14 }, (_, i) => 0x40 + i),
        );
        f.zoo.hostInput(
          0,
          Uint8Array.from({ length: 60 }, (_, i) => i),
        );
      }
    }
    const diff = restored.memory.bytes.findIndex((b, i) => b !== live.memory.bytes[i]);
    assert.equal(diff, -1, `guest memory differs at 0x${diff.toString(16)}`);
    const used = live.rings[s.kind === 'net' ? 0 : 2]!.readUsed();
    assert.equal(used.length, 2, 'both buffers came back used');
    assert.ok(used.every((u) => u.len > 0));
    assert.deepEqual(encodeSnapshot(restored.harness.fn.snapshot()), encodeSnapshot(live.harness.fn.snapshot()));
  });
}
