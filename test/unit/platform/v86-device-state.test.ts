// v86 saved states with our functions in them (src/platform/v86/device-state.ts), without v86: a
// stand-in CPU whose get_state/set_state the join wraps. A save carries each virtio function's
// snapshot at V86_DEVICE_STATE_INDEX; a restore applies them into fresh functions after the CPU's own
// set_state; every hostile device part is refused (V86StateError) before the CPU restores anything,
// with every function untouched; a state without a device part restores the CPU alone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RngDevice } from '../../../src/device/rng/rng-device.js';
import { VirtioDriver } from '../../../src/driver/virtio-driver.js';
import { V86StateError } from '../../../src/errors.js';
import { Machine } from '../../../src/platform/machine.js';
import { V86_DEVICE_STATE_INDEX, joinV86States, type PluggedFunction } from '../../../src/platform/v86/device-state.js';
import type { VirtioPciFunction } from '../../../src/transport/pci/virtio-pci-function.js';

/** A CPU whose state is one number; `restored` records what set_state was given. */
function fakeCpu(value: number): { get_state(): unknown[]; set_state(state: unknown[]): void; restored: unknown[][] } {
  const restored: unknown[][] = [];
  return {
    get_state: () => [value],
    set_state: (state) => void restored.push(state),
    restored,
  };
}

/** A machine with an rng at devfn 0x70 (its function, and the list the join reads). */
function machine(): { m: Machine; fn: VirtioPciFunction; list: PluggedFunction[] } {
  const m = new Machine({ ramSize: 4 << 20 });
  const { bdf, fn } = m.plugVirtio(new RngDevice());
  return { m, fn, list: [{ devfn: bdf & 0xff, name: 'rng', fn }] };
}

/** A state saved with the rng live (driver at DRIVER_OK, one queue). */
async function savedState(): Promise<unknown[]> {
  const { m, list } = machine();
  const cpu = fakeCpu(7);
  joinV86States(
    cpu,
    () => list,
    () => undefined,
  );
  const drv = await VirtioDriver.open(m.bus, list[0]!.devfn, { timeoutMs: 1000 });
  await drv.negotiate(0n);
  await drv.setupQueue(0);
  await drv.driverOk();
  return cpu.get_state();
}

test('a save carries the function; a restore applies it after the CPU state', async () => {
  const state = await savedState();
  assert.equal(state[0], 7);
  const target = machine();
  const cpu = fakeCpu(0);
  let restoredCalls = 0;
  joinV86States(
    cpu,
    () => target.list,
    () => restoredCalls++,
  );
  assert.equal(target.fn.core.status, 0);
  cpu.set_state(state);
  assert.equal(cpu.restored.length, 1);
  assert.equal(target.fn.core.status, 0x0f, 'the function is live again, as saved');
  assert.equal(restoredCalls, 1);
});

test('a state without a device part restores the CPU alone', () => {
  const target = machine();
  const cpu = fakeCpu(0);
  joinV86States(
    cpu,
    () => target.list,
    () => assert.fail('no device part: nothing to reroute'),
  );
  cpu.set_state([3]);
  assert.equal(cpu.restored.length, 1);
  assert.equal(target.fn.core.status, 0);
});

test('hostile device parts are refused before anything is restored', async () => {
  const good = await savedState();
  const part = good[V86_DEVICE_STATE_INDEX] as [string, number, [number, string, Uint8Array][]];
  const [devfn, name, bytes] = part[2][0]!;
  const broken = bytes.slice();
  broken.fill(0, 0, 4);
  const cases: [string, unknown][] = [
    ['not a list', 'virtio-ts-devices'],
    ['another tag', ['something', 1, []]],
    ['another version', ['virtio-ts-devices', 2, part[2]]],
    ['no function list', ['virtio-ts-devices', 1, 5]],
    ['a malformed entry', ['virtio-ts-devices', 1, [[devfn, name, 'bytes']]]],
    ['no function', ['virtio-ts-devices', 1, []]],
    ['another devfn', ['virtio-ts-devices', 1, [[devfn + 8, name, bytes]]]],
    ['a function twice', ['virtio-ts-devices', 1, [part[2][0], part[2][0]]]],
    ['corrupt snapshot bytes', ['virtio-ts-devices', 1, [[devfn, name, broken]]]],
    ['truncated snapshot bytes', ['virtio-ts-devices', 1, [[devfn, name, bytes.subarray(0, bytes.byteLength >> 1)]]]],
  ];
  for (const [what, hostile] of cases) {
    const target = machine();
    const cpu = fakeCpu(0);
    joinV86States(
      cpu,
      () => target.list,
      () => assert.fail(what),
    );
    const state = [...good];
    state[V86_DEVICE_STATE_INDEX] = hostile;
    assert.throws(() => cpu.set_state(state), V86StateError, what);
    assert.equal(cpu.restored.length, 0, `${what}: the CPU restored nothing`);
    assert.equal(target.fn.core.status, 0, `${what}: the function is untouched`);
  }
});
