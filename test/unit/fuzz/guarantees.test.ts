/**
 * One test per hardening guarantee (README threat model, issue 7): a hostile input of each known
 * virtio CVE shape, and the promised outcome with the spec's codes and numbers. Device half: typed
 * QueueFaultError, nothing written outside the used ring, DEVICE_NEEDS_RESET and a working reset,
 * per-request error status. Driver half: a used id never submitted, a used len beyond the buffer, a
 * used.idx jump, and a device that never answers all end in typed DeviceFaultErrors.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BlkDevice } from '../../../src/device/blk/blk-device.js';
import { MemoryBlockBackend } from '../../../src/device/blk/memory-backend.js';
import { RngDevice } from '../../../src/device/rng/rng-device.js';
import type { ActivateContext, VirtioDevice, VirtioDeviceHost } from '../../../src/core/virtio-device.js';
import type { Bdf, PciBus } from '../../../src/bus/pci-bus.js';
import type { DmaMemory } from '../../../src/memory/dma.js';
import { RngDriver } from '../../../src/driver/rng/rng-driver.js';
import { BlkDriver } from '../../../src/driver/blk/blk-driver.js';
import { VirtioConsoleDriver } from '../../../src/driver/console/console-driver.js';
import { VirtioNetDriver } from '../../../src/driver/net/net-driver.js';
import type { DeviceQueue, DriverRing } from '../../../src/queue/types.js';
import { consoleRxQueueIndex } from '../../../src/spec/console.js';
import { DeviceFaultError, QueueFaultError, UsageError, VirtioError } from '../../../src/errors.js';
import { ArrayGuestMemory, splitU64 } from '../../../src/memory/guest-memory.js';
import { Machine } from '../../../src/platform/machine.js';
import { RamDma } from '../../../src/bus/ram-dma.js';
import { driverRing } from '../../../src/queue/rings.js';
import { VIRTIO_BLK_S_IOERR, VIRTIO_BLK_S_OK, VIRTIO_BLK_S_UNSUPP } from '../../../src/spec/blk.js';
import { VIRTIO_F_RING_PACKED, VIRTIO_F_VERSION_1, bit } from '../../../src/spec/features.js';
import { VIRTIO_ID_CONSOLE, VIRTIO_ID_RNG } from '../../../src/spec/ids.js';
import {
  VIRTQ_DESC_F_INDIRECT,
  VIRTQ_DESC_F_NEXT,
  VIRTQ_DESC_F_WRITE,
  VIRTQ_USED_ELEM_SIZE,
  VIRTQ_USED_IDX,
  VIRTQ_USED_RING,
  availRingSize,
  descTableSize,
  usedRingSize,
} from '../../../src/spec/ring.js';
import {
  PVIRTQ_DESC_FLAGS,
  PVIRTQ_DESC_ID,
  PVIRTQ_DESC_LEN,
  PVIRTQ_EVENT_SUPPRESS_SIZE,
  VIRTQ_DESC_F_AVAIL,
  VIRTQ_DESC_F_USED,
  packedDescRingSize,
} from '../../../src/spec/packed-ring.js';
import { VIRTIO_CONFIG_S_DEVICE_NEEDS_RESET } from '../../../src/spec/status.js';
import { FuzzInput } from '../../../fuzz/engine/input.js';
import { makeZooDevice } from '../../../fuzz/harness/device-zoo.js';
import { HostileBus } from '../../../fuzz/harness/hostile-bus.js';
import {
  VIRTIO_PCI_COMMON_NUMQ,
  VIRTIO_PCI_COMMON_Q_AVAILHI,
  VIRTIO_PCI_COMMON_Q_AVAILLO,
  VIRTIO_PCI_COMMON_Q_DESCHI,
  VIRTIO_PCI_COMMON_Q_DESCLO,
  VIRTIO_PCI_COMMON_Q_ENABLE,
  VIRTIO_PCI_COMMON_Q_MSIX,
  VIRTIO_PCI_COMMON_Q_NOFF,
  VIRTIO_PCI_COMMON_Q_SELECT,
  VIRTIO_PCI_COMMON_Q_SIZE,
  VIRTIO_PCI_COMMON_Q_USEDHI,
  VIRTIO_PCI_COMMON_Q_USEDLO,
  VIRTIO_PCI_ISR_CONFIG,
  VIRTIO_MSI_NO_VECTOR,
} from '../../../src/spec/virtio-pci.js';
import { activateDevice } from '../../helpers/device-harness.js';
import { GuardedMemory } from '../../../src/testing/guarded-memory.js';
import { MockPackedQueue } from '../../../src/testing/mock-packed-queue.js';
import { MockQueue } from '../../../src/testing/mock-queue.js';
import type { MockRing } from '../../../src/testing/mock-ring.js';
import { ModernHarness } from '../../helpers/modern-harness.js';

const deviceFault = (code: string) => (e: unknown) => e instanceof DeviceFaultError && e.code === code;

// ---- device half: each ring format refuses every CVE shape with its own code, writing nothing ----

/** A queue of one ring format over guarded memory: the guest builds with `mq`, the device pops from `q`. */
interface GuardedQueue {
  readonly mem: GuardedMemory;
  readonly mq: MockRing;
  readonly q: DeviceQueue & { readonly inFlightChains: number };
  /** Make one descriptor available as a chain (the next descriptor index, or the next ring slot). */
  publish(desc: { readonly addr: number | bigint; readonly len: number; readonly flags: number }): void;
}

interface Format {
  readonly name: 'split' | 'packed';
  guarded(size: number, options?: { indirect?: boolean; base?: number }): GuardedQueue;
}

/** The rings may be read; what the device writes into them (used ring, used descriptors, event areas) may be written. */
const FORMATS: readonly Format[] = [
  {
    name: 'split',
    guarded(size, options = {}) {
      const mem = new GuardedMemory(0x4000, { base: options.base ?? 0 });
      const mq = new MockQueue({ size, memory: mem.inner, base: mem.base, seed: 3 });
      mem.allowRead(mq.descAddr, descTableSize(size), 'desc');
      mem.allowRead(mq.availAddr, availRingSize(size), 'avail');
      mem.allowWrite(mq.usedAddr, usedRingSize(size), 'used');
      let next = 0;
      return {
        mem,
        mq,
        q: mq.deviceQueue({ indirect: options.indirect ?? false }),
        publish(desc) {
          mq.setDesc(next, { ...desc, next: 0 });
          mq.pushAvail(next++);
        },
      };
    },
  },
  {
    name: 'packed',
    guarded(size, options = {}) {
      const mem = new GuardedMemory(0x4000, { base: options.base ?? 0 });
      const mq = new MockPackedQueue({ size, memory: mem.inner, base: mem.base, seed: 3 });
      mem.allowWrite(mq.descAddr, packedDescRingSize(size), 'descriptor ring');
      mem.allowRead(mq.driverAddr, PVIRTQ_EVENT_SUPPRESS_SIZE, 'driver event suppression');
      mem.allowWrite(mq.deviceAddr, PVIRTQ_EVENT_SUPPRESS_SIZE, 'device event suppression');
      let id = 0;
      return {
        mem,
        mq,
        q: mq.deviceQueue({ indirect: options.indirect ?? false }),
        publish(desc) {
          mq.publish([{ ...desc, id: id++ }]);
        },
      };
    },
  },
];

/** pop() must throw QueueFaultError `code`, twice (the faulty chain stays unpopped), writing nothing. */
function assertPopFaults(g: GuardedQueue, code: string): void {
  g.mem.snapshot();
  const before = g.mem.bytes.slice();
  const inFlight = g.q.inFlightChains;
  for (let i = 0; i < 2; i++)
    assert.throws(
      () => g.q.pop(),
      (e: unknown) => e instanceof QueueFaultError && e.code === code,
    );
  assert.deepEqual(g.mem.problems(), [], 'no guest memory touched outside the rings');
  assert.ok(Buffer.from(g.mem.bytes).equals(before), 'a faulting pop writes nothing, not even in the rings');
  assert.equal(g.q.inFlightChains, inFlight, 'nothing popped');
}

const [SPLIT, PACKED] = FORMATS as [Format, Format];

test('split: a looped descriptor chain ends in ERR_QUEUE_CHAIN_TOO_LONG after at most queue-size descriptors', () => {
  const g = SPLIT.guarded(4);
  const mq = g.mq as MockQueue;
  mq.setDesc(0, { addr: 0x3000, len: 16, flags: VIRTQ_DESC_F_NEXT, next: 1 });
  mq.setDesc(1, { addr: 0x3010, len: 16, flags: VIRTQ_DESC_F_NEXT, next: 0 });
  mq.pushAvail(0);
  assertPopFaults(g, 'ERR_QUEUE_CHAIN_TOO_LONG');
});

test('packed: a list chained by NEXT round the whole ring ends in ERR_QUEUE_CHAIN_TOO_LONG after queue-size descriptors', () => {
  const g = PACKED.guarded(4);
  const mq = g.mq as MockPackedQueue;
  mq.publish(Array.from({ length: 4 }, (_, k) => ({ addr: 0x3000 + 16 * k, len: 16, id: 0, flags: VIRTQ_DESC_F_NEXT })));
  assertPopFaults(g, 'ERR_QUEUE_CHAIN_TOO_LONG');
});

for (const f of FORMATS) {
  test(`${f.name}: an indirect descriptor inside an indirect table is refused (ERR_QUEUE_NESTED_INDIRECT)`, () => {
    const g = f.guarded(8, { indirect: true });
    // The table at 0x3000: its one entry is itself INDIRECT.
    if (g.mq instanceof MockQueue) g.mq.writeDesc(0x3000, 0, { addr: 0x3100, len: 16, flags: VIRTQ_DESC_F_INDIRECT, next: 0 });
    else (g.mq as MockPackedQueue).writeDesc(0x3000, 0, { addr: 0x3100, len: 16, id: 0, flags: VIRTQ_DESC_F_INDIRECT });
    g.mem.allowRead(0x3000, 32, 'indirect table');
    g.publish({ addr: 0x3000, len: 32, flags: VIRTQ_DESC_F_INDIRECT });
    assertPopFaults(g, 'ERR_QUEUE_NESTED_INDIRECT');
  });
}

test('split: avail.idx moving more than the queue size past used.idx is refused (ERR_QUEUE_AVAIL_INDEX)', () => {
  const g = SPLIT.guarded(4);
  const mq = g.mq as MockQueue;
  mq.setDesc(0, { addr: 0x3000, len: 16, flags: 0, next: 0 });
  mq.setAvailIdx(5); // 5 chains claimed on a queue of 4 descriptors
  assertPopFaults(g, 'ERR_QUEUE_AVAIL_INDEX');
  assert.throws(
    () => g.q.hasAvailable(),
    (e: unknown) => e instanceof QueueFaultError && e.code === 'ERR_QUEUE_AVAIL_INDEX',
  );
});

test('split: an avail ring entry naming a descriptor beyond the table is refused (ERR_QUEUE_HEAD_INDEX)', () => {
  const g = SPLIT.guarded(4);
  (g.mq as MockQueue).pushAvail(4);
  assertPopFaults(g, 'ERR_QUEUE_HEAD_INDEX');
});

test('packed: a list running into slots the device holds, or continuing into a descriptor not made available, is refused', () => {
  // Two lists of two in a ring of four, both held; the guest makes a third available over them.
  const g = PACKED.guarded(4);
  const mq = g.mq as MockPackedQueue;
  mq.addChain({ readable: [new Uint8Array(4)], writable: [4] });
  mq.addChain({ readable: [new Uint8Array(4)], writable: [4] });
  assert.ok(g.q.pop() !== null && g.q.pop() !== null);
  mq.publish([{ addr: 0x3000, len: 16, id: 2, flags: 0 }]);
  assertPopFaults(g, 'ERR_QUEUE_CHAIN_PAST_AVAIL');
  // A fresh ring: the first descriptor says NEXT, the second is still zero.
  const h = PACKED.guarded(4);
  h.publish({ addr: 0x3000, len: 16, flags: VIRTQ_DESC_F_NEXT });
  assertPopFaults(h, 'ERR_QUEUE_DESC_NOT_AVAILABLE');
});

test('packed: a buffer id beyond the queue size, or one already in flight, is refused (ERR_QUEUE_BUFFER_ID, _IN_USE)', () => {
  const g = PACKED.guarded(4);
  const mq = g.mq as MockPackedQueue;
  mq.publish([{ addr: 0x3000, len: 16, id: 4, flags: 0 }]);
  assertPopFaults(g, 'ERR_QUEUE_BUFFER_ID');
  const h = PACKED.guarded(4);
  const mh = h.mq as MockPackedQueue;
  mh.publish([{ addr: 0x3000, len: 16, id: 1, flags: 0 }]);
  assert.equal(h.q.pop()?.head, 1);
  mh.publish([{ addr: 0x3010, len: 16, id: 1, flags: 0 }]);
  assertPopFaults(h, 'ERR_QUEUE_BUFFER_ID_IN_USE');
});

for (const f of FORMATS) {
  test(`${f.name}: zero-length buffers are accepted; a 4 GiB buffer is refused (ERR_QUEUE_BUFFER_ADDRESS)`, () => {
    const g = f.guarded(4);
    g.publish({ addr: 0x3000, len: 0, flags: 0 });
    const chain = g.q.pop();
    assert.ok(chain !== null);
    assert.deepEqual([chain.count, chain.len(0), chain.readableBytes], [1, 0, 0]);
    g.publish({ addr: 0, len: 0xffff_ffff, flags: VIRTQ_DESC_F_WRITE });
    assertPopFaults(g, 'ERR_QUEUE_BUFFER_ADDRESS');
  });

  test(`${f.name}: a descriptor straddling the end of guest memory is refused (ERR_QUEUE_BUFFER_ADDRESS)`, () => {
    const g = f.guarded(4);
    g.publish({ addr: 0x4000 - 8, len: 16, flags: VIRTQ_DESC_F_WRITE });
    assertPopFaults(g, 'ERR_QUEUE_BUFFER_ADDRESS');
  });

  test(`${f.name}: a 64-bit address that wraps is refused and one above 4 GiB is not truncated`, () => {
    const g = f.guarded(4, { base: 0x1_0000_0000 - 0x2000 });
    g.publish({ addr: 0xffff_ffff_ffff_f000n, len: 0x2000, flags: 0 });
    assertPopFaults(g, 'ERR_QUEUE_BUFFER_ADDRESS');
    // The same low half without the high half would be 0x1000 (not memory); with it, a real buffer.
    const g2 = f.guarded(4, { base: 0x1_0000_0000 - 0x2000 });
    g2.publish({ addr: 0x1_0000_1000, len: 16, flags: 0 });
    assert.equal(g2.q.pop()?.addr(0), 0x1_0000_1000);
  });

  test(`${f.name}: a device model returning a head it never popped or a len beyond the chain is refused`, () => {
    const g = f.guarded(4);
    g.mq.addChain({ writable: [16] });
    const chain = g.q.pop()!;
    assert.throws(
      () => g.q.pushUsed(chain.head ^ 1, 1),
      (e: unknown) => e instanceof QueueFaultError && e.code === 'ERR_QUEUE_USED_OVERFLOW',
    );
    assert.throws(() => g.q.pushUsed(chain.head, 17), UsageError);
    g.q.pushUsed(chain.head, 16);
    assert.deepEqual(g.mq.readUsed(), [{ id: chain.head, len: 16 }]);
  });
}

// ---- transport: queue_select beyond num_queues, NEEDS_RESET and a working reset ----

const QUEUE_REGISTERS = [
  VIRTIO_PCI_COMMON_Q_SIZE,
  VIRTIO_PCI_COMMON_Q_MSIX,
  VIRTIO_PCI_COMMON_Q_ENABLE,
  VIRTIO_PCI_COMMON_Q_NOFF,
  VIRTIO_PCI_COMMON_Q_DESCLO,
  VIRTIO_PCI_COMMON_Q_DESCHI,
  VIRTIO_PCI_COMMON_Q_AVAILLO,
  VIRTIO_PCI_COMMON_Q_AVAILHI,
  VIRTIO_PCI_COMMON_Q_USEDLO,
  VIRTIO_PCI_COMMON_Q_USEDHI,
];

test('queue_select beyond num_queues: the absent queue reads as absent and no write to any queue register lands', () => {
  const h = new ModernHarness({ queueMaxSizes: [8, 16] }).enableBar();
  h.negotiate();
  assert.equal(h.common(VIRTIO_PCI_COMMON_NUMQ, 2), 2);
  const configs = (): string =>
    JSON.stringify(
      h.fn.core.queues.map((q) => [
        q.size,
        h.fn.notifications.queueVector(q.index),
        q.enabled,
        q.ringAddress('desc'),
        q.ringAddress('driver'),
        q.ringAddress('device'),
      ]),
    );
  const before = configs();
  for (const sel of [2, 3, 0x7fff, 0xffff]) {
    h.setCommon(VIRTIO_PCI_COMMON_Q_SELECT, 2, sel);
    // 4.1.4.3: queue_size 0 means unavailable; nothing enabled or placed. The vector may read NO_VECTOR (as QEMU).
    assert.equal(h.common(VIRTIO_PCI_COMMON_Q_SIZE, 2), 0);
    assert.equal(h.common(VIRTIO_PCI_COMMON_Q_ENABLE, 2), 0);
    assert.ok([0, VIRTIO_MSI_NO_VECTOR].includes(h.common(VIRTIO_PCI_COMMON_Q_MSIX, 2)));
    for (const reg of QUEUE_REGISTERS.filter((r) => r >= VIRTIO_PCI_COMMON_Q_DESCLO))
      assert.equal(h.common(reg, 4), 0, `ring register 0x${reg.toString(16)}`);
    for (const reg of QUEUE_REGISTERS) {
      for (const size of [1, 2, 4] as const) {
        h.setCommon(reg, size, 0xffff_ffff);
        h.setCommon(reg, size, 1);
      }
    }
  }
  assert.equal(configs(), before);
});

test('a guest fault sets DEVICE_NEEDS_RESET with a config interrupt and stops the queue; reset brings the device back', async () => {
  const machine = new Machine({ ramSize: 1 << 20 });
  const { bdf, fn } = machine.plugVirtio(new RngDevice({ queueSize: 8 }));
  let rng = await RngDriver.open(machine.bus, bdf, { timeoutMs: 50 });
  assert.equal((await rng.read(4)).length, 4);
  // The guest moves avail.idx 9 past used.idx on a queue of 8, then notifies.
  const avail = fn.core.queues[0]!.ringAddress('driver');
  machine.memory.write16(avail + 2, (machine.memory.read16(avail + 2) + 9) & 0xffff);
  fn.core.notify(0);
  assert.equal(fn.core.status & VIRTIO_CONFIG_S_DEVICE_NEEDS_RESET, VIRTIO_CONFIG_S_DEVICE_NEEDS_RESET);
  assert.equal(fn.notifications.peekIsr() & VIRTIO_PCI_ISR_CONFIG, VIRTIO_PCI_ISR_CONFIG);
  assert.ok(fn.core.fault instanceof QueueFaultError && fn.core.fault.code === 'ERR_QUEUE_AVAIL_INDEX');
  // The driver sees the device stopped: its next request fails with NEEDS_RESET, not a hang.
  await assert.rejects(rng.read(4), deviceFault('ERR_DEVICE_NEEDS_RESET'));
  await rng.close(); // writes status 0
  assert.equal(fn.core.status, 0);
  rng = await RngDriver.open(machine.bus, bdf, { timeoutMs: 50 });
  assert.equal((await rng.read(64)).length, 64);
  assert.equal(fn.core.status & VIRTIO_CONFIG_S_DEVICE_NEEDS_RESET, 0);
  await rng.close();
});

test('a malformed blk request gets its error status byte and the device keeps serving', () => {
  const backend = new MemoryBlockBackend(8 * 512);
  backend.bytes.fill(0x5a, 0, 512);
  const device = new BlkDevice({ backend, queueSize: 16 });
  const h = activateDevice(device, bit(VIRTIO_F_VERSION_1));
  const mq = h.q(0);
  const header = (type: number, sector: number): Uint8Array => {
    const b = new Uint8Array(16);
    const dv = new DataView(b.buffer);
    dv.setUint32(0, type, true);
    const [lo, hi] = splitU64(sector);
    dv.setUint32(8, lo, true);
    dv.setUint32(12, hi, true);
    return b;
  };
  const short = mq.addChain({ readable: [new Uint8Array(7)], writable: [1] }); // header cut short
  const past = mq.addChain({ readable: [header(0, 2 ** 40)], writable: [512, 1] }); // IN far past capacity
  const unknown = mq.addChain({ readable: [header(0x7777, 0)], writable: [1] }); // unknown type
  const good = mq.addChain({ readable: [header(0, 0)], writable: [512, 1] }); // IN sector 0
  device.queueNotify(0);
  const used = new Map(mq.readUsed().map((u) => [u.id, u.len]));
  const status = (head: number, dataLen: number): number => mq.readWritten(head, dataLen + 1)[dataLen]!;
  assert.equal(status(short, 0), VIRTIO_BLK_S_IOERR);
  assert.equal(status(past, 512), VIRTIO_BLK_S_IOERR);
  assert.equal(status(unknown, 0), VIRTIO_BLK_S_UNSUPP);
  assert.equal(status(good, 512), VIRTIO_BLK_S_OK);
  assert.equal(
    mq.readWritten(good, 512).every((b) => b === 0x5a),
    true,
  );
  assert.equal(used.get(good), 513);
  assert.deepEqual(h.host.resets, [], 'per-request errors do not need a reset');
});

// ---- driver half: a device returning what was never asked, in each ring format ----

/** The used element / used descriptor a device writes first, forged: `id`, `len` (with WRITE), `count` of them claimed (split: used.idx). */
type Forge = (id: number, len: number, count?: number) => void;

/** A driver-side ring of `format` over RAM, built by the seam, with one writable 64-byte buffer published. */
async function ringInFlight(
  format: Format['name'],
): Promise<{ ring: DriverRing<string>; forge: Forge; dma: DmaMemory; mem: ArrayGuestMemory }> {
  const mem = new ArrayGuestMemory(0x10000);
  const dma: DmaMemory = new RamDma(mem, 0x1000, 0xf000);
  const features = bit(VIRTIO_F_VERSION_1) | (format === 'packed' ? bit(VIRTIO_F_RING_PACKED) : 0n);
  const ring = driverRing<string>({ index: 0, size: 8, dma, features, layout: 'separate' });
  const buf = dma.alloc(64, 16);
  ring.add([], [{ addr: buf.addr, len: 64 }], 'request');
  await ring.publish();
  const forge: Forge =
    format === 'split'
      ? (id, len, count = 1) => {
          mem.write32(ring.areas.device + VIRTQ_USED_RING, id);
          mem.write32(ring.areas.device + VIRTQ_USED_RING + 4, len);
          mem.write16(ring.areas.device + VIRTQ_USED_IDX, count);
        }
      : (id, len) => {
          // 2.8.1: a used descriptor in slot 0 has AVAIL and USED both at wrap counter 1.
          mem.write32(ring.areas.desc + PVIRTQ_DESC_LEN, len);
          mem.write16(ring.areas.desc + PVIRTQ_DESC_ID, id);
          mem.write16(ring.areas.desc + PVIRTQ_DESC_FLAGS, VIRTQ_DESC_F_AVAIL | VIRTQ_DESC_F_USED | VIRTQ_DESC_F_WRITE);
        };
  return { ring, forge, dma, mem };
}

for (const format of ['split', 'packed'] as const) {
  test(`${format}: the driver refuses a used id it never submitted (ERR_DEVICE_USED_ID)`, async () => {
    const { ring, forge } = await ringInFlight(format);
    forge(5, 1);
    await assert.rejects(ring.reap(), deviceFault('ERR_DEVICE_USED_ID'));
    assert.equal(ring.numFree, 7, 'nothing taken');
  });

  test(`${format}: the driver refuses a used len larger than the buffer (ERR_DEVICE_USED_LEN)`, async () => {
    const { ring, forge } = await ringInFlight(format);
    const head = 0;
    forge(head, 65);
    await assert.rejects(ring.reap(), deviceFault('ERR_DEVICE_USED_LEN'));
    forge(head, 64); // the same element, truthful: taken
    assert.deepEqual(await ring.reap(), [{ token: 'request', len: 64 }]);
  });

  test(`regression (finding 6), ${format}: the driver refuses a used element for a chain it has not published yet`, async () => {
    const mem = new ArrayGuestMemory(0x10000);
    const ram = new RamDma(mem, 0x1000, 0xf000);
    // Not coherent (as over a remote bus): publish flushes each pending chain's buffers.
    const dma: DmaMemory = { alloc: (s, a) => ram.alloc(s, a), free: (b) => ram.free(b), flush: async () => {}, refresh: async () => {} };
    const features = bit(VIRTIO_F_VERSION_1) | (format === 'packed' ? bit(VIRTIO_F_RING_PACKED) : 0n);
    const ring = driverRing<string>({ index: 0, size: 8, dma, features, layout: 'separate' });
    const buf = dma.alloc(64, 16);
    const head = ring.add([{ addr: buf.addr, len: 16 }], [{ addr: buf.addr + 16, len: 16 }], 'unpublished');
    if (format === 'split') {
      mem.write32(ring.areas.device + VIRTQ_USED_RING, head);
      mem.write32(ring.areas.device + VIRTQ_USED_RING + 4, 0);
      mem.write16(ring.areas.device + VIRTQ_USED_IDX, 1);
      await assert.rejects(ring.reap(), deviceFault('ERR_DEVICE_USED_ID'));
    } else {
      // The device overwrites the not yet available first descriptor with a used one for its id:
      // the driver reads no slot it has not published, so nothing comes back.
      mem.write16(ring.areas.desc + PVIRTQ_DESC_ID, head);
      mem.write16(ring.areas.desc + PVIRTQ_DESC_FLAGS, VIRTQ_DESC_F_AVAIL | VIRTQ_DESC_F_USED);
      assert.deepEqual(await ring.reap(), []);
    }
    await ring.publish();
  });
}

test('split: the driver refuses used.idx moving past the chains in flight (ERR_DEVICE_USED_INDEX)', async () => {
  const { ring, forge } = await ringInFlight('split');
  forge(0, 1, 2);
  await assert.rejects(ring.reap(), deviceFault('ERR_DEVICE_USED_INDEX'));
  assert.equal(VIRTQ_USED_ELEM_SIZE, 8);
});

test('packed: the driver refuses a descriptor whose AVAIL and USED flags disagree with its used wrap counter (ERR_DEVICE_USED_FLAGS)', async () => {
  const { ring, mem } = await ringInFlight('packed');
  // USED set, AVAIL clear: neither used (both 1) nor still available (AVAIL 1, USED 0) in lap 1.
  mem.write16(ring.areas.desc + PVIRTQ_DESC_FLAGS, VIRTQ_DESC_F_USED);
  await assert.rejects(ring.reap(), deviceFault('ERR_DEVICE_USED_FLAGS'));
  assert.equal(ring.numFree, 7, 'nothing taken');
});

/** machine.bus with a DMA memory whose refresh of a used element first rewrites its id. */
function lyingBus(machine: Machine, rewrite: (addr: number) => void): PciBus {
  const inner = machine.bus;
  const dma: DmaMemory = {
    alloc: (s, a) => inner.dma.alloc(s, a),
    free: (b) => inner.dma.free(b),
    flush: (a, l) => inner.dma.flush(a, l),
    refresh: async (addr, len) => {
      if (len === VIRTQ_USED_ELEM_SIZE) rewrite(addr);
      await inner.dma.refresh(addr, len);
    },
  };
  return new Proxy(inner, { get: (t, p) => (p === 'dma' ? dma : Reflect.get(t, p, t)) });
}

test('end to end: an rng driver facing a device that answers with a foreign used id fails with ERR_DEVICE_USED_ID', async () => {
  const machine = new Machine({ ramSize: 1 << 20 });
  const { bdf } = machine.plugVirtio(new RngDevice({ queueSize: 8 }));
  const bus = lyingBus(machine, (addr) => machine.memory.write32(addr, 0x7fff));
  const rng = await RngDriver.open(bus, bdf, { timeoutMs: 1000 });
  await assert.rejects(rng.read(16), deviceFault('ERR_DEVICE_USED_ID'));
  await rng.close();
});

/** A device that takes every request and never answers. */
class BlackHole implements VirtioDevice {
  readonly deviceType = VIRTIO_ID_RNG;
  readonly deviceFeatures = 0n;
  readonly queueMaxSizes = [8];
  readonly configSize = 0;
  attach(_host: VirtioDeviceHost): void {}
  readConfig(): number {
    return 0;
  }
  writeConfig(): void {}
  activate(_ctx: ActivateContext): void {}
  queueNotify(): void {}
  reset(): void {}
}

test('a device that never answers makes the driver time out (ERR_DEVICE_TIMEOUT), not hang', async () => {
  const machine = new Machine({ ramSize: 1 << 20 });
  const { bdf }: { bdf: Bdf } = machine.plugVirtio(new BlackHole());
  const rng = await RngDriver.open(machine.bus, bdf, { timeoutMs: 20 });
  const started = Date.now();
  await assert.rejects(rng.read(16), deviceFault('ERR_DEVICE_TIMEOUT'));
  assert.ok(Date.now() - started < 2000, 'the wait is bounded by the timeout');
  await rng.close();
});

// ---- regressions of the campaign findings (console driver, fixed in 9617591) ----

/**
 * A single-port console whose queues misbehave on purpose: receive buffers come back used and
 * empty the moment they are offered; transmit buffers are never taken.
 */
class SpitefulConsole implements VirtioDevice {
  readonly deviceType = VIRTIO_ID_CONSOLE;
  readonly deviceFeatures = 0n;
  readonly queueMaxSizes = [8, 8];
  readonly configSize = 12;
  private queues: readonly (DeviceQueue | null)[] = [];
  attach(_host: VirtioDeviceHost): void {}
  readConfig(): number {
    return 0;
  }
  writeConfig(): void {}
  activate(ctx: ActivateContext): void {
    this.queues = ctx.queues;
  }
  queueNotify(index: number): void {
    const q = this.queues[index];
    if (index !== consoleRxQueueIndex(0) || !q) return;
    for (let chain = q.pop(); chain !== null; chain = q.pop()) q.pushUsed(chain.head, 0);
  }
  reset(): void {
    this.queues = [];
  }
}

test('regression: a console device that never takes transmitted bytes makes write() time out, not wait forever', async () => {
  const machine = new Machine({ ramSize: 1 << 20 });
  const { bdf } = machine.plugVirtio(new SpitefulConsole());
  const drv = await VirtioConsoleDriver.open(machine.bus, bdf, { timeoutMs: 20 });
  const port = await drv.waitPort(0, 20);
  await assert.rejects(port.write(Uint8Array.of(1, 2, 3)), deviceFault('ERR_DEVICE_TIMEOUT'));
  await drv.close();
});

test('regression: a console device returning every receive buffer empty does not livelock the driver', async () => {
  const machine = new Machine({ ramSize: 1 << 20 });
  const { bdf } = machine.plugVirtio(new SpitefulConsole());
  const drv = await VirtioConsoleDriver.open(machine.bus, bdf, { timeoutMs: 20 });
  const port = await drv.waitPort(0, 20);
  // A timer still fires while the driver is open: the event loop is not starved by re-posting.
  const ticked = await new Promise<boolean>((resolve) => setTimeout(() => resolve(true), 5));
  assert.equal(ticked, true);
  await assert.rejects(port.read(16, 20), deviceFault('ERR_DEVICE_TIMEOUT'));
  await drv.close();
});

test('regression: a blk request that cannot fit in the ring fails with ERR_DEVICE_QUEUE instead of waiting forever', async () => {
  const machine = new Machine({ ramSize: 1 << 20 });
  const { bdf } = machine.plugVirtio(new BlkDevice({ backend: new MemoryBlockBackend(8 * 512), queueSize: 8 }));
  const drv = await BlkDriver.open(machine.bus, bdf, { timeoutMs: 50, queueSize: 2 });
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<'hang'>((resolve) => (timer = setTimeout(() => resolve('hang'), 1000)));
  const outcome = await Promise.race([
    drv.read(0, 1).then(
      () => 'ok',
      (e: unknown) => e,
    ),
    bound,
  ]);
  clearTimeout(timer);
  assert.notEqual(outcome, 'hang', 'read(0, 1) on a ring of 2 descriptors never settled');
  assert.ok(
    outcome instanceof DeviceFaultError && outcome.code === 'ERR_DEVICE_QUEUE',
    `expected ERR_DEVICE_QUEUE, got ${String(outcome)}`,
  );
  // A request that fits (flush: header + status) still works on the same ring.
  await drv.flush();
  await drv.close();
});

test('regression (finding 7): a multiport console driver closed at once returns every DMA buffer, even with DEVICE_ADD still being handled', async () => {
  const machine = new Machine({ ramSize: 1 << 20 });
  const { bdf } = machine.plugVirtio(makeZooDevice('console-multiport').device);
  // The honest bus (no input: nothing tampered) counts what the driver allocates and frees.
  const bus = new HostileBus(machine.bus, machine.memory, new FuzzInput(new Uint8Array(0)));
  const drv = await VirtioConsoleDriver.open(bus, bdf, { timeoutMs: 50 });
  await drv.close();
  await new Promise<void>((resolve) => setImmediate(resolve));
  assert.equal(bus.dmaOutstanding, 0, 'DMA bytes still allocated after close()');
});

test('regression (finding 10): control commands queued behind another when close() runs lend nothing after it: every DMA byte returns', async () => {
  const machine = new Machine({ ramSize: 1 << 20 });
  const { bdf } = machine.plugVirtio(makeZooDevice('net').device);
  // The honest bus (no input: nothing tampered) counts what the driver allocates and frees.
  const bus = new HostileBus(machine.bus, machine.memory, new FuzzInput(new Uint8Array(0)));
  const drv = await VirtioNetDriver.open(bus, bdf, { timeoutMs: 50 });
  // The second and third commands wait for the first; close() resets the device under them.
  const commands = [drv.setPromiscuous(true), drv.setAllMulticast(true), drv.setPromiscuous(false)];
  await drv.close();
  const outcomes = await Promise.allSettled(commands);
  await new Promise<void>((resolve) => setImmediate(resolve));
  assert.equal(bus.dmaOutstanding, 0, 'DMA bytes still allocated after close()');
  for (const o of outcomes.slice(1))
    assert.ok(
      o.status === 'fulfilled' || o.reason instanceof VirtioError,
      `a command ended in ${String(o.status === 'rejected' ? o.reason : '')}`,
    );
});

// ---- the guard itself can fail ----

test('the memory guard sees writes outside the allowed ranges, including through a view', () => {
  const mem = new GuardedMemory(0x100);
  mem.allowWrite(0x10, 0x10, 'buffer');
  mem.snapshot();
  mem.write8(0x18, 1);
  assert.deepEqual(mem.problems(), []);
  mem.write8(0x20, 1);
  mem.view(0x40, 4).fill(9);
  assert.deepEqual(
    mem.problems().map((p) => [p.kind, p.addr]),
    [
      ['write', 0x20],
      ['view', 0x40],
      ['changed', 0x20],
      ['changed', 0x40],
      ['changed', 0x41],
      ['changed', 0x42],
      ['changed', 0x43],
    ],
  );
});
