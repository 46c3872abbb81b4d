/**
 * The RAM a v86 guest's SeaBIOS map states, and V86GuestMemory keeping devices inside it. The sizes
 * are the ones the Linux guest tests boot with; the guest's own e820 lines for them were
 * [0, 0x9fbff] and [0x100000, size - 16 MiB - 1] usable (checked live by
 * test/peer/linux/dma-bounds.test.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GuestMemoryError } from '../../../src/errors.js';
import type { V86Cpu } from '../../../src/platform/v86/internals.js';
import { V86GuestMemory } from '../../../src/platform/v86/guest-memory.js';
import { seabiosMemoryMap, seabiosRamSize } from '../../../src/platform/v86/memory-map.js';

const MiB = 1 << 20;

test('SeaBIOS map of v86 memory: low RAM below the EBDA, then 1 MiB up to 16 MiB below the top (to the top for the firmware)', () => {
  for (const size of [64 * MiB, 128 * MiB, 512 * MiB]) {
    assert.deepEqual(seabiosMemoryMap(size), {
      ram: [
        { base: 0, size: 0x9_fc00 },
        { base: 0x10_0000, size: size - 16 * MiB - 0x10_0000 },
      ],
      firmwareRam: [
        { base: 0, size: 0xa_0000 },
        { base: 0xc_0000, size: size - 0xc_0000 },
      ],
    });
  }
});

test('SeaBIOS RAM size from the CMOS registers: 64 KiB granules above 16 MiB, KiB above 1 MiB', () => {
  assert.equal(seabiosRamSize(128 * MiB + 0x2_0000), 128 * MiB + 0x2_0000);
  assert.equal(seabiosRamSize(8 * MiB), 8 * MiB, 'below 16 MiB: the KiB registers');
  assert.equal(seabiosRamSize(128 * MiB + 0x1_0400), 128 * MiB + 0x1_0000, 'rounded down to 64 KiB');
  assert.equal(seabiosRamSize(8 * MiB + 0x600), 8 * MiB + 0x400, 'rounded down to 1 KiB');
  assert.deepEqual(
    seabiosMemoryMap(8 * MiB).ram,
    [
      { base: 0, size: 0x9_fc00 },
      { base: 0x10_0000, size: 7 * MiB },
    ],
    'too small for the table zone: none reserved',
  );
});

/** CR0 with protection on, and with paging too. */
const CR0_PE = 0x1;
const CR0_PE_PG = 0x8000_0001;

/** The parts of v86's CPU V86GuestMemory reads: RAM at an offset in a wasm memory, and CR0. */
function fakeCpu(memorySize: number, cr0: number): V86Cpu & { cr: number[] } {
  const wasm = new WebAssembly.Memory({ initial: memorySize / 0x1_0000 + 1 });
  return {
    wasm_memory: wasm,
    mem8: { byteOffset: 0x1_0000 },
    memory_size: [memorySize],
    cr: [cr0],
    jit_dirty_cache: () => undefined,
  } as unknown as V86Cpu & { cr: number[] };
}

test('V86GuestMemory with the SeaBIOS map, paging on (an OS drives): past RAM end and the firmware area are refused', () => {
  const size = 32 * MiB;
  const cpu = fakeCpu(size, CR0_PE_PG);
  const mem = new V86GuestMemory(cpu, seabiosMemoryMap(size));
  const ramEnd = size - 16 * MiB;
  assert.equal(mem.end, ramEnd);
  mem.write(ramEnd - 16, new Uint8Array(16).fill(0xaa));
  assert.throws(() => mem.view(ramEnd - 0x1000, 0x2000), GuestMemoryError, 'runs past RAM end');
  assert.throws(() => mem.write(ramEnd, new Uint8Array(64)), GuestMemoryError, 'exactly at RAM end');
  assert.throws(() => mem.write32(size - 4, 1), GuestMemoryError, 'the top of the firmware zone');
  assert.throws(() => mem.write(0xc_0000, new Uint8Array(64)), GuestMemoryError, 'ROM hole');
  assert.equal(mem.contains(0x9_fc00, 1), false, 'the EBDA');
  assert.equal(mem.contains(ramEnd, 64), false);
  const array = new Uint8Array(cpu.wasm_memory.buffer, cpu.mem8.byteOffset, size);
  assert.ok(
    array.subarray(ramEnd).every((b) => b === 0),
    'v86 memory past RAM untouched',
  );
  assert.ok(
    array.subarray(0x9_fc00, 0x10_0000).every((b) => b === 0),
    'the firmware area untouched',
  );
  assert.equal(new V86GuestMemory(cpu).contains(ramEnd, 64), true, 'without a map: all of v86 memory (the driver-side bus)');
});

test('V86GuestMemory, paging off (the firmware drives, e.g. SeaBIOS booting from virtio-blk): its zones are reachable, the VGA window is not', () => {
  const size = 32 * MiB;
  const cpu = fakeCpu(size, CR0_PE);
  const mem = new V86GuestMemory(cpu, seabiosMemoryMap(size));
  const ringAt = size - 3 * 0x1000; // 3 pages below the top: where SeaBIOS put its virtio-blk rings in a 128 MiB guest
  assert.equal(mem.contains(ringAt, 0x1000), true);
  mem.write32(ringAt, 0x1234_5678);
  assert.equal(mem.read32(ringAt), 0x1234_5678);
  mem.write(0xe_f2f8, new Uint8Array(16)); // where SeaBIOS put a virtio-blk request header
  assert.throws(() => mem.write(0xb_0000, new Uint8Array(64)), GuestMemoryError, 'the VGA window');
  assert.throws(() => mem.read8(size), GuestMemoryError, 'past v86 memory');
  cpu.cr[0] = CR0_PE_PG;
  assert.equal(mem.contains(ringAt, 0x1000), false, "once the OS runs with paging, the zone is the firmware's again");
  assert.throws(() => mem.read32(ringAt), GuestMemoryError);
});

test('V86GuestMemory tells the JIT exactly the pages devices wrote, adjacent ones as one run, never a span around scattered ones', () => {
  const size = 64 * MiB;
  const dirtied: [number, number][] = [];
  const cpu = { ...fakeCpu(size, CR0_PE_PG), jit_dirty_cache: (start: number, end: number) => void dirtied.push([start, end]) };
  const mem = new V86GuestMemory(cpu, seabiosMemoryMap(size));
  // 20 scattered pages, 2 MiB to 21 MiB, written high to low (a direct read's buffers lie anywhere).
  for (let i = 19; i >= 0; i--) mem.write(2 * MiB + i * MiB + 100, new Uint8Array(8));
  mem.write32(0x20_1ffc, 1); // the page after 2 MiB's, then the next two through one write across them
  mem.write(0x20_2ff0, new Uint8Array(0x20));
  mem.view(0x1_5000, 1); // a view counts as written
  mem.region(0x1_7ff0, 0x20); // and so does a region's range, both its pages
  assert.deepEqual(dirtied, [], 'nothing before the flush');
  mem.flushDirty();
  assert.deepEqual(dirtied, [
    [0x1_5000, 0x1_6000],
    [0x1_7000, 0x1_9000],
    [0x20_0000, 0x20_4000],
    ...Array.from({ length: 19 }, (_, i): [number, number] => [(3 + i) * MiB, (3 + i) * MiB + 0x1000]),
  ]);
  dirtied.length = 0;
  mem.flushDirty();
  assert.deepEqual(dirtied, [], 'a flush forgets the pages');
});
