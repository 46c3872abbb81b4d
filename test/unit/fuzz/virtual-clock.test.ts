/**
 * The virtual clock hostile-device runs its drivers on (fuzz/harness/virtual-clock.ts): timers fire
 * in due order without wall-clock waits, only once nothing else can run, and none survives uninstall.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VirtualClock } from '../../../fuzz/harness/virtual-clock.js';

const realSetTimeout = globalThis.setTimeout;
const realDateNow = Date.now;

test('timers fire in due order at their due time, without waiting it out', async () => {
  const clock = new VirtualClock();
  clock.install();
  try {
    const start = Date.now();
    const fired: [string, number][] = [];
    const at = (name: string, ms: number): Promise<void> =>
      new Promise((resolve) =>
        setTimeout(() => {
          fired.push([name, Date.now() - start]);
          resolve();
        }, ms),
      );
    const wall = performance.now();
    await Promise.all([at('ten seconds', 10_000), at('three', 3), at('zero is one', 0), at('three again', 3)]);
    assert.deepEqual(fired, [
      ['zero is one', 1],
      ['three', 3],
      ['three again', 3],
      ['ten seconds', 10_000],
    ]);
    assert.ok(performance.now() - wall < 2_000, 'a 10 s timer did not take 10 s');
    assert.equal(clock.pending, 0);
  } finally {
    clock.uninstall();
  }
});

test('a timer fires only once no other work is left: pending immediates and microtasks come first', async () => {
  const clock = new VirtualClock();
  clock.install();
  try {
    const order: string[] = [];
    const timer = new Promise<void>((resolve) => setTimeout(() => (order.push('timer'), resolve()), 1));
    const chain = async (): Promise<void> => {
      for (let i = 0; i < 5; i++) {
        await new Promise<void>((resolve) => setImmediate(resolve));
        order.push(`immediate ${i}`);
      }
    };
    await Promise.all([timer, chain()]);
    assert.deepEqual(order, ['immediate 0', 'immediate 1', 'immediate 2', 'immediate 3', 'immediate 4', 'timer']);
  } finally {
    clock.uninstall();
  }
});

test('a cleared timer never fires; uninstall drops pending timers and restores the real functions', async () => {
  const clock = new VirtualClock();
  clock.install();
  let fired = 0;
  clearTimeout(setTimeout(() => fired++, 1));
  setTimeout(() => fired++, 5);
  assert.equal(clock.pending, 1);
  clock.uninstall();
  assert.equal(clock.pending, 0);
  assert.equal(globalThis.setTimeout, realSetTimeout);
  assert.equal(Date.now, realDateNow);
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.equal(fired, 0);
});
