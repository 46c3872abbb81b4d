import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assignBars, BarAllocator, sizeBars } from '../../../src/bus/bars.js';
import { enumerate } from '../../../src/bus/enumerate.js';
import { readConfigSpace } from '../../../src/bus/config-space-reader.js';
import { bdf } from '../../../src/bus/pci-bus.js';
import { BusError } from '../../../src/errors.js';
import { Machine } from '../../../src/platform/machine.js';
import { RngDevice } from '../../../src/device/rng/rng-device.js';
import { ConfigSpaceBuilder } from '../../../src/testing/config-space-builder.js';
import { FakePciBus } from '../../../src/testing/fake-pci-bus.js';

const FN = bdf(0, 2, 0);
const PCI_COMMAND = 0x04;
const BAR = (i: number): number => 0x10 + 4 * i;

/** A function with an I/O BAR0, a 32-bit memory BAR1, a 64-bit prefetchable BAR2/3 and a 64-bit BAR4/5 of 8 GiB. */
function fourKinds(): ConfigSpaceBuilder {
  return new ConfigSpaceBuilder({ deviceId: 0x1041 })
    .bar(0, { kind: 'io', size: 0x40 })
    .bar(1, { kind: 'memory', size: 0x1000 })
    .bar(2, { kind: 'memory', size: 0x4000, is64: true, prefetchable: true })
    .bar(4, { kind: 'memory', size: 2 ** 33, is64: true });
}

/** Where a fresh FakePciBus puts fourKinds()' BARs: [index, base]. */
const FOUR_KINDS_ASSIGNED = [
  [0, 0xc000],
  [1, 0xe000_0000],
  [2, 0x80_0000_0000],
  [4, 0x82_0000_0000], // 8 GiB aligned, after the 16 KiB BAR2
];

test('sizeBars: I/O, 32-bit and 64-bit memory (also above 4 GiB in size), registers and command restored', async () => {
  const bus = new FakePciBus();
  bus.add(FN, fourKinds().build());
  await bus.configWrite(FN, PCI_COMMAND, 2, 0x0007);
  await bus.configWrite(FN, BAR(1), 4, 0xfebd_1000);
  bus.log.length = 0;
  const bars = await sizeBars(bus, FN);
  assert.deepEqual(bars, [
    { index: 0, kind: 'io', is64: false, prefetchable: false, size: 0x40, base: 0 },
    { index: 1, kind: 'memory', is64: false, prefetchable: false, size: 0x1000, base: 0xfebd_1000 },
    { index: 2, kind: 'memory', is64: true, prefetchable: true, size: 0x4000, base: 0 },
    { index: 4, kind: 'memory', is64: true, prefetchable: false, size: 2 ** 33, base: 0 },
  ]);
  // Decoding is off while the BARs hold all-ones, and the command register comes back as it was.
  const commandWrites = bus
    .accesses('configWrite')
    .filter((a) => a.offset === PCI_COMMAND)
    .map((a) => a.value);
  assert.deepEqual(commandWrites, [0x0004, 0x0007]);
  assert.equal(await bus.configRead(FN, BAR(1), 4), 0xfebd_1000, 'the programmed base survives sizing');
  // Each of the six BAR registers was probed with all-ones.
  const probed = bus
    .accesses('configWrite')
    .filter((a) => a.value === 0xffffffff)
    .map((a) => a.offset);
  assert.deepEqual(probed, [BAR(0), BAR(1), BAR(2), BAR(3), BAR(4), BAR(5)]);
});

test('assignBars: unprogrammed BARs get naturally aligned addresses from the bus windows; 64-bit ones from mem64', async () => {
  const bus = new FakePciBus();
  bus.add(FN, fourKinds().build());
  const bars = await assignBars(bus, FN);
  assert.deepEqual(
    bars.map((b) => [b.index, b.base]),
    FOUR_KINDS_ASSIGNED,
  );
  assert.equal(await bus.configRead(FN, BAR(0), 4), 0xc001, 'I/O space bit set by hardware');
  assert.equal(await bus.configRead(FN, BAR(2), 4), 0x0000_000c, '64-bit prefetchable, low half 0');
  assert.equal(await bus.configRead(FN, BAR(3), 4), 0x80, 'high half written');
  assert.equal(await bus.configRead(FN, BAR(5), 4), 0x82);
  assert.equal((await bus.configRead(FN, PCI_COMMAND, 2)) & 0x7, 0x7, 'I/O, memory and bus master enabled');
});

test('assignBars: functions on one bus never overlap; 64-bit BARs fall back to mem32 without a mem64 window', async () => {
  const bus = new FakePciBus();
  bus.resources = { mem32: { base: 0xe000_0000, size: 0x10_0000 }, io: { base: 0xc000, size: 0x100 } };
  const small = (): ConfigSpaceBuilder =>
    new ConfigSpaceBuilder({ deviceId: 0x1041 }).bar(0, { kind: 'io', size: 0x80 }).bar(4, { kind: 'memory', size: 0x4000, is64: true });
  bus.add(bdf(0, 1, 0), small().build());
  bus.add(bdf(0, 2, 0), small().build());
  const a = await assignBars(bus, bdf(0, 1, 0));
  const b = await assignBars(bus, bdf(0, 2, 0));
  assert.deepEqual(
    a.map((x) => x.base),
    [0xc000, 0xe000_0000],
  );
  assert.deepEqual(
    b.map((x) => x.base),
    [0xc080, 0xe000_4000],
  );
  bus.add(bdf(0, 3, 0), small().build());
  await assert.rejects(
    assignBars(bus, bdf(0, 3, 0)),
    (e: unknown) => e instanceof BusError && /no room for BAR0 \(io, 128 bytes\)/.test(e.message),
  );
});

test('assignBars without bus resources (firmware did it) leaves bases alone and only enables decoding', async () => {
  const bus = new FakePciBus();
  bus.resources = undefined;
  bus.add(FN, fourKinds().build());
  await bus.configWrite(FN, BAR(1), 4, 0xfebd_1000);
  const bars = await assignBars(bus, FN);
  assert.deepEqual(
    bars.map((b) => b.base),
    [0, 0xfebd_1000, 0, 0],
  );
  assert.equal((await bus.configRead(FN, PCI_COMMAND, 2)) & 0x7, 0x7);
});

test('assignBars: a BAR the device came with programmed outside the bus windows is moved into them', async () => {
  const bus = new FakePciBus();
  bus.add(FN, fourKinds().build());
  await bus.configWrite(FN, BAR(0), 4, 0x0cf8); // the PCI configuration ports
  await bus.configWrite(FN, BAR(1), 4, 0xfee0_0000); // where MSI messages go
  await bus.configWrite(FN, BAR(2), 4, 0x0010_0000); // low RAM
  const bars = await assignBars(bus, FN);
  assert.deepEqual(
    bars.map((b) => [b.index, b.base]),
    FOUR_KINDS_ASSIGNED,
  );
  assert.equal(await bus.configRead(FN, BAR(1), 4), 0xe000_0000, 'the register holds the new base');
});

test("assignBars: a BAR programmed over another function's BAR is moved; one inside the windows and clear of others is kept, also when probed again", async () => {
  const bus = new FakePciBus();
  const small = (): ConfigSpaceBuilder =>
    new ConfigSpaceBuilder({ deviceId: 0x1041 }).bar(0, { kind: 'io', size: 0x80 }).bar(1, { kind: 'memory', size: 0x4000 });
  const [A, B, C] = [bdf(0, 1, 0), bdf(0, 2, 0), bdf(0, 3, 0)];
  for (const f of [A, B, C]) bus.add(f, small().build());
  const a = await assignBars(bus, A);
  assert.deepEqual(
    a.map((x) => x.base),
    [0xc000, 0xe000_0000],
  );
  // B comes decoding A's ranges: the driver's accesses to B would reach A's registers.
  await bus.configWrite(B, BAR(0), 4, 0xc000);
  await bus.configWrite(B, BAR(1), 4, 0xe000_0000);
  // C sits in the windows, clear of everything: kept where it is.
  await bus.configWrite(C, BAR(1), 4, 0xe001_0000);
  const c = await assignBars(bus, C);
  assert.deepEqual(
    c.map((x) => x.base),
    [0xc080, 0xe001_0000],
  );
  const b = await assignBars(bus, B);
  assert.deepEqual(
    b.map((x) => x.base),
    [0xc100, 0xe000_4000],
  );
  assert.deepEqual(
    (await assignBars(bus, A)).map((x) => x.base),
    [0xc000, 0xe000_0000],
    'A keeps its own ranges when probed again',
  );
  assert.deepEqual(
    (await assignBars(bus, B)).map((x) => x.base),
    [0xc100, 0xe000_4000],
  );
});

test('BarAllocator hands out natural alignment and refuses what does not fit', () => {
  const alloc = new BarAllocator({ mem32: { base: 0x1000, size: 0x3000 }, io: { base: 0x100, size: 0x10 } });
  assert.equal(alloc.take({ kind: 'memory', is64: false, size: 0x100 }), 0x1000);
  assert.equal(alloc.take({ kind: 'memory', is64: false, size: 0x2000 }), 0x2000);
  assert.equal(alloc.take({ kind: 'memory', is64: true, size: 0x1000 }), undefined, 'window end is exclusive');
  assert.equal(alloc.take({ kind: 'io', is64: false, size: 0x10 }), 0x100);
  assert.equal(alloc.take({ kind: 'io', is64: false, size: 4 }), undefined);
});

test('enumerate: devices 0..31 at function 0, and functions 1..7 only of multi-function devices', async () => {
  const bus = new FakePciBus();
  bus.add(bdf(0, 0, 0), new ConfigSpaceBuilder({ vendorId: 0x8086, deviceId: 0x1237 }).build());
  bus.add(bdf(0, 3, 0), new ConfigSpaceBuilder({ deviceId: 0x1041, headerType: 0x80 }).build());
  bus.add(bdf(0, 3, 5), new ConfigSpaceBuilder({ deviceId: 0x1042 }).build());
  bus.add(bdf(0, 31, 0), new ConfigSpaceBuilder({ deviceId: 0x1044 }).build());
  bus.add(bdf(0, 31, 1), new ConfigSpaceBuilder({ deviceId: 0x1045 }).build()); // not multi-function: unseen
  const found = await enumerate(bus);
  assert.deepEqual(
    found.map((f) => [f.bdf, f.vendorId, f.deviceId]),
    [
      [bdf(0, 0, 0), 0x8086, 0x1237],
      [bdf(0, 3, 0), 0x1af4, 0x1041],
      [bdf(0, 3, 5), 0x1af4, 0x1042],
      [bdf(0, 31, 0), 0x1af4, 0x1044],
    ],
  );
});

test('readConfigSpace: 64 four-byte reads give the same 256 bytes the function holds', async () => {
  const m = new Machine({ ramSize: 1 << 20 });
  const { bdf: fn } = m.plugVirtio(new RngDevice());
  const cfg = await readConfigSpace(m.bus, fn);
  assert.equal(cfg.vendorId, 0x1af4);
  assert.equal(cfg.deviceId, 0x1044);
  assert.equal(cfg.revision, 1);
  for (let off = 0; off < 256; off += 4)
    assert.equal(cfg.read32(off), await m.bus.configRead(fn, off, 4), `dword at 0x${off.toString(16)}`);
  assert.equal(cfg.read32(254), 0, 'reads past the end are 0, never out of bounds');
});
