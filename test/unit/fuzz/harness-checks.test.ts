/**
 * The fuzz harness's own checks for the hardening items (fuzz/README.md), each shown to report a
 * planted violation: a queue used after the reset that ended its life, a write to a host stream
 * that reported itself full, DMA memory a driver keeps, and the Adversary's lies and allocation
 * failures taking effect where they say, and the hostile DMA's packed-ring lies.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ArrayGuestMemory } from '../../../src/memory/guest-memory.js';
import { RamDma } from '../../../src/bus/ram-dma.js';
import { VIRTQ_DESC_F_AVAIL, VIRTQ_DESC_F_USED } from '../../../src/spec/packed-ring.js';
import { VIRTQ_DESC_F_WRITE } from '../../../src/spec/ring.js';
import { Machine } from '../../../src/platform/machine.js';
import { RngDevice } from '../../../src/device/rng/rng-device.js';
import { UsageError } from '../../../src/errors.js';
import { PCI_BASE_ADDRESS_0, PCI_CAPABILITY_LIST, PCI_CAP_ID_MSIX } from '../../../src/spec/pci.js';
import { GuardedMemory } from '../../../src/testing/guarded-memory.js';
import { MockQueue } from '../../../src/testing/mock-queue.js';
import { FuzzInput, InputWriter } from '../../../fuzz/engine/input.js';
import { STUCK_HIGH_WATER_MARK, stuckStream } from '../../../fuzz/harness/device-zoo.js';
import { HostileBus, HostileDma, NO_ADVERSARY, capRelative, decodeAdversary, type Adversary } from '../../../fuzz/harness/hostile-bus.js';
import { WatchedQueue } from '../../../fuzz/harness/watched-queue.js';

test('a queue retired by a completed reset reports any later pop or used element', () => {
  const mem = new GuardedMemory(0x1000, { base: 0x1000, allowAllReads: true });
  const mq = new MockQueue({ size: 8, memory: new ArrayGuestMemory(mem.inner.bytes, 0x1000), base: 0x1000, seed: 1 });
  mq.addChain({ readable: [], writable: [16] });
  mq.addChain({ readable: [], writable: [16] });
  const q = new WatchedQueue(mq.deviceQueue({ index: 0, eventIdx: false, indirect: false }), mem);
  const chain = q.pop()!;
  q.pushUsed(chain.head, 0);
  assert.deepEqual(q.problems, []);
  const late = q.pop()!;
  q.retire();
  q.pushUsed(late.head, 0);
  q.pop();
  assert.equal(q.problems.length, 2);
  assert.match(q.problems[0]!, /used element for head \d+ after the reset that ended its life completed/);
  assert.match(q.problems[1]!, /popped after the reset/);
});

test('a host stream that never drains counts the bytes written after it reported itself full', () => {
  const { stream, pastFull } = stuckStream();
  assert.equal(stream.write(new Uint8Array(STUCK_HIGH_WATER_MARK)), false);
  assert.equal(pastFull(), 0);
  stream.write(new Uint8Array(3));
  assert.equal(pastFull(), 3);
});

async function rngBehindHostileBus(adversary: Adversary): Promise<{ bus: HostileBus; bdf: ReturnType<Machine['plugVirtio']>['bdf'] }> {
  const machine = new Machine({ ramSize: 1 << 18 });
  const { bdf } = machine.plugVirtio(new RngDevice({ queueSize: 8 }), { mode: 'modern', msixVectors: 4 });
  return { bus: new HostileBus(machine.bus, machine.memory, new FuzzInput(new Uint8Array(0)), adversary), bdf };
}

test('the hostile bus counts DMA bytes allocated and not freed, and fails the allocation the Adversary names', async () => {
  const { bus } = await rngBehindHostileBus({ ...NO_ADVERSARY, failAllocAt: 2 });
  const a = bus.dma.alloc(100, 8);
  assert.throws(() => bus.dma.alloc(10, 8), UsageError);
  const c = bus.dma.alloc(28, 4);
  assert.equal(bus.dmaOutstanding, 128);
  assert.equal(bus.allocFailures, 1);
  bus.dma.free(a);
  assert.equal(bus.dmaOutstanding, 28, 'a kept buffer stays counted');
  bus.dma.free(c);
  assert.equal(bus.dmaOutstanding, 0);
});

test("the Adversary's config lies: always, only while a BAR is being sized, and relative to a capability", async () => {
  const honest = await rngBehindHostileBus(NO_ADVERSARY);
  let msixCap = (await honest.bus.configRead(honest.bdf, PCI_CAPABILITY_LIST, 1)) & 0xfc;
  while ((await honest.bus.configRead(honest.bdf, msixCap, 1)) !== PCI_CAP_ID_MSIX)
    msixCap = (await honest.bus.configRead(honest.bdf, msixCap + 1, 1)) & 0xfc;
  const tableHonest = await honest.bus.configRead(honest.bdf, msixCap + 4, 4);
  // Encoded as the fuzz input does: no failing allocation, two overrides (one capability-relative), no flood.
  const encoded = new InputWriter()
    .u8(0)
    .u8(2)
    .u8(0)
    .u16(capRelative(PCI_CAP_ID_MSIX, 4))
    .u32(0x7fff_f001)
    .u8(1)
    .u16(PCI_BASE_ADDRESS_0 + 4)
    .u32(0xffff_fff0)
    .u8(0)
    .u16(0)
    .u8(0);
  const adversary = decodeAdversary(new FuzzInput(encoded.finish()), new Map([[PCI_CAP_ID_MSIX, msixCap]]));
  assert.deepEqual(adversary.overrides, [
    { when: 'always', offset: msixCap + 4, value: 0x7fff_f001 },
    { when: 'sizing', offset: PCI_BASE_ADDRESS_0 + 4, value: 0xffff_fff0 },
  ]);
  const { bus, bdf } = await rngBehindHostileBus(adversary);
  assert.notEqual(tableHonest, 0x7fff_f001);
  assert.equal(await bus.configRead(bdf, msixCap + 4, 4), 0x7fff_f001);
  assert.equal(await bus.configRead(bdf, msixCap + 5, 2), 0xfff0, 'a narrower read gets its bytes of the lie');
  const bar1 = await bus.configRead(bdf, PCI_BASE_ADDRESS_0 + 4, 4);
  assert.notEqual(bar1, 0xffff_fff0, 'not while the BAR is not being sized');
  await bus.configWrite(bdf, PCI_BASE_ADDRESS_0 + 4, 4, 0xffff_ffff);
  assert.equal(await bus.configRead(bdf, PCI_BASE_ADDRESS_0 + 4, 4), 0xffff_fff0);
  await bus.configWrite(bdf, PCI_BASE_ADDRESS_0 + 4, 4, bar1);
  assert.equal(await bus.configRead(bdf, PCI_BASE_ADDRESS_0 + 4, 4), bar1);
  assert.ok(bus.tampered >= 3);
});

test('in packed mode the hostile DMA rewrites a refreshed descriptor as a used one and an event area as the input says', async () => {
  const memory = new ArrayGuestMemory(0x10000);
  const ledger = { adversary: NO_ADVERSARY, tampered: 0, allocFailures: 0, dmaOutstanding: 0, spend: () => {} };
  // First refresh (a descriptor): d 0xd3 (small len, small id, flags byte), len 7, id 5, AVAIL|USED and WRITE.
  // Second (an event suppression area): d 0xd1, desc 0x8003, flags 2. Third: d 0 (untouched).
  const lies = new InputWriter().u8(0xd3).u16(7).u8(5).u8(3).u8(0xd1).u16(0x8003).u8(2).u8(0).finish();
  const dma = new HostileDma(new RamDma(memory, 0x1000, 0xf000), memory, new FuzzInput(lies), ledger, 'packed');
  const desc = dma.alloc(16, 16);
  const area = dma.alloc(4, 4);
  await dma.refresh(desc.addr, 16);
  assert.deepEqual(
    [memory.read32(desc.addr + 8), memory.read16(desc.addr + 12), memory.read16(desc.addr + 14)],
    [7, 5, VIRTQ_DESC_F_AVAIL | VIRTQ_DESC_F_USED | VIRTQ_DESC_F_WRITE],
  );
  await dma.refresh(area.addr, 4);
  assert.deepEqual([memory.read16(area.addr), memory.read16(area.addr + 2)], [0x8003, 2]);
  memory.write16(area.addr, 0);
  await dma.refresh(area.addr, 4);
  assert.equal(memory.read16(area.addr), 0);
  assert.equal(ledger.tampered, 2);
});

test('GuardedMemory: a region is checked as a view, and what is written through it outside writable ranges shows', () => {
  const mem = new GuardedMemory(0x1000, { base: 0x1000 });
  mem.allowRead(0x1100, 0x40, 'tx buffer');
  mem.allowWrite(0x1200, 0x40, 'rx buffer');
  mem.snapshot();
  const r = mem.region(0x1200, 0x40);
  r.bytes.fill(0xaa, 0x200, 0x240);
  mem.region(0x1100, 0x40).dv.setUint8(0x100, 1); // a device writing a device-readable buffer
  mem.region(0x1300, 4); // no allowance at all
  assert.deepEqual(
    mem.problems().map((p) => [p.kind, p.addr]),
    [
      ['view', 0x1300],
      ['changed', 0x1100],
    ],
  );
});
