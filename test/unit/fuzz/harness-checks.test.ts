/**
 * The fuzz harness's own checks for the hardening items (fuzz/README.md), each shown to report a
 * planted violation: a queue used after the reset that ended its life, a write to a host stream
 * that reported itself full, DMA memory a driver keeps, and the Adversary's lies and allocation
 * failures taking effect where they say.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ArrayGuestMemory } from '../../../src/memory/guest-memory.js';
import { Machine } from '../../../src/platform/machine.js';
import { RngDevice } from '../../../src/device/rng/rng-device.js';
import { UsageError } from '../../../src/errors.js';
import { PCI_BASE_ADDRESS_0, PCI_CAPABILITY_LIST, PCI_CAP_ID_MSIX } from '../../../src/spec/pci.js';
import { GuardedMemory } from '../../../src/testing/guarded-memory.js';
import { MockQueue } from '../../../src/testing/mock-queue.js';
import { FuzzInput, InputWriter } from '../../../fuzz/engine/input.js';
import { STUCK_HIGH_WATER_MARK, stuckStream } from '../../../fuzz/harness/device-zoo.js';
import { HostileBus, NO_ADVERSARY, capRelative, decodeAdversary, type Adversary } from '../../../fuzz/harness/hostile-bus.js';
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
