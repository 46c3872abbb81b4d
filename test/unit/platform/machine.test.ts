import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Machine, HIGH_RAM_BASE, MACHINE_MEM64_WINDOW, MSI_ADDRESS_BASE } from '../../../src/platform/machine.js';
import { bdf, type InterruptEvent } from '../../../src/bus/pci-bus.js';
import type { DeviceHost } from '../../../src/pci/function.js';
import { ConfigSpace } from '../../../src/pci/config-space.js';
import { PciEndpoint } from '../../../src/pci/endpoint.js';
import { VirtioPciFunction } from '../../../src/transport/pci/virtio-pci-function.js';
import { splitU64 } from '../../../src/memory/guest-memory.js';
import { UsageError } from '../../../src/errors.js';
import { LoopbackDevice } from '../../helpers/loopback-device.js';
import { MockQueue } from '../../../src/testing/mock-queue.js';

// Literal spec numbers: PCI header offsets, virtio common cfg offsets (4.1.4.3), status bits (2.1).
const BAR4 = 0x20;
const COMMAND = 0x04;
const Q_SELECT = 22;
const Q_SIZE = 24;
const Q_ENABLE = 28;
const STATUS = 20;
const GFSELECT = 8;
const GF = 12;

/** Program BAR4 of the function at `fn` to `base` and enable memory decoding, through the bus. */
async function mapBar4(m: Machine, fn: number, base: number): Promise<void> {
  const [lo, hi] = splitU64(base);
  await m.bus.configWrite(fn, BAR4, 4, lo);
  await m.bus.configWrite(fn, BAR4 + 4, 4, hi);
  await m.bus.configWrite(fn, COMMAND, 2, 0x2);
}

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

test('slots: functions at the lowest free device numbers; empty slots read all-ones', async () => {
  const m = new Machine();
  const a = m.plugVirtio(new LoopbackDevice());
  const b = m.plugVirtio(new LoopbackDevice({ deviceType: 2 }));
  assert.equal(a.bdf, bdf(0, 0, 0));
  assert.equal(b.bdf, bdf(0, 1, 0));
  assert.equal(await m.bus.configRead(b.bdf, 0, 4), 0x1042_1af4);
  assert.equal(await m.bus.configRead(bdf(0, 2, 0), 0, 4), 0xffff_ffff);
  assert.equal(await m.bus.configRead(bdf(0, 2, 0), 0, 2), 0xffff);
  assert.throws(() => m.plugVirtio(new LoopbackDevice(), { at: a.bdf }), UsageError);
  const c = m.plugVirtio(new LoopbackDevice(), { at: bdf(0, 7, 0) });
  assert.equal(m.functionAt(c.bdf), c.fn);
});

test('RAM the caller gives is used in place (neither copied nor zeroed); a ramSize beside it must match', () => {
  const ram = new Uint8Array(0x4000).fill(0xa5);
  const m = new Machine({ ram });
  assert.equal(m.memory.read8(0x10), 0xa5, 'not zeroed');
  m.memory.write8(0x20, 0x11);
  assert.equal(ram[0x20], 0x11, 'not copied');
  const buf = m.bus.dma.alloc(16, 16);
  buf.bytes[0] = 7;
  assert.equal(ram[buf.addr], 7, 'DMA memory comes from it');
  assert.ok(m.memory.contains(0x3fff, 1) && !m.memory.contains(0x4000, 1), 'its length is the RAM size');
  assert.throws(() => new Machine({ ram, ramSize: 0x8000 }), UsageError);
  assert.ok(new Machine({ ram, ramSize: 0x4000 }).memory.contains(0, 0x4000));
});

test('MMIO is routed by decoded BARs; unmapped addresses and ports read all-ones', async () => {
  const m = new Machine();
  const { bdf: at, fn } = m.plugVirtio(new LoopbackDevice());
  const base = MACHINE_MEM64_WINDOW.base;
  assert.equal(await m.bus.memRead(base + STATUS, 1), 0xff, 'BAR not programmed');
  await mapBar4(m, at, base);
  await m.bus.memWrite(base + STATUS, 1, 1);
  assert.equal(fn.core.status, 1);
  assert.equal(await m.bus.memRead(base + STATUS, 1), 1);
  assert.equal(await m.bus.memRead(base + 0x4000, 4), 0xffff_ffff, 'just past the BAR');
  assert.equal(await m.bus.memRead(base + 0x3ffe, 4), 0xffff_ffff, 'straddling the end of the BAR');
  assert.equal(await m.bus.memRead(0xd000_0000, 4), 0xffff_ffff, 'a hole');
  assert.equal(await m.bus.ioRead(0x1234, 2), 0xffff);
  await m.bus.configWrite(at, COMMAND, 2, 0);
  assert.equal(await m.bus.memRead(base + STATUS, 1), 0xff, 'decoding off');
  await m.bus.memWrite(base + STATUS, 1, 0);
  assert.equal(fn.core.status, 1, 'a write with decoding off is not routed');
});

test('guest RAM through memRead/memWrite, low and above 4 GiB', async () => {
  const m = new Machine({ ramSize: 1 << 20, highRamSize: 1 << 20 });
  await m.bus.memWrite(0x100, 4, 0x1122_3344);
  assert.equal(m.memory.read32(0x100), 0x1122_3344);
  await m.bus.memWrite(HIGH_RAM_BASE + 8, 2, 0xbeef);
  assert.equal(m.memory.read16(HIGH_RAM_BASE + 8), 0xbeef);
  assert.equal(await m.bus.memRead(HIGH_RAM_BASE + 8, 4), 0xbeef);
  assert.equal(await m.bus.memRead(8, 4), 0, 'the low alias is untouched');
  assert.equal(await m.bus.memRead(1 << 20, 4), 0xffff_ffff, 'past low RAM');
});

test('I/O BARs are routed by port while IO decoding is enabled', async () => {
  const m = new Machine();
  const writes: [number, number][] = [];
  const { bdf: at } = m.plug((host: DeviceHost) => {
    const cs = new ConfigSpace(
      { vendorId: 0x1234, deviceId: 0x5678, revisionId: 0, classCode: 0xff0000, subsystemVendorId: 0, subsystemId: 0, interruptPin: 0 },
      [{ kind: 'io', size: 32, is64: false, prefetchable: false }],
    );
    const ep = new PciEndpoint(cs, host);
    ep.setBarRegion(0, { read: (o) => 0xa0 + o, write: (o, _s, v) => writes.push([o, v]) });
    return ep;
  });
  await m.bus.configWrite(at, 0x10, 4, 0xc020);
  assert.equal(await m.bus.ioRead(0xc021, 1), 0xff, 'IO decoding off');
  await m.bus.configWrite(at, COMMAND, 2, 0x1);
  assert.equal(await m.bus.ioRead(0xc021, 1), 0xa1);
  await m.bus.ioWrite(0xc03c, 4, 7);
  assert.deepEqual(writes, [[0x1c, 7]]);
  assert.equal(await m.bus.ioRead(0xc03e, 4), 0xffff_ffff, 'straddles the end');
});

test('a request end to end with rings above 4 GiB; INTx events arrive asynchronously', async () => {
  const m = new Machine({ ramSize: 1 << 20, highRamSize: 4 << 20 });
  const device = new LoopbackDevice({ queueMaxSizes: [64] });
  const { bdf: at, fn } = m.plugVirtio(device);
  const base = MACHINE_MEM64_WINDOW.base;
  await mapBar4(m, at, base);
  const events: InterruptEvent[] = [];
  m.bus.onInterrupt(at, (e) => events.push(e));
  const w = (off: number, size: 1 | 2 | 4, v: number): Promise<void> => m.bus.memWrite(base + off, size, v);
  await w(STATUS, 1, 1);
  await w(STATUS, 1, 3);
  await w(GFSELECT, 4, 1);
  await w(GF, 4, 1); // VERSION_1
  await w(STATUS, 1, 11);
  assert.equal(await m.bus.memRead(base + STATUS, 1), 11);
  const q = new MockQueue({ size: 64, memory: m.memory, base: HIGH_RAM_BASE });
  await w(Q_SELECT, 2, 0);
  await w(Q_SIZE, 2, 64);
  for (const [lo, addr] of [
    [32, q.descAddr],
    [40, q.availAddr],
    [48, q.usedAddr],
  ] as const) {
    const [l, h] = splitU64(addr);
    await w(lo, 4, l);
    await w(lo + 4, 4, h);
  }
  await w(Q_ENABLE, 2, 1);
  await w(STATUS, 1, 15);
  assert.equal(fn.core.status, 15);
  const head = q.addChain({ readable: [new Uint8Array([9, 8, 7])], writable: [8] });
  const notified = w(0x3000, 2, 0);
  assert.equal(m.intxLevel(at), true);
  assert.deepEqual(events, [], 'not delivered inside the register access');
  await notified;
  await tick();
  assert.deepEqual(events, [{ kind: 'intx', asserted: true }]);
  assert.equal(await m.bus.memRead(base + 0x1000, 1), 1, 'ISR: queue interrupt');
  await tick();
  assert.deepEqual(events, [
    { kind: 'intx', asserted: true },
    { kind: 'intx', asserted: false },
  ]);
  assert.deepEqual([...q.readWritten(head, 3)], [9, 8, 7]);
  assert.deepEqual(q.readUsed(), [{ id: head, len: 3 }]);
});

test('MSI: messages in the MSI window reach the function named by the data; others are memory writes', async () => {
  const m = new Machine();
  let host: DeviceHost | undefined;
  const a = m.plug((h) => {
    host = h;
    return new VirtioPciFunction(new LoopbackDevice(), h);
  });
  const b = m.plugVirtio(new LoopbackDevice());
  const events: [number, InterruptEvent][] = [];
  m.bus.onInterrupt(a.bdf, (e) => events.push([a.bdf, e]));
  const unsubscribe = m.bus.onInterrupt(b.bdf, (e) => events.push([b.bdf, e]));
  const msgA = m.bus.msiMessage(a.bdf, 3)!;
  const msgB = m.bus.msiMessage(b.bdf, 3)!;
  assert.equal(msgA.address, MSI_ADDRESS_BASE);
  assert.notEqual(msgA.data, msgB.data, 'unique per (function, vector)');
  assert.notEqual(msgA.data, m.bus.msiMessage(a.bdf, 4)!.data);
  host!.sendMsi(msgB.address, msgB.data);
  host!.sendMsi(msgA.address, msgA.data);
  await tick();
  assert.deepEqual(events, [
    [b.bdf, { kind: 'msi', address: msgB.address, data: msgB.data }],
    [a.bdf, { kind: 'msi', address: msgA.address, data: msgA.data }],
  ]);
  unsubscribe();
  host!.sendMsi(msgB.address, msgB.data);
  host!.sendMsi(0x2000, 0xcafe_f00d);
  await tick();
  assert.equal(events.length, 2);
  assert.equal(m.memory.read32(0x2000), 0xcafe_f00d);
  host!.sendMsi(0xd000_0000, 1); // nowhere: dropped
});

test('DMA: aligned zero-copy views of guest RAM, reusable after free, exhaustion is a UsageError', async () => {
  const m = new Machine({ ramSize: 1 << 20, highRamSize: 1 << 20, dmaRegion: 'high' });
  const a = m.bus.dma.alloc(100, 4096);
  assert.equal(a.addr % 4096, 0);
  assert.ok(a.addr >= HIGH_RAM_BASE);
  a.bytes.set([1, 2, 3]);
  await m.bus.dma.flush(a.addr, 3);
  assert.equal(m.memory.read16(a.addr + 1), 0x0302);
  m.memory.write8(a.addr + 99, 0x55);
  await m.bus.dma.refresh(a.addr, 100);
  assert.equal(a.bytes[99], 0x55);
  m.bus.dma.free(a);
  assert.equal(m.bus.dma.alloc(100, 4096).addr, a.addr);
  assert.throws(() => m.bus.dma.alloc(2 << 20, 1), UsageError);
  const low = new Machine({ ramSize: 1 << 20 });
  const b = low.bus.dma.alloc(16, 16);
  assert.ok(b.addr >= 0x1000, 'page 0 is never handed out');
});

test('bad machine options are refused', () => {
  assert.throws(() => new Machine({ ramSize: 0xf000_0000 }), UsageError);
  assert.throws(() => new Machine({ dmaRegion: 'high' }), UsageError);
});
