/**
 * The packed driver's bytes in memory, against struct pvirtq_desc built from the spec (2.8): where the
 * areas are, what each available descriptor holds on each lap, when the first flags appear, and what
 * an indirect table holds.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { QueueFullError, UsageError } from '../../../../src/errors.js';
import { RamDma } from '../../../../src/bus/ram-dma.js';
import { ArrayGuestMemory } from '../../../../src/memory/guest-memory.js';
import { PackedQueueDriver } from '../../../../src/queue/packed/driver-ring.js';
import { SplitQueueDriver } from '../../../../src/queue/split/driver-ring.js';
import { driverRing } from '../../../../src/queue/rings.js';
import { featureSet, VIRTIO_F_RING_PACKED, VIRTIO_F_VERSION_1 } from '../../../../src/spec/features.js';
import { PVIRTQ_DESC_SIZE, VIRTQ_DESC_F_AVAIL, VIRTQ_DESC_F_USED } from '../../../../src/spec/packed-ring.js';
import { VIRTQ_DESC_F_INDIRECT, VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE } from '../../../../src/spec/ring.js';
import { availFlags, packedRig, pvirtqDesc, RIG_DMA_BASE, RIG_DMA_SIZE } from '../../../helpers/packed-ring.js';

function slotBytes(memory: ArrayGuestMemory, descAddr: number, slot: number): Uint8Array {
  return memory.view(descAddr + slot * PVIRTQ_DESC_SIZE, PVIRTQ_DESC_SIZE).slice();
}

test('areas (2.8.10.1): descriptor ring 16-aligned of 16 * size bytes, both event areas 4-aligned, all zeroed, any size up to 32768', () => {
  for (const size of [1, 3, 100, 256, 32768]) {
    const memory = new ArrayGuestMemory(RIG_DMA_BASE + RIG_DMA_SIZE);
    memory.view(RIG_DMA_BASE, RIG_DMA_SIZE).fill(0xa5); // an earlier owner's bytes
    const driver = new PackedQueueDriver<number>({
      index: 0,
      size,
      dma: new RamDma(memory, RIG_DMA_BASE, RIG_DMA_SIZE),
      eventIdx: false,
      indirect: false,
    });
    assert.equal(driver.areas.desc % 16, 0);
    assert.equal(driver.areas.driver % 4, 0);
    assert.equal(driver.areas.device % 4, 0);
    assert.deepEqual(driver.areas, { desc: driver.descAddr, driver: driver.driverEventAddr, device: driver.deviceEventAddr });
    assert.ok(memory.view(driver.descAddr, 16 * size).every((b) => b === 0));
    assert.ok(memory.view(driver.driverEventAddr, 4).every((b) => b === 0));
    assert.ok(memory.view(driver.deviceEventAddr, 4).every((b) => b === 0));
    // No area overlaps another.
    const spans = [
      [driver.descAddr, 16 * size],
      [driver.driverEventAddr, 4],
      [driver.deviceEventAddr, 4],
    ].sort((a, b) => a[0]! - b[0]!);
    for (let i = 1; i < spans.length; i++) assert.ok(spans[i - 1]![0]! + spans[i - 1]![1]! <= spans[i]![0]!);
    assert.equal(driver.numFree, size);
  }
  for (const size of [0, 32769, 1.5, -1]) {
    const memory = new ArrayGuestMemory(RIG_DMA_BASE + RIG_DMA_SIZE);
    assert.throws(
      () =>
        new PackedQueueDriver<number>({
          index: 0,
          size,
          dma: new RamDma(memory, RIG_DMA_BASE, RIG_DMA_SIZE),
          eventIdx: false,
          indirect: false,
        }),
      UsageError,
    );
  }
});

test('one buffer: struct pvirtq_desc with the id, AVAIL set and USED clear on the first lap; flags appear only at publish', () => {
  const { driver, memory, buffer } = packedRig({ size: 4 });
  const out = buffer(64, 1);
  const id = driver.add([out], [], 10);
  assert.equal(id, 0);
  assert.deepEqual(slotBytes(memory, driver.descAddr, 0), pvirtqDesc({ addr: out.addr, len: 64, id: 0, flags: 0 }));
  assert.equal(driver.numFree, 3);
  driver.publishSync();
  assert.deepEqual(slotBytes(memory, driver.descAddr, 0), pvirtqDesc({ addr: out.addr, len: 64, id: 0, flags: VIRTQ_DESC_F_AVAIL }));
});

test('a chain of three (2.8.6): NEXT on all but the last, WRITE on the writable ones, the id in each; the first flags written last', () => {
  const { driver, memory, buffer } = packedRig({ size: 8 });
  const a = buffer(16);
  const b = buffer(32);
  const c = buffer(48);
  const id = driver.add([a], [b, c], 1);
  const expected = [
    { addr: a.addr, len: 16, id, flags: VIRTQ_DESC_F_AVAIL | VIRTQ_DESC_F_NEXT },
    { addr: b.addr, len: 32, id, flags: VIRTQ_DESC_F_AVAIL | VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT },
    { addr: c.addr, len: 48, id, flags: VIRTQ_DESC_F_AVAIL | VIRTQ_DESC_F_WRITE },
  ];
  // Before publish the tail is complete but the head is not available, so the device sees nothing.
  assert.deepEqual(slotBytes(memory, driver.descAddr, 0), pvirtqDesc({ ...expected[0]!, flags: 0 }));
  assert.deepEqual(slotBytes(memory, driver.descAddr, 1), pvirtqDesc(expected[1]!));
  assert.deepEqual(slotBytes(memory, driver.descAddr, 2), pvirtqDesc(expected[2]!));
  assert.equal(driver.numFree, 5);
  driver.publishSync();
  for (let s = 0; s < 3; s++) assert.deepEqual(slotBytes(memory, driver.descAddr, s), pvirtqDesc(expected[s]!));
});

test('a later batch holds back only its own first flags; the batch before it stays available', () => {
  const { driver, memory, buffer, device } = packedRig({ size: 8 });
  driver.add([buffer(8)], [], 1);
  driver.publishSync();
  driver.add([buffer(8)], [], 2);
  driver.add([buffer(8)], [], 3);
  assert.equal(memory.read16(driver.descAddr + 14), VIRTQ_DESC_F_AVAIL);
  assert.equal(memory.read16(driver.descAddr + 16 + 14), 0);
  assert.equal(memory.read16(driver.descAddr + 32 + 14), VIRTQ_DESC_F_AVAIL);
  // The device takes the first chain and stops at the held-back one.
  assert.equal(device.pop()?.id, 0);
  assert.equal(device.pop(), null);
  driver.publishSync();
  assert.deepEqual([device.pop()?.id, device.pop()?.id, device.pop()], [1, 2, null]);
});

test('the second lap (2.8.1): AVAIL clear and USED set, the wrap counter toggled after the last slot', () => {
  const { driver, memory, buffer, device } = packedRig({ size: 3 });
  const spans = [buffer(4), buffer(4), buffer(4), buffer(4)];
  for (let k = 0; k < 3; k++) driver.add([spans[k]!], [], k);
  driver.publishSync();
  for (let k = 0; k < 3; k++) device.use(device.pop()!.id, 0, 1);
  assert.deepEqual(
    driver.reapSync().map((u) => u.token),
    [0, 1, 2],
  );
  const id = driver.add([spans[3]!], [], 3);
  driver.publishSync();
  assert.deepEqual(slotBytes(memory, driver.descAddr, 0), pvirtqDesc({ addr: spans[3]!.addr, len: 4, id, flags: availFlags(0) }));
  assert.equal(availFlags(0), VIRTQ_DESC_F_USED);
});

test('indirect (2.8.7): only when the ring lacks descriptors; one INDIRECT ring descriptor of len 16 * n; table entries carry WRITE only and id 0', () => {
  const { driver, memory, buffer } = packedRig({ size: 4, indirect: true });
  const filler = [buffer(4), buffer(4)];
  driver.add([filler[0]!, filler[1]!], [], 0); // two ring descriptors: enough room, no table
  assert.equal(driver.numFree, 2);
  const parts = [buffer(10), buffer(20), buffer(30)];
  const id = driver.add([parts[0]!], [parts[1]!, parts[2]!], 1);
  assert.equal(driver.numFree, 1);
  driver.publishSync();
  const ring = memory.view(driver.descAddr + 2 * PVIRTQ_DESC_SIZE, PVIRTQ_DESC_SIZE);
  const tableAddr = Number(new DataView(ring.buffer, ring.byteOffset).getBigUint64(0, true));
  assert.deepEqual(ring.slice(), pvirtqDesc({ addr: tableAddr, len: 48, id, flags: VIRTQ_DESC_F_AVAIL | VIRTQ_DESC_F_INDIRECT }));
  assert.equal(tableAddr % 16, 0);
  const table = memory.view(tableAddr, 48).slice();
  const expected = new Uint8Array(48);
  expected.set(pvirtqDesc({ addr: parts[0]!.addr, len: 10, id: 0, flags: 0 }), 0);
  expected.set(pvirtqDesc({ addr: parts[1]!.addr, len: 20, id: 0, flags: VIRTQ_DESC_F_WRITE }), 16);
  expected.set(pvirtqDesc({ addr: parts[2]!.addr, len: 30, id: 0, flags: VIRTQ_DESC_F_WRITE }), 32);
  assert.deepEqual(table, expected);
});

test('chain bounds: more buffers than the queue is a UsageError; more than the free descriptors without indirect is QueueFullError', () => {
  const { driver, buffer } = packedRig({ size: 3 });
  const b = buffer(4);
  assert.throws(() => driver.add([b, b, b, b], [], 0), UsageError);
  assert.throws(() => driver.add([], [], 0), UsageError);
  assert.throws(() => driver.add([{ addr: b.addr, len: 2 ** 32 }], [], 0), UsageError);
  driver.add([b, b], [], 0);
  assert.throws(() => driver.add([b, b], [], 1), QueueFullError);
  assert.equal(driver.add([b], [], 1), 1);
  assert.throws(() => driver.add([b], [], 2), QueueFullError);
  assert.equal(driver.inFlight, 2);
});

test('driverRing() builds the packed driver for VIRTIO_F_RING_PACKED, refuses it in the legacy layout, and the split one otherwise', () => {
  const memory = new ArrayGuestMemory(RIG_DMA_BASE + RIG_DMA_SIZE);
  const dma = new RamDma(memory, RIG_DMA_BASE, RIG_DMA_SIZE);
  const packed = featureSet(VIRTIO_F_VERSION_1, VIRTIO_F_RING_PACKED);
  assert.ok(driverRing<number>({ index: 0, size: 100, dma, features: packed, layout: 'separate' }) instanceof PackedQueueDriver);
  assert.throws(
    () => driverRing<number>({ index: 0, size: 128, dma, features: packed, layout: 'legacy' }),
    (e: unknown) => e instanceof UsageError && /VERSION_1/.test(e.message),
  );
  assert.ok(
    driverRing<number>({ index: 0, size: 128, dma, features: featureSet(VIRTIO_F_VERSION_1), layout: 'separate' }) instanceof
      SplitQueueDriver,
  );
});

test('an indirect table that does not fit in DMA memory fails add() with nothing taken: no id, no descriptor', () => {
  class ExhaustibleDma extends RamDma {
    exhausted = false;
    override alloc(size: number, align: number): ReturnType<RamDma['alloc']> {
      if (this.exhausted) throw new UsageError('DMA memory exhausted');
      return super.alloc(size, align);
    }
  }
  const memory = new ArrayGuestMemory(RIG_DMA_BASE + RIG_DMA_SIZE);
  const dma = new ExhaustibleDma(memory, RIG_DMA_BASE, RIG_DMA_SIZE);
  const driver = new PackedQueueDriver<number>({ index: 0, size: 2, dma, eventIdx: false, indirect: true });
  const b = { addr: dma.alloc(8, 8).addr, len: 8 };
  driver.add([b], [], 0); // one slot left: a chain of two needs a table
  dma.exhausted = true;
  assert.throws(() => driver.add([b], [b], 1), UsageError);
  assert.equal(driver.numFree, 1);
  assert.equal(driver.inFlight, 1);
  dma.exhausted = false;
  assert.equal(driver.add([b], [b], 1), 1);
  assert.equal(driver.numFree, 0);
});
