/**
 * Everything a device writes into a packed ring is hostile (2.8): used descriptors with ids out of
 * range, not in flight, not yet published or named twice, a len beyond the chain's writable bytes,
 * AVAIL/USED flags that disagree with the used wrap counter, and a device event suppression area with
 * reserved or invalid contents. Each is a DeviceFaultError with a stable code; nothing is taken on a
 * fault, so no token is lost, and no loop runs past the descriptors the driver published.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { DeviceFaultError, type DeviceFaultCode } from '../../../../src/errors.js';
import { PVIRTQ_DESC_SIZE, RING_EVENT_FLAGS_DESC, RING_EVENT_FLAGS_ENABLE, VIRTQ_DESC_F_USED } from '../../../../src/spec/packed-ring.js';
import { VIRTQ_DESC_F_WRITE } from '../../../../src/spec/ring.js';
import type { UsedBuffer } from '../../../../src/queue/types.js';
import { packedRig, pvirtqEventSuppress, usedFlags, writeUsedDesc, type PackedRig } from '../../../helpers/packed-ring.js';

function isFault(code: DeviceFaultCode): (e: unknown) => boolean {
  return (e: unknown) => {
    assert.ok(e instanceof DeviceFaultError, `expected DeviceFaultError, got ${String(e)}`);
    assert.equal(e.code, code);
    return true;
  };
}

/** reap() through whichever path the rig's DMA takes. */
async function reap(rig: PackedRig): Promise<UsedBuffer<number>[]> {
  return rig.driver.coherent ? rig.driver.reapSync() : rig.driver.reap();
}

async function publish(rig: PackedRig): Promise<boolean> {
  return rig.driver.coherent ? rig.driver.publishSync() : rig.driver.publish();
}

/** A rig with `n` one-buffer chains (tokens 100.., `writable` writable bytes each) published. */
async function published(remote: boolean, n: number, size = 4, writable = 16): Promise<PackedRig> {
  const rig = packedRig({ size, remote });
  for (let k = 0; k < n; k++) rig.driver.add([], [rig.buffer(writable)], 100 + k);
  await publish(rig);
  for (let k = 0; k < n; k++) assert.notEqual(rig.device.pop(), null);
  return rig;
}

function slot(rig: PackedRig, s: number): number {
  return rig.driver.descAddr + s * PVIRTQ_DESC_SIZE;
}

for (const remote of [false, true]) {
  const where = remote ? ' (remote image)' : '';

  test(`a used id out of range is ERR_DEVICE_USED_ID; nothing is taken and the right id is reaped afterwards${where}`, async () => {
    const rig = await published(remote, 1);
    for (const id of [4, 0xffff]) {
      writeUsedDesc(rig.memory, slot(rig, 0), { id, len: 0, flags: usedFlags(1) });
      await assert.rejects(reap(rig), isFault('ERR_DEVICE_USED_ID'));
      assert.equal(rig.driver.inFlight, 1);
    }
    writeUsedDesc(rig.memory, slot(rig, 0), { id: 0, len: 3, flags: usedFlags(1) | VIRTQ_DESC_F_WRITE });
    assert.deepEqual(await reap(rig), [{ token: 100, len: 3 }]);
  });

  test(`a used id not in flight, or named twice in one reap, is ERR_DEVICE_USED_ID and takes nothing${where}`, async () => {
    const rig = await published(remote, 2);
    writeUsedDesc(rig.memory, slot(rig, 0), { id: 3, len: 0, flags: usedFlags(1) }); // free id
    await assert.rejects(reap(rig), isFault('ERR_DEVICE_USED_ID'));
    writeUsedDesc(rig.memory, slot(rig, 0), { id: 1, len: 0, flags: usedFlags(1) });
    writeUsedDesc(rig.memory, slot(rig, 1), { id: 1, len: 0, flags: usedFlags(1) }); // again
    await assert.rejects(reap(rig), isFault('ERR_DEVICE_USED_ID'));
    assert.equal(rig.driver.inFlight, 2);
    writeUsedDesc(rig.memory, slot(rig, 1), { id: 0, len: 0, flags: usedFlags(1) });
    assert.deepEqual(
      (await reap(rig)).map((u) => u.token),
      [101, 100],
    );
    // Both are free again: a used descriptor naming either on the next lap position is refused.
    rig.driver.add([rig.buffer(4)], [], 7);
    await publish(rig);
    writeUsedDesc(rig.memory, slot(rig, 2), { id: 1, len: 0, flags: usedFlags(1) });
    await assert.rejects(reap(rig), isFault('ERR_DEVICE_USED_ID'));
  });

  test(`a used id of a chain added but not yet published is ERR_DEVICE_USED_ID${where}`, async () => {
    const rig = await published(remote, 1);
    const pendingId = rig.driver.add([rig.buffer(4)], [], 9);
    writeUsedDesc(rig.memory, slot(rig, 0), { id: pendingId, len: 0, flags: usedFlags(1) });
    await assert.rejects(reap(rig), isFault('ERR_DEVICE_USED_ID'));
    assert.deepEqual(rig.driver.detachUnused().sort(), [100, 9]);
  });

  test(`a len beyond the chain's writable bytes is ERR_DEVICE_USED_LEN with or without WRITE (QEMU never sets WRITE on a used descriptor)${where}`, async () => {
    const rig = await published(remote, 2, 4, 16);
    for (const write of [VIRTQ_DESC_F_WRITE, 0]) {
      writeUsedDesc(rig.memory, slot(rig, 0), { id: 0, len: 17, flags: usedFlags(1) | write });
      await assert.rejects(reap(rig), isFault('ERR_DEVICE_USED_LEN'));
      writeUsedDesc(rig.memory, slot(rig, 0), { id: 0, len: 0xffff_ffff, flags: usedFlags(1) | write });
      await assert.rejects(reap(rig), isFault('ERR_DEVICE_USED_LEN'));
    }
    writeUsedDesc(rig.memory, slot(rig, 0), { id: 0, len: 16, flags: usedFlags(1) | VIRTQ_DESC_F_WRITE });
    writeUsedDesc(rig.memory, slot(rig, 1), { id: 1, len: 5, flags: usedFlags(1) });
    assert.deepEqual(await reap(rig), [
      { token: 100, len: 16 },
      { token: 101, len: 5 },
    ]);
  });

  test(`AVAIL/USED that disagree with the used wrap counter are ERR_DEVICE_USED_FLAGS, on either lap${where}`, async () => {
    const rig = await published(remote, 1, 2);
    for (const flags of [VIRTQ_DESC_F_USED, 0]) {
      writeUsedDesc(rig.memory, slot(rig, 0), { id: 0, len: 0, flags });
      await assert.rejects(reap(rig), isFault('ERR_DEVICE_USED_FLAGS'));
    }
    writeUsedDesc(rig.memory, slot(rig, 0), { id: 0, len: 0, flags: usedFlags(1) });
    assert.equal((await reap(rig)).length, 1);
    // Slot 1 then slot 0 of the second lap (wrap counter 0).
    const a = rig.driver.add([rig.buffer(4)], [], 1);
    const b = rig.driver.add([rig.buffer(4)], [], 2);
    await publish(rig);
    writeUsedDesc(rig.memory, slot(rig, 1), { id: b, len: 0, flags: usedFlags(1) });
    writeUsedDesc(rig.memory, slot(rig, 0), { id: a, len: 0, flags: usedFlags(1) }); // last lap's used flags
    await assert.rejects(reap(rig), isFault('ERR_DEVICE_USED_FLAGS'));
    assert.equal(rig.driver.inFlight, 2);
    writeUsedDesc(rig.memory, slot(rig, 0), { id: a, len: 0, flags: usedFlags(0) });
    assert.deepEqual(
      (await reap(rig)).map((u) => u.token),
      [2, 1],
    );
  });

  test(`used descriptors beyond the published ones are never read${where}`, async () => {
    const rig = await published(remote, 1, 8);
    rig.driver.add([rig.buffer(4)], [], 1); // slot 1, not published
    writeUsedDesc(rig.memory, slot(rig, 0), { id: 0, len: 0, flags: usedFlags(1) });
    for (let s = 1; s < 8; s++) writeUsedDesc(rig.memory, slot(rig, s), { id: 0x7777, len: 0, flags: usedFlags(1) });
    assert.deepEqual(
      (await reap(rig)).map((u) => u.token),
      [100],
    );
    assert.deepEqual(await reap(rig), []);
  });

  test(`a device event suppression area with reserved flags, DESC without EVENT_IDX, or an offset outside the ring is ERR_DEVICE_EVENT_SUPPRESSION; the chains stay published${where}`, async () => {
    const cases = [
      { eventIdx: false, area: { off: 0, wrap: 0, flags: 3 } },
      { eventIdx: true, area: { off: 0, wrap: 0, flags: 3 } },
      { eventIdx: false, area: { off: 0, wrap: 0, flags: RING_EVENT_FLAGS_ENABLE | 0x4 } },
      { eventIdx: true, area: { off: 0, wrap: 1, flags: RING_EVENT_FLAGS_DESC | 0x8000 } },
      { eventIdx: false, area: { off: 0, wrap: 1, flags: RING_EVENT_FLAGS_DESC } },
      { eventIdx: true, area: { off: 4, wrap: 1, flags: RING_EVENT_FLAGS_DESC } },
    ];
    for (const { eventIdx, area } of cases) {
      const rig = packedRig({ size: 4, eventIdx, remote });
      await rig.driver.flushRings(); // the zeroed areas in place before the device writes its own
      rig.memory.write(rig.driver.deviceEventAddr, pvirtqEventSuppress(area));
      rig.driver.add([rig.buffer(4)], [], 5);
      await assert.rejects(publish(rig), isFault('ERR_DEVICE_EVENT_SUPPRESSION'), JSON.stringify(area));
      const chain = rig.device.pop();
      assert.equal(chain?.id, 0);
      rig.device.use(0, 0, 1);
      assert.deepEqual(await reap(rig), [{ token: 5, len: 0 }]);
    }
  });
}

test('random device writes over the ring: every reap ends in checked buffers or a DeviceFaultError, and every token comes back once', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 1, max: 16 }),
      fc.boolean(),
      fc.array(fc.record({ slot: fc.nat(), id: fc.nat(0xffff), len: fc.nat(64), flags: fc.nat(0xffff), add: fc.nat(3) }), {
        maxLength: 40,
      }),
      async (size, remote, writes) => {
        const rig = packedRig({ size, remote });
        const live = new Set<number>();
        const back: number[] = [];
        let token = 0;
        for (const w of writes) {
          for (let k = 0; k < w.add && rig.driver.numFree > 0; k++) {
            rig.driver.add([], [rig.buffer(32)], token);
            live.add(token++);
          }
          await publish(rig);
          writeUsedDesc(rig.memory, slot(rig, w.slot % size), { id: w.id % (size + 2), len: w.len, flags: w.flags });
          try {
            for (const u of await reap(rig)) {
              assert.ok(live.delete(u.token), `token ${u.token} returned twice or never added`);
              assert.ok(u.len <= 32);
              back.push(u.token);
            }
          } catch (e) {
            assert.ok(e instanceof DeviceFaultError, String(e));
          }
        }
        const detached = rig.driver.detachUnused();
        assert.deepEqual(
          [...detached].sort((a, b) => a - b),
          [...live].sort((a, b) => a - b),
        );
        assert.equal(back.length + detached.length, token);
        assert.equal(rig.driver.numFree, size);
      },
    ),
    { numRuns: 150, seed: 7 },
  );
});
