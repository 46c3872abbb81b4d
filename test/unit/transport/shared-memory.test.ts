/**
 * Shared memory regions (spec 2.10, 4.1.4.7), both halves: the capabilities and BAR2 our function
 * presents, byte for byte; the probe's validation of hostile capabilities (64-bit arithmetic, BAR
 * bounds, duplicate ids); and bytes both ways between the device model and the driver's window, on
 * the in-process machine, above 4 GiB and with offsets and lengths past 32 bits.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { SharedMemory, type SharedMemoryRegion } from '../../../src/core/shared-memory.js';
import type { AccessSize } from '../../../src/memory/access-size.js';
import { Machine } from '../../../src/platform/machine.js';
import { probe, type ModernProbe, type ProbeResult } from '../../../src/transport/pci/probe.js';
import { SHARED_MEMORY_BAR, sharedMemoryLayout } from '../../../src/transport/pci/shared-memory-cfg.js';
import { SharedMemoryWindow, type SharedMemoryCap } from '../../../src/transport/pci/shared-memory-driver.js';
import { ProbeError, UsageError } from '../../../src/errors.js';
import { bdf } from '../../../src/bus/pci-bus.js';
import { PCI_BASE_ADDRESS_0, PCI_CAP_ID_VNDR } from '../../../src/spec/pci.js';
import { VIRTIO_PCI_CAP_SHARED_MEMORY_CFG } from '../../../src/spec/virtio-pci.js';
import { ConfigSpaceBuilder, qemuLikeVirtio, type SharedMemoryCapSpec } from '../../../src/testing/config-space-builder.js';
import { FakePciBus } from '../../../src/testing/fake-pci-bus.js';
import { LoopbackDevice } from '../../helpers/loopback-device.js';

const GiB = 2 ** 30;

function modern(result: ProbeResult): ModernProbe {
  assert.equal(result.kind, 'modern', result.explanation);
  return result;
}

function le(value: number, width: number): number[] {
  return Array.from({ length: width }, (_, i) => Math.floor(value / 2 ** (8 * i)) & 0xff);
}

/** A region whose bytes live in a map: sizes a test could never allocate. */
class SparseRegion implements SharedMemoryRegion {
  readonly bytes = new Map<number, number>();
  constructor(
    readonly id: number,
    readonly size: number,
  ) {}
  read(offset: number, size: AccessSize): number {
    let v = 0;
    for (let i = size - 1; i >= 0; i--) v = v * 256 + (this.bytes.get(offset + i) ?? 0);
    return v;
  }
  write(offset: number, size: AccessSize, value: number): void {
    for (let i = 0; i < size; i++) this.bytes.set(offset + i, Math.floor(value / 2 ** (8 * i)) & 0xff);
  }
}

test('device side: one struct virtio_pci_cap64 per region (cap.id = shmid), before the modern caps; BAR2 64-bit prefetchable', async () => {
  const m = new Machine();
  const small = new SharedMemory(1, 0x3000);
  const big = new SharedMemory(7, 0x10000);
  const { bdf: fn } = m.plugVirtio(new LoopbackDevice({ sharedMemoryRegions: [small, big] }));
  const bytes = await Promise.all(Array.from({ length: 0x74 }, (_, i) => m.bus.configRead(fn, i, 1)));
  // 0x3000 is placed at 0; 64 KiB at its own alignment, 0x10000; the BAR is the power of two over both.
  assert.deepEqual(bytes.slice(0x40, 0x58), [0x09, 0x00, 24, 8, 2, 1, 0, 0, ...le(0, 4), ...le(0x3000, 4), ...le(0, 4), ...le(0, 4)]);
  assert.deepEqual(bytes.slice(0x58, 0x70), [
    0x09,
    0x40,
    24,
    8,
    2,
    7,
    0,
    0,
    ...le(0x10000, 4),
    ...le(0x10000, 4),
    ...le(0, 4),
    ...le(0, 4),
  ]);
  assert.equal(bytes[0x70], 0x09, 'the common-cfg capability follows');
  assert.equal(await m.bus.configRead(fn, PCI_BASE_ADDRESS_0 + 4 * SHARED_MEMORY_BAR, 4), 0x0c, 'BAR2: 64-bit, prefetchable memory');
  await m.bus.configWrite(fn, PCI_BASE_ADDRESS_0 + 4 * SHARED_MEMORY_BAR, 4, 0xffff_ffff);
  await m.bus.configWrite(fn, PCI_BASE_ADDRESS_0 + 4 * SHARED_MEMORY_BAR + 4, 4, 0xffff_ffff);
  assert.equal(await m.bus.configRead(fn, PCI_BASE_ADDRESS_0 + 4 * SHARED_MEMORY_BAR, 4), 0xfffe_000c, 'BAR2 sizes to 128 KiB');
});

test('driver side on the machine: the probe finds each region by id; bytes go both ways through the BAR above 4 GiB', async () => {
  const m = new Machine();
  const small = new SharedMemory(1, 0x3000);
  const big = new SharedMemory(7, 0x10000);
  const { bdf: fn } = m.plugVirtio(new LoopbackDevice({ sharedMemoryRegions: [small, big] }));
  const result = modern(await probe(m.bus, fn));
  // In list order: the newest capability heads the list, as in QEMU.
  assert.deepEqual([...result.sharedMemory.keys()], [7, 1]);
  const bar2 = result.bars.find((b) => b.index === SHARED_MEMORY_BAR)!;
  assert.ok(bar2.base >= 2 ** 32, 'a 64-bit BAR goes to the 64-bit window');
  assert.deepEqual(result.sharedMemory.get(7), {
    id: 7,
    capOffset: 0x58,
    bar: 2,
    offset: 0x10000,
    length: 0x10000,
    address: bar2.base + 0x10000,
  });
  const window = new SharedMemoryWindow(m.bus, result.sharedMemory.get(7)!);
  await window.writeBytes(0xfffa, new Uint8Array([1, 2, 3, 4, 5, 6]));
  assert.deepEqual([...big.bytes.subarray(0xfffa)], [1, 2, 3, 4, 5, 6], "the driver wrote the device model's bytes");
  assert.deepEqual([...small.bytes.subarray(0, 8)], [0, 0, 0, 0, 0, 0, 0, 0], 'and nothing of the other region');
  small.bytes.set([0xde, 0xad, 0xbe, 0xef], 0x2ffc);
  const smallWindow = new SharedMemoryWindow(m.bus, result.sharedMemory.get(1)!);
  assert.equal(await smallWindow.read(0x2ffc, 4), 0xefbeadde);
  assert.deepEqual([...(await smallWindow.readBytes(0x2ffd, 3))], [0xad, 0xbe, 0xef]);
  // The window refuses to leave the region before touching the bus.
  await assert.rejects(async () => smallWindow.read(0x2ffe, 4), UsageError);
  await assert.rejects(async () => window.writeBytes(-1, new Uint8Array(1)), UsageError);
  // The hole between the regions reads 0 and keeps nothing (as QEMU's unassigned space).
  await m.bus.memWrite(bar2.base + 0x8000, 4, 0x12345678);
  assert.equal(await m.bus.memRead(bar2.base + 0x8000, 4), 0);
});

test('64-bit form: a region of 8 GiB has length_hi 2, the region after it offset_hi 2; the driver reaches both', async () => {
  const m = new Machine();
  const huge = new SparseRegion(0, 8 * GiB);
  const after = new SharedMemory(1, 0x1000);
  const { bdf: fn } = m.plugVirtio(new LoopbackDevice({ sharedMemoryRegions: [huge, after] }));
  const cap = async (at: number): Promise<number[]> => Promise.all([20, 16, 12, 8].map((rel) => m.bus.configRead(fn, at + rel, 4)));
  // [length_hi, offset_hi, length, offset]
  assert.deepEqual(await cap(0x40), [2, 0, 0, 0]);
  assert.deepEqual(await cap(0x58), [0, 2, 0x1000, 0]);
  const result = modern(await probe(m.bus, fn));
  assert.equal(result.bars.find((b) => b.index === SHARED_MEMORY_BAR)!.size, 16 * GiB);
  assert.equal(result.sharedMemory.get(0)!.length, 8 * GiB);
  assert.equal(result.sharedMemory.get(1)!.offset, 8 * GiB);
  await new SharedMemoryWindow(m.bus, result.sharedMemory.get(1)!).write(0x10, 4, 0xcafef00d);
  assert.equal(after.read(0x10, 4), 0xcafef00d);
  await new SharedMemoryWindow(m.bus, result.sharedMemory.get(0)!).write(5 * GiB + 2, 2, 0xbeef);
  assert.deepEqual([huge.bytes.get(5 * GiB + 2), huge.bytes.get(5 * GiB + 3)], [0xef, 0xbe]);
});

test('sharedMemoryBar64: false keeps BAR2 32-bit (a machine that cannot reach above 4 GiB, as v86), below 4 GiB', async () => {
  const m = new Machine();
  const shm = new SharedMemory(3, 0x2000);
  const { bdf: fn } = m.plugVirtio(new LoopbackDevice({ sharedMemoryRegions: [shm] }), { sharedMemoryBar64: false, modernBar64: false });
  assert.equal(await m.bus.configRead(fn, PCI_BASE_ADDRESS_0 + 4 * SHARED_MEMORY_BAR, 4), 0x08, 'BAR2: 32-bit, prefetchable memory');
  const result = modern(await probe(m.bus, fn));
  const region = result.sharedMemory.get(3)!;
  assert.ok(region.address + region.length <= 2 ** 32);
  shm.bytes[0x1fff] = 0x5a;
  assert.equal(await new SharedMemoryWindow(m.bus, region).read(0x1fff, 1), 0x5a);
  assert.throws(
    () =>
      new Machine().plugVirtio(new LoopbackDevice({ sharedMemoryRegions: [new SparseRegion(0, 4 * GiB)] }), { sharedMemoryBar64: false }),
    /more than a 32-bit BAR holds/,
  );
});

test('what the transport cannot carry is a UsageError: repeated id, id beyond a u8, empty region, a legacy-only function', () => {
  const plug = (regions: SharedMemoryRegion[], mode?: 'legacy'): unknown =>
    new Machine().plugVirtio(new LoopbackDevice({ deviceType: 4, sharedMemoryRegions: regions }), mode ? { mode } : {});
  assert.throws(() => plug([new SharedMemory(1, 16), new SharedMemory(1, 16)]), /id 1 is declared twice/);
  assert.throws(() => plug([new SharedMemory(256, 16)]), /does not fit cap.id/);
  assert.throws(() => plug([new SparseRegion(2, 0)]), /not a positive byte count/);
  assert.throws(() => plug([new SharedMemory(1, 16)], 'legacy'), /need the modern interface/);
  assert.throws(() => new SharedMemory(1, 0), UsageError);
  // 192 bytes of capabilities: the modern five take 88, each region 24; a fifth region has no room.
  assert.throws(() => plug([0, 1, 2, 3, 4].map((id) => new SharedMemory(id, 16))), /no room for a \d+-byte capability/);
});

test('property: any set of regions lies inside BAR2, aligned and apart, and the probe reads back what was laid out', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.uniqueArray(fc.record({ id: fc.integer({ min: 0, max: 255 }), size: fc.integer({ min: 1, max: 0x30000 }) }), {
        minLength: 1,
        // Four cap64s are what configuration space holds beside the modern capabilities (see below).
        maxLength: 4,
        selector: (r) => r.id,
      }),
      async (specs) => {
        const regions = specs.map((s) => new SparseRegion(s.id, s.size));
        const { placed, barSize } = sharedMemoryLayout(regions);
        placed.forEach((p, i) => {
          assert.ok(p.offset % 0x1000 === 0 && p.offset + p.region.size <= barSize);
          if (i > 0) assert.ok(p.offset >= placed[i - 1]!.offset + placed[i - 1]!.region.size);
        });
        const m = new Machine();
        const { bdf: fn } = m.plugVirtio(new LoopbackDevice({ sharedMemoryRegions: regions }));
        const result = modern(await probe(m.bus, fn));
        const byId = (a: number[], b: number[]): number => a[0]! - b[0]!;
        assert.deepEqual(
          [...result.sharedMemory.values()].map((r) => [r.id, r.offset, r.length]).sort(byId),
          placed.map((p) => [p.region.id, p.offset, p.region.size]).sort(byId),
        );
        // The last byte of each region, written through the driver's window, lands in that region.
        for (const r of regions) await new SharedMemoryWindow(m.bus, result.sharedMemory.get(r.id)!).write(r.size - 1, 1, r.id ^ 0xa5);
        for (const r of regions) assert.equal(r.bytes.get(r.size - 1), r.id ^ 0xa5);
      },
    ),
    { numRuns: 40 },
  );
});

// ---- the probe against hostile capabilities (a FakePciBus function built byte by byte) ----

const FN = bdf(0, 3, 0);
const MODERN_RNG = { deviceId: 0x1044, revision: 1 };
const TRANSITIONAL_RNG = { deviceId: 0x1005, revision: 0, subsystemId: 4 };

/** QEMU's modern layout plus a 64 KiB 64-bit BAR2 and the given shared memory capabilities. */
function withShm(caps: SharedMemoryCapSpec[], header = MODERN_RNG, legacyBar0 = false): ConfigSpaceBuilder {
  const b = qemuLikeVirtio(header, { legacyBar0 }).bar(2, { kind: 'memory', size: 0x10000, is64: true, prefetchable: true });
  for (const c of caps) b.sharedMemoryCap(c);
  return b;
}

async function probeFake(b: ConfigSpaceBuilder): Promise<ProbeResult> {
  const bus = new FakePciBus();
  bus.add(FN, b.build());
  return probe(bus, FN);
}

async function refused(b: ConfigSpaceBuilder, message: RegExp): Promise<void> {
  await assert.rejects(probeFake(b), (e: unknown) => {
    assert.ok(e instanceof ProbeError && e.code === 'ERR_PROBE_BAD_CAPABILITY', String(e));
    assert.match(e.message, message);
    return true;
  });
}

test('probe: a valid region is exposed at BAR2 base + 64-bit offset', async () => {
  const result = modern(await probeFake(withShm([{ bar: 2, id: 5, offset: 0x8000, length: 0x8000 }])));
  const bar2 = result.bars.find((b) => b.index === 2)!;
  assert.equal(result.sharedMemory.get(5)!.address, bar2.base + 0x8000);
  assert.equal(result.sharedMemory.get(5)!.length, 0x8000);
});

test('probe: regions outside their BAR are refused, with offset_hi / length_hi counted and no 64-bit wrap-around', async () => {
  await refused(withShm([{ bar: 2, id: 1, offset: 0x8000, length: 0x8001 }]), /\[0x8000, \+0x8001\) does not fit in BAR2 \(size 0x10000\)/);
  // Low halves fit; offset_hi puts the region 4 GiB further: a driver reading 32 bits would accept it.
  await refused(withShm([{ bar: 2, id: 1, offset: 2 ** 32, length: 0x100 }]), /\[0x100000000, \+0x100\)/);
  await refused(withShm([{ bar: 2, id: 1, offset: 0, length: 2 ** 32 + 0x100 }]), /\+0x100000100\) does not fit/);
  // offset + length wraps to 0x1000 in 64-bit arithmetic.
  await refused(withShm([{ bar: 2, id: 1, offset: 2 ** 64 - 0x1000, length: 0x2000 }]), /\[0xfffffffffffff000, \+0x2000\)/);
});

test('probe: a short cap_len, one past configuration space, an I/O BAR and a repeated id are refused', async () => {
  await refused(
    withShm([{ bar: 2, id: 1, offset: 0, length: 0x100, capLen: 16 }]),
    /cap_len 16 is shorter than struct virtio_pci_cap64 \(24\)/,
  );
  const io = qemuLikeVirtio(MODERN_RNG).bar(0, { kind: 'io', size: 0x100 }).sharedMemoryCap({ bar: 0, id: 1, offset: 0, length: 0x10 });
  await refused(io, /BAR0 is an I\/O BAR/);
  await refused(
    withShm([
      { bar: 2, id: 9, offset: 0, length: 0x100 },
      { bar: 2, id: 9, offset: 0x1000, length: 0x100 },
    ]),
    /cap at 0x\w+ repeats id 9 of the cap at 0x\w+/,
  );
  // A valid cap64 whose cap_len says it runs on for 0xf0 bytes, past the 256 of configuration space.
  const full = withShm([]).cap(PCI_CAP_ID_VNDR, 24, (off, dv) => {
    dv.setUint8(off + 2, 0xf0);
    dv.setUint8(off + 3, VIRTIO_PCI_CAP_SHARED_MEMORY_CFG);
    dv.setUint8(off + 4, 2);
    dv.setUint32(off + 12, 0x10, true);
  });
  await refused(full, /runs past the end of configuration space/);
});

test('probe: a region naming a reserved or absent BAR is ignored with a note, and the device stays modern', async () => {
  const result = modern(
    await probeFake(
      withShm([
        { bar: 6, id: 1, offset: 0, length: 0x10 },
        { bar: 3, id: 2, offset: 0, length: 0x10 },
        { bar: 2, id: 3, offset: 0, length: 0x10 },
      ]),
    ),
  );
  assert.deepEqual([...result.sharedMemory.keys()], [3]);
  assert.equal(result.notes.filter((n) => /shared-memory-cfg cap .* ignored: BAR index 6 is reserved/.test(n)).length, 1);
  assert.equal(result.notes.filter((n) => /shared-memory-cfg cap .* ignored: BAR3 is not implemented/.test(n)).length, 1);
});

test('probe: shared memory never decides the interface: no common cfg still means legacy, even with a broken region', async () => {
  const b = new ConfigSpaceBuilder(TRANSITIONAL_RNG)
    .bar(0, { kind: 'io', size: 0x80 })
    .bar(2, { kind: 'memory', size: 0x1000, is64: true })
    .sharedMemoryCap({ bar: 2, id: 1, offset: 0, length: 0x10_0000 });
  const result = await probeFake(b);
  assert.equal(result.kind, 'legacy');
  assert.ok(!('sharedMemory' in result));
});

test('property: the probe accepts a region exactly when its 64-bit offset + length fits the BAR (no rounding, no wrap)', async () => {
  const u64 = fc.bigInt({ min: 0n, max: 2n ** 64n - 1n });
  const near = fc.oneof(u64, fc.bigInt({ min: 0n, max: 0x20000n }), fc.constantFrom(0x10000n, 2n ** 32n, 2n ** 64n - 1n));
  await fc.assert(
    fc.asyncProperty(near, near, async (offset, length) => {
      // 64 KiB BAR2 (withShm); the builder takes numbers, so pass the halves exactly.
      const b = qemuLikeVirtio(MODERN_RNG).bar(2, { kind: 'memory', size: 0x10000, is64: true, prefetchable: true });
      b.cap(PCI_CAP_ID_VNDR, 24, (off, dv) => {
        dv.setUint8(off + 2, 24);
        dv.setUint8(off + 3, VIRTIO_PCI_CAP_SHARED_MEMORY_CFG);
        dv.setUint8(off + 4, 2);
        dv.setUint32(off + 8, Number(offset & 0xffffffffn), true);
        dv.setUint32(off + 12, Number(length & 0xffffffffn), true);
        dv.setUint32(off + 16, Number(offset >> 32n), true);
        dv.setUint32(off + 20, Number(length >> 32n), true);
      });
      const fits = offset + length <= 0x10000n;
      let region: SharedMemoryCap | undefined;
      let error: unknown;
      try {
        region = modern(await probeFake(b)).sharedMemory.get(0);
      } catch (e) {
        error = e;
      }
      if (fits) assert.deepEqual([region?.offset, region?.length], [Number(offset), Number(length)], String(error));
      else assert.ok(error instanceof ProbeError && error.code === 'ERR_PROBE_BAD_CAPABILITY', `accepted [${offset}, +${length})`);
    }),
    { numRuns: 300 },
  );
});
