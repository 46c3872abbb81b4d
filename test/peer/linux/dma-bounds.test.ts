/**
 * Device DMA stays inside the RAM of the guest's own memory map. A program in the guest (/init's
 * vqpost: devmem on the function's BAR and on 1 MiB the kernel command line keeps out of Linux's
 * use) drives each of our virtio devices by hand, with no kernel driver bound, and hands it a chain
 * whose buffer touches a firmware hole or runs past the end of RAM. SeaBIOS ends a v86 guest's RAM
 * 16 MiB below the top of v86's memory array, so those bytes exist in the emulator but are not the
 * guest's: the device must refuse the chain (DEVICE_NEEDS_RESET) before a byte moves, the emulator
 * must keep running, and v86's memory past RAM must be unchanged. The same program's well-formed
 * chain, served first, shows that it drives the device correctly.
 */

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { BlkDevice } from '../../../src/device/blk/blk-device.js';
import { MemoryBlockBackend } from '../../../src/device/blk/memory-backend.js';
import { QueueFaultError } from '../../../src/errors.js';
import type { AddressRange } from '../../../src/memory/guest-memory.js';
import { VIRTIO_BLK_REQ_HDR_SIZE, VIRTIO_BLK_S_OK, VIRTIO_BLK_SECTOR_SIZE, VIRTIO_BLK_T_IN } from '../../../src/spec/blk.js';
import { consoleTxQueueIndex } from '../../../src/spec/console.js';
import { VIRTIO_NET_HDR_SIZE, netTxQueueIndex } from '../../../src/spec/net.js';
import { VIRTQ_DESC_F_WRITE } from '../../../src/spec/ring.js';
import { VIRTIO_CONFIG_S_DEVICE_NEEDS_RESET, VIRTIO_CONFIG_S_DRIVER_OK } from '../../../src/spec/status.js';
import { SLOT, bootTestMachine, pciName, resultOf, type TestMachine } from '../../helpers/linux-machine.js';

/** The guest program's rings (desc, avail +0x100, used +0x200) and scratch buffers, in RAM Linux leaves alone. */
const RING = 0x600_0000;
const RESERVED = 1 << 20;
const BLK_HEADER = RING + 0x300;
const BLK_STATUS = RING + 0x310;
const NET_HEADER = RING + 0x300;
const GOOD_BUFFER = RING + 0x1000;
/** The low RAM SeaBIOS states ends below its EBDA. */
const LOW_RAM_END = 0x9_fc00;
/** Guest RAM: v86's memory array. */
const MEMORY_SIZE = 128 << 20;
/** The disk's bytes, so that a read past RAM would leave a trace. */
const DISK_FILL = 0x5a;

type Desc = readonly [addr: number, len: number, flags: number];

let m: TestMachine;
let disk: MemoryBlockBackend;
let ramEnd: number;

before(async () => {
  disk = new MemoryBlockBackend(1 << 20);
  disk.bytes.fill(DISK_FILL);
  // memmap=SIZE$ADDR marks the range reserved for Linux; the firmware map (and so the devices) still call it RAM.
  m = await bootTestMachine(
    { blk: new BlkDevice({ backend: disk }) },
    { memoryMiB: MEMORY_SIZE >> 20, cmdline: `memmap=${RESERVED}$0x${RING.toString(16)}` },
  );
  ramEnd = Math.max(...m.guest.adapter.memoryMap.ram.map((r) => r.base + r.size));
});

after(async () => {
  await m?.guest.destroy();
});

const hex = (n: number) => `0x${n.toString(16)}`;

/** Zero `len` bytes (a multiple of 4) at `addr` from the guest, with its poke command. */
async function zero(addr: number, len: number): Promise<void> {
  for (let off = 0; off < len; off += 4) assert.equal((await m.guest.command(`poke ${hex(addr + off)} 32 0`)).rc, 0);
}

/** Run vqpost in the guest; its result fields as numbers. */
async function vqpost(slot: number, queue: number, descs: readonly Desc[]): Promise<{ status: number; usedIdx: number; usedLen: number }> {
  const out = await m.guest.command(
    `vqpost ${pciName(slot)} ${hex(RING)} ${queue} ${descs.map(([a, l, f]) => `${hex(a)}:${l}:${f}`).join(' ')}`,
  );
  assert.equal(out.rc, 0, out.results.map((r) => r.text).join('\n'));
  const r = resultOf(out.results, 'vqpost').fields;
  return { status: Number(r['status']), usedIdx: Number(r['used_idx']), usedLen: Number(r['used_len']) };
}

/** v86's memory from RAM's end to the top of its array: bytes that are not the guest's. */
function pastRam(): Uint8Array {
  return m.guest.emulator.read_memory(ramEnd, MEMORY_SIZE - ramEnd).slice();
}

/** Post `bad` after the control `good`; the device must refuse it, change nothing past RAM and keep the guest alive. */
async function refuses(
  name: keyof TestMachine['fns'],
  queue: number,
  good: readonly Desc[],
  bad: readonly Desc[],
  goodLen: number,
): Promise<void> {
  const served = await vqpost(SLOT[name], queue, good);
  assert.equal(
    served.status & (VIRTIO_CONFIG_S_DRIVER_OK | VIRTIO_CONFIG_S_DEVICE_NEEDS_RESET),
    VIRTIO_CONFIG_S_DRIVER_OK,
    `control: status ${hex(served.status)}`,
  );
  assert.deepEqual([served.usedIdx, served.usedLen], [1, goodLen], 'control: the well-formed chain is used');
  const before = pastRam();
  const refused = await vqpost(SLOT[name], queue, bad);
  const after = pastRam();
  const changed = after.findIndex((b, i) => b !== before[i]);
  assert.equal(changed, -1, `v86 memory past RAM changed at ${hex(ramEnd + changed)}`);
  assert.ok((refused.status & VIRTIO_CONFIG_S_DEVICE_NEEDS_RESET) !== 0, `status ${hex(refused.status)} has DEVICE_NEEDS_RESET`);
  assert.equal(refused.usedIdx, 0, 'nothing used');
  const fault = m.fns[name].core.fault;
  assert.ok(fault instanceof QueueFaultError && fault.code === 'ERR_QUEUE_BUFFER_ADDRESS', `fault: ${String(fault)}`);
  const alive = await m.guest.command('memmap');
  assert.equal(alive.rc, 0, 'the guest still runs commands');
}

test("the devices' RAM map is the one the guest's firmware states", async () => {
  const out = await m.guest.command('memmap');
  const ram: AddressRange[] = out.results
    .filter((r) => r.kind === 'memmap' && r.fields['type'] === 'System_RAM')
    .map((r) => ({ base: Number(r.fields['start']), size: Number(r.fields['end']) + 1 - Number(r.fields['start']) }))
    .sort((a, b) => a.base - b.base);
  assert.deepEqual(ram, m.guest.adapter.memoryMap.ram);
  assert.equal(MEMORY_SIZE - ramEnd, 16 << 20, 'SeaBIOS keeps the top 16 MiB of v86 memory');
  assert.ok(RING >= 1 << 20 && RING + RESERVED <= ramEnd, 'the reserved ring area is firmware RAM');
});

test('rng: a buffer exactly at RAM end is refused', async () => {
  await refuses('rng', 0, [[GOOD_BUFFER, 64, VIRTQ_DESC_F_WRITE]], [[ramEnd, 64, VIRTQ_DESC_F_WRITE]], 64);
});

test('blk: a read whose buffer starts in RAM and runs past its end is refused', async () => {
  // An all-zero header: type VIRTIO_BLK_T_IN, sector 0.
  assert.equal(VIRTIO_BLK_T_IN, 0);
  await zero(BLK_HEADER, VIRTIO_BLK_REQ_HDR_SIZE);
  const sectors = 16;
  const good: Desc[] = [
    [BLK_HEADER, VIRTIO_BLK_REQ_HDR_SIZE, 0],
    [GOOD_BUFFER, VIRTIO_BLK_SECTOR_SIZE, VIRTQ_DESC_F_WRITE],
    [BLK_STATUS, 1, VIRTQ_DESC_F_WRITE],
  ];
  await refuses(
    'blk',
    0,
    good,
    [good[0]!, [ramEnd - (sectors / 2) * VIRTIO_BLK_SECTOR_SIZE, sectors * VIRTIO_BLK_SECTOR_SIZE, VIRTQ_DESC_F_WRITE], good[2]!],
    VIRTIO_BLK_SECTOR_SIZE + 1,
  );
  assert.equal(m.guest.emulator.read_memory(BLK_STATUS, 1)[0], VIRTIO_BLK_S_OK, 'the control read succeeded');
  assert.ok(
    m.guest.emulator.read_memory(GOOD_BUFFER, VIRTIO_BLK_SECTOR_SIZE).every((b) => b === DISK_FILL),
    'with the disk bytes',
  );
});

test('console: a transmit buffer from low RAM into the firmware area is refused', async () => {
  await refuses('console', consoleTxQueueIndex(0), [[GOOD_BUFFER, 16, 0]], [[LOW_RAM_END - 0x40, 0x80, 0]], 0);
});

test('net: a transmit buffer running past RAM end is refused', async () => {
  await zero(NET_HEADER, VIRTIO_NET_HDR_SIZE);
  const header: Desc = [NET_HEADER, VIRTIO_NET_HDR_SIZE, 0];
  await refuses('net', netTxQueueIndex(0), [header, [GOOD_BUFFER, 60, 0]], [header, [ramEnd - 0x20, 0x40, 0]], 0);
});
