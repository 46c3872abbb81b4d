/**
 * Event suppression in a packed ring (2.8.10): publish() follows the device's area (ENABLE, DISABLE,
 * or with EVENT_IDX the one descriptor it wants to hear about), and setInterruptSuppression() and
 * reap() write the driver's area as struct pvirtq_event_suppress.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { RING_EVENT_FLAGS_DESC, RING_EVENT_FLAGS_DISABLE, RING_EVENT_FLAGS_ENABLE } from '../../../../src/spec/packed-ring.js';
import { HandDevice, packedRig, pvirtqEventSuppress, readPvirtqEventSuppress, type PackedRig } from '../../../helpers/packed-ring.js';

async function publish(rig: PackedRig): Promise<boolean> {
  return rig.driver.coherent ? rig.driver.publishSync() : rig.driver.publish();
}

async function reap(rig: PackedRig): Promise<number[]> {
  return (rig.driver.coherent ? rig.driver.reapSync() : await rig.driver.reap()).map((u) => u.token);
}

/** The device takes every available chain and uses it at once. */
function serveAll(rig: PackedRig): void {
  for (let chain = rig.device.pop(); chain !== null; chain = rig.device.pop()) rig.device.use(chain.id, 0, chain.descs.length);
}

for (const remote of [false, true]) {
  const where = remote ? ' (remote image)' : '';

  test(`without EVENT_IDX: a notification unless the device area says DISABLE; none when nothing was added${where}`, async () => {
    const rig = packedRig({ size: 4, remote });
    await rig.driver.flushRings();
    assert.equal(await publish(rig), false, 'nothing added');
    rig.driver.add([rig.buffer(4)], [], 0);
    assert.equal(await publish(rig), true, 'zeroed area: ENABLE');
    rig.memory.write(rig.driver.deviceEventAddr, pvirtqEventSuppress({ off: 0, wrap: 0, flags: RING_EVENT_FLAGS_DISABLE }));
    rig.driver.add([rig.buffer(4)], [], 1);
    assert.equal(await publish(rig), false);
    rig.memory.write(rig.driver.deviceEventAddr, pvirtqEventSuppress({ off: 3, wrap: 1, flags: RING_EVENT_FLAGS_ENABLE }));
    rig.driver.add([rig.buffer(4)], [], 2);
    assert.equal(await publish(rig), true);
  });

  test(`EVENT_IDX: a notification exactly when the descriptor the device named (offset and wrap counter) was among those made available, over many laps${where}`, async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 12 }),
        fc.array(
          fc.record({
            chains: fc.array(fc.integer({ min: 1, max: 3 }), { minLength: 1, maxLength: 4 }),
            off: fc.nat(),
            wrap: fc.nat(1),
            near: fc.boolean(),
          }),
          {
            minLength: 1,
            maxLength: 30,
          },
        ),
        async (size, batches) => {
          const rig = packedRig({ size, remote, eventIdx: true });
          await rig.driver.flushRings();
          for (const batch of batches) {
            // The batch starts where the device will read next.
            const start = rig.device.availNext;
            const startWrap = rig.device.availWrap;
            const made: string[] = [];
            for (const n of batch.chains) {
              const len = Math.min(n, size);
              if (len > rig.driver.numFree) break;
              rig.driver.add(
                Array.from({ length: len }, () => rig.buffer(4)),
                [],
                0,
              );
              for (let k = 0; k < len; k++) {
                const at = start + made.length;
                made.push(`${at % size}/${startWrap ^ (Math.floor(at / size) & 1)}`);
              }
            }
            // Half the time an event inside the batch's slots, so both answers are exercised.
            const off = batch.near && made.length > 0 ? Number(made[batch.off % made.length]!.split('/')[0]) : batch.off % size;
            const wrap = batch.near && made.length > 0 ? Number(made[batch.off % made.length]!.split('/')[1]) : batch.wrap;
            rig.memory.write(rig.driver.deviceEventAddr, pvirtqEventSuppress({ off, wrap, flags: RING_EVENT_FLAGS_DESC }));
            assert.equal(await publish(rig), made.includes(`${off}/${wrap}`), `event ${off}/${wrap}, made available ${made.join(' ')}`);
            serveAll(rig);
            await reap(rig);
          }
        },
      ),
      { numRuns: 60, seed: remote ? 11 : 12 },
    );
  });

  test(`the driver area: DISABLE or ENABLE without EVENT_IDX; zeroed (ENABLE) at first${where}`, async () => {
    const rig = packedRig({ size: 4, remote });
    await rig.driver.flushRings();
    assert.deepEqual(readPvirtqEventSuppress(rig.memory, rig.driver.driverEventAddr), { off: 0, wrap: 0, flags: RING_EVENT_FLAGS_ENABLE });
    await rig.driver.setInterruptSuppression(true);
    assert.equal(readPvirtqEventSuppress(rig.memory, rig.driver.driverEventAddr).flags, RING_EVENT_FLAGS_DISABLE);
    await rig.driver.setInterruptSuppression(false);
    assert.equal(readPvirtqEventSuppress(rig.memory, rig.driver.driverEventAddr).flags, RING_EVENT_FLAGS_ENABLE);
  });

  test(`the driver area with EVENT_IDX: DESC naming the next descriptor the driver reads, moved at every reap; DISABLE while suppressed${where}`, async () => {
    const rig = packedRig({ size: 3, remote, eventIdx: true });
    await rig.driver.flushRings();
    await rig.driver.setInterruptSuppression(false);
    assert.deepEqual(readPvirtqEventSuppress(rig.memory, rig.driver.driverEventAddr), { off: 0, wrap: 1, flags: RING_EVENT_FLAGS_DESC });
    for (let round = 0; round < 4; round++) {
      rig.driver.add([rig.buffer(4), rig.buffer(4)], [], round);
      await publish(rig);
      serveAll(rig);
      assert.deepEqual(await reap(rig), [round]);
      assert.deepEqual(readPvirtqEventSuppress(rig.memory, rig.driver.driverEventAddr), {
        off: rig.device.usedNext,
        wrap: rig.device.usedWrap,
        flags: RING_EVENT_FLAGS_DESC,
      });
    }
    await rig.driver.setInterruptSuppression(true);
    rig.driver.add([rig.buffer(4)], [], 9);
    await publish(rig);
    serveAll(rig);
    assert.deepEqual(await reap(rig), [9]);
    assert.equal(readPvirtqEventSuppress(rig.memory, rig.driver.driverEventAddr).flags, RING_EVENT_FLAGS_DISABLE);
  });
}

test('detachUnused() after a reset: every token in flight back, the ring from slot 0 with wrap counter 1, areas zeroed', () => {
  const rig = packedRig({ size: 3, eventIdx: true });
  rig.driver.add([rig.buffer(4)], [], 1);
  rig.driver.publishSync();
  rig.device.use(rig.device.pop()!.id, 0, 1);
  rig.driver.reapSync();
  rig.driver.add([rig.buffer(4), rig.buffer(4)], [], 2);
  rig.driver.publishSync();
  rig.driver.add([rig.buffer(4)], [], 3);
  assert.deepEqual(rig.driver.detachUnused().sort(), [2, 3]);
  assert.equal(rig.driver.numFree, 3);
  assert.ok(rig.memory.view(rig.driver.descAddr, 48).every((b) => b === 0));
  assert.ok(rig.memory.view(rig.driver.driverEventAddr, 4).every((b) => b === 0));
  // A fresh device (as after reset) sees the next chain at slot 0 of lap 1, with id 0 again.
  const device = new HandDevice(rig.memory, rig.driver.descAddr, 3);
  assert.equal(rig.driver.add([rig.buffer(4)], [], 4), 0);
  rig.driver.publishSync();
  assert.deepEqual(device.pop()?.descs.length, 1);
});
