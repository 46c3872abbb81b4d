import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MockQueue } from '../../../src/testing/mock-queue.js';
import type { MockRing } from '../../../src/testing/mock-ring.js';
import { MockPackedQueue } from '../../../src/testing/mock-packed-queue.js';
import { eachRing, mockRing, type RingName } from '../../helpers/ring-formats.js';
import { GuardedMemory } from '../../../src/testing/guarded-memory.js';
import { DeferredBackend } from '../../helpers/deferred-backend.js';
import { blkHeader } from '../../helpers/blk-request.js';
import { usedRingSize } from '../../../src/spec/ring.js';
import { packedDescRingSize, PVIRTQ_EVENT_SUPPRESS_SIZE } from '../../../src/spec/packed-ring.js';
import { BlkDevice, type BlkDeviceOptions } from '../../../src/device/blk/blk-device.js';
import { MemoryBlockBackend } from '../../../src/device/blk/memory-backend.js';
import { FileBlockBackend } from '../../../src/device/blk/file-backend.js';
import type { BlockBackend } from '../../../src/device/blk/backend.js';
import type { VirtioDeviceHost } from '../../../src/core/virtio-device.js';
import { bit, hasFeature, VIRTIO_F_RING_PACKED } from '../../../src/spec/features.js';

// Numbers straight from spec 5.2 (not our constants), so a wrong constant fails here.
const T_IN = 0;
const T_OUT = 1;
const T_FLUSH = 4;
const T_GET_ID = 8;
const T_GET_LIFETIME = 10;
const T_DISCARD = 11;
const T_WRITE_ZEROES = 13;
const S_OK = 0;
const S_IOERR = 1;
const S_UNSUPP = 2;
const F = { SIZE_MAX: 1, SEG_MAX: 2, RO: 5, BLK_SIZE: 6, FLUSH: 9, TOPOLOGY: 10, CONFIG_WCE: 11, MQ: 12, DISCARD: 13, WRITE_ZEROES: 14 };

const header = blkHeader;

/** struct virtio_blk_discard_write_zeroes: le64 sector, le32 num_sectors, le32 flags. */
function segment(sector: number, count: number, flags = 0): Uint8Array {
  const b = new Uint8Array(16);
  const dv = new DataView(b.buffer);
  dv.setBigUint64(0, BigInt(sector), true);
  dv.setUint32(8, count, true);
  dv.setUint32(12, flags, true);
  return b;
}

function pattern(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (i * 131 + seed * 7 + (i >> 9)) & 0xff;
  return out;
}

class TestHost implements VirtioDeviceHost {
  readonly interrupts: number[] = [];
  readonly resets: Error[] = [];
  constructor(readonly memory: MockQueue['memory']) {}
  configChanged(): void {}
  usedBuffers(index: number): void {
    this.interrupts.push(index);
  }
  needsReset(cause: Error): void {
    this.resets.push(cause);
  }
}

interface Rig {
  dev: BlkDevice;
  host: TestHost;
  queues: MockRing[];
  mq: MockRing;
}

/** A blk device on rings of format `ring` (default split), activated with `features` (default all it offers). */
function rig(
  options: Partial<BlkDeviceOptions> & { backend: BlockBackend; ring?: RingName },
  features?: bigint,
  numQueues = options.numQueues ?? 1,
): Rig {
  const { ring = 'split', ...deviceOptions } = options;
  const dev = new BlkDevice({ queueSize: 16, ...deviceOptions });
  const shared = mockRing(ring, { size: 16, memSize: 4 << 20 });
  const queues = [shared];
  for (let i = 1; i < numQueues; i++) queues.push(mockRing(ring, { size: 16, memory: shared.memory, base: i << 20, seed: i + 1 }));
  const host = new TestHost(shared.memory);
  dev.attach(host);
  const f = features ?? dev.deviceFeatures;
  assert.equal(dev.acceptFeatures(f), true);
  const negotiated = ring === 'packed' ? f | bit(VIRTIO_F_RING_PACKED) : f;
  dev.activate({ features: negotiated, queues: queues.map((q, i) => q.deviceQueue({ index: i })) });
  return { dev, host, queues, mq: shared };
}

interface Done {
  head: number;
  len: number;
  status: number;
  /** Writable bytes before the status byte, as the device left them. */
  data: Uint8Array;
}

/** Make the chain available, notify, and collect its used element, status byte and data. */
function run(r: Rig, spec: { readable?: Uint8Array[]; writable?: number[] }, queue = 0): Done {
  const q = r.queues[queue]!;
  const head = q.addChain(spec);
  r.dev.queueNotify(queue);
  return collect(q, head);
}

function collect(q: MockRing, head: number): Done {
  const total = (q.buffers(head).writable ?? []).reduce((n, s) => n + s.len, 0);
  const written = q.readWritten(head, total);
  const used = q.readUsed();
  assert.equal(used.length, 1, 'one used element');
  assert.equal(used[0]!.id, head);
  return { head, len: used[0]!.len, status: written[total - 1]!, data: written.subarray(0, total - 1) };
}

const SECTORS = 64;

test('config space: every field at its spec offset, features offered', () => {
  const backend = new MemoryBlockBackend(SECTORS * 512 + 100); // a partial last sector is not exposed
  const dev = new BlkDevice({
    backend,
    queueSize: 128,
    blkSize: 4096,
    sizeMax: 65536,
    numQueues: 3,
    topology: { physicalBlockExp: 3, alignmentOffset: 1, minIoSize: 8, optIoSize: 256 },
  });
  assert.equal(dev.deviceType, 2);
  assert.equal(dev.configSize, 96);
  assert.deepEqual(dev.queueMaxSizes, [128, 128, 128]);
  assert.equal(dev.readConfig(0, 4), SECTORS, 'capacity (le64) low half');
  assert.equal(dev.readConfig(4, 4), 0, 'capacity high half');
  assert.equal(dev.readConfig(8, 4), 65536, 'size_max');
  assert.equal(dev.readConfig(12, 4), 126, 'seg_max = queue size - header - status');
  assert.equal(dev.readConfig(20, 4), 4096, 'blk_size');
  assert.equal(dev.readConfig(24, 1), 3, 'physical_block_exp');
  assert.equal(dev.readConfig(25, 1), 1, 'alignment_offset');
  assert.equal(dev.readConfig(26, 2), 8, 'min_io_size');
  assert.equal(dev.readConfig(28, 4), 256, 'opt_io_size');
  assert.equal(dev.readConfig(33, 1), 0, 'unused0');
  assert.equal(dev.readConfig(34, 2), 3, 'num_queues');
  assert.equal(dev.readConfig(36, 4), 8192, 'max_discard_sectors');
  assert.equal(dev.readConfig(40, 4), 16, 'max_discard_seg');
  assert.equal(dev.readConfig(44, 4), 8, 'discard_sector_alignment in 512-byte units');
  assert.equal(dev.readConfig(48, 4), 8192, 'max_write_zeroes_sectors');
  assert.equal(dev.readConfig(52, 4), 16, 'max_write_zeroes_seg');
  assert.equal(dev.readConfig(56, 1), 0, 'write_zeroes_may_unmap: never deallocates');
  assert.equal(dev.readConfig(57, 2), 0, 'unused1');
  for (const b of [F.SIZE_MAX, F.SEG_MAX, F.BLK_SIZE, F.FLUSH, F.TOPOLOGY, F.CONFIG_WCE, F.MQ, F.DISCARD, F.WRITE_ZEROES]) {
    assert.ok(hasFeature(dev.deviceFeatures, b), `feature bit ${b} offered`);
  }
  assert.ok(!hasFeature(dev.deviceFeatures, F.RO));

  const one = new BlkDevice({ backend: new MemoryBlockBackend(512) });
  assert.ok(!hasFeature(one.deviceFeatures, F.MQ) && !hasFeature(one.deviceFeatures, F.TOPOLOGY));
  assert.equal(one.readConfig(34, 2), 1);
});

test('capacity above 4 GiB of sectors keeps the high half', () => {
  const backend: BlockBackend = { size: 2 ** 44, readOnly: true, read() {}, write() {}, flush() {} };
  const dev = new BlkDevice({ backend });
  assert.equal(dev.readConfig(0, 4), 0);
  assert.equal(dev.readConfig(4, 4), 2 ** (44 - 9 - 32));
});

eachRing('IN reads sectors into scattered buffers; used len counts every writable byte', (ring) => {
  const disk = pattern(SECTORS * 512, 1);
  const r = rig({ ring, backend: new MemoryBlockBackend(disk) });
  const d = run(r, { readable: [header(T_IN, 3)], writable: [1024, 1] });
  assert.equal(d.status, S_OK);
  assert.equal(d.len, 1025);
  assert.deepEqual(d.data, disk.subarray(3 * 512, 5 * 512));
  assert.equal(r.host.interrupts.length, 1);
});

eachRing('framing is free: header split across buffers, status sharing a buffer with data', (ring) => {
  const disk = pattern(SECTORS * 512, 2);
  const r = rig({ ring, backend: new MemoryBlockBackend(disk) });
  const h = header(T_IN, 10);
  const d = run(r, { readable: [h.subarray(0, 3), new Uint8Array(0), h.subarray(3, 12), h.subarray(12)], writable: [700, 0, 300, 25] });
  assert.equal(d.status, S_OK);
  assert.deepEqual(d.data, disk.subarray(10 * 512, 12 * 512));

  const data = pattern(1536, 9);
  const w = header(T_OUT, 20);
  const o = run(r, {
    readable: [w.subarray(0, 10), Buffer.concat([w.subarray(10), data.subarray(0, 100)]), data.subarray(100, 1000), data.subarray(1000)],
    writable: [1],
  });
  assert.equal(o.status, S_OK);
  assert.equal(o.len, 1);
  assert.deepEqual(disk.subarray(20 * 512, 23 * 512), data);
});

eachRing('OUT writes exactly its sectors and nothing around them', (ring) => {
  const disk = pattern(SECTORS * 512, 3);
  const before = disk.slice();
  const r = rig({ ring, backend: new MemoryBlockBackend(disk) });
  const data = pattern(2048, 4);
  const d = run(r, { readable: [header(T_OUT, 7), data.subarray(0, 512), data.subarray(512)], writable: [1] });
  assert.equal(d.status, S_OK);
  assert.deepEqual(disk.subarray(7 * 512, 11 * 512), data);
  assert.deepEqual(disk.subarray(0, 7 * 512), before.subarray(0, 7 * 512));
  assert.deepEqual(disk.subarray(11 * 512), before.subarray(11 * 512));
});

eachRing('the last sector reads and writes; one past it is IOERR with the disk untouched', (ring) => {
  const disk = pattern(SECTORS * 512, 5);
  const r = rig({ ring, backend: new MemoryBlockBackend(disk) });
  const last = run(r, { readable: [header(T_IN, SECTORS - 1)], writable: [512, 1] });
  assert.equal(last.status, S_OK);
  assert.deepEqual(last.data, disk.subarray((SECTORS - 1) * 512));
  assert.equal(run(r, { readable: [header(T_OUT, SECTORS - 1), pattern(512, 6)], writable: [1] }).status, S_OK);
  const snapshot = disk.slice();
  const cases: { readable: Uint8Array[]; writable: number[] }[] = [
    { readable: [header(T_IN, SECTORS)], writable: [512, 1] },
    { readable: [header(T_IN, SECTORS - 1)], writable: [1024, 1] },
    { readable: [header(T_OUT, SECTORS - 1), pattern(1024, 7)], writable: [1] },
    { readable: [header(T_OUT, SECTORS), pattern(512, 7)], writable: [1] },
    // sector + count overflows 64 bits: must not wrap to a low sector.
    { readable: [header(T_OUT, 0xffff_ffff_ffff_ffffn), pattern(1024, 7)], writable: [1] },
    { readable: [header(T_IN, 0xffff_ffff_ffff_fffen)], writable: [1024, 1] },
    { readable: [header(T_IN, 2n ** 53n + 1n)], writable: [512, 1] },
  ];
  for (const c of cases) {
    const d = run(r, c);
    assert.equal(d.status, S_IOERR);
    assert.equal(
      d.len,
      c.writable.reduce((a, b) => a + b, 0),
    );
    assert.ok(
      d.data.every((x) => x === 0),
      'a refused IN leaves zeroes, not stale guest bytes, under its used len',
    );
  }
  assert.deepEqual(disk, snapshot);
  assert.equal(r.host.resets.length, 0);
});

eachRing('malformed requests get IOERR and touch neither the disk nor guest memory outside the request', (ring) => {
  const disk = pattern(SECTORS * 512, 8);
  const snapshot = disk.slice();
  const r = rig({ ring, backend: new MemoryBlockBackend(disk) });
  const cases: [string, { readable: Uint8Array[]; writable: number[] }][] = [
    ['header of 15 bytes', { readable: [header(T_IN, 0).subarray(0, 15)], writable: [512, 1] }],
    ['no readable header at all', { writable: [512, 1] } as { readable: Uint8Array[]; writable: number[] }],
    ['OUT data not a multiple of 512', { readable: [header(T_OUT, 0), pattern(513, 1)], writable: [1] }],
    ['IN data not a multiple of 512', { readable: [header(T_IN, 0)], writable: [100, 1] }],
    ['IN with readable bytes after the header', { readable: [header(T_IN, 0), pattern(512, 1)], writable: [512, 1] }],
    ['OUT with writable bytes before the status', { readable: [header(T_OUT, 0), pattern(512, 1)], writable: [512, 1] }],
    ['FLUSH with data', { readable: [header(T_FLUSH), pattern(512, 1)], writable: [1] }],
  ];
  for (const [name, c] of cases) {
    const d = run(r, c);
    assert.equal(d.status, S_IOERR, name);
  }
  assert.deepEqual(disk, snapshot);
  assert.equal(r.host.resets.length, 0);
});

eachRing('guarded memory: each request writes only its own writable buffers and the used ring', (ring) => {
  const memory = new GuardedMemory(1 << 20, { allowAllReads: true });
  const mq = mockRing(ring, { size: 32, memory });
  const disk = pattern(SECTORS * 512, 19);
  const dev = new BlkDevice({ backend: new MemoryBlockBackend(disk), queueSize: 32 });
  const host = new TestHost(memory);
  dev.attach(host);
  dev.acceptFeatures(dev.deviceFeatures);
  dev.activate({ features: dev.deviceFeatures | (ring === 'packed' ? bit(VIRTIO_F_RING_PACKED) : 0n), queues: [mq.deviceQueue()] });
  const specs: { readable?: Uint8Array[]; writable?: number[] }[] = [
    { readable: [header(T_IN, 1)], writable: [512, 1] },
    { readable: [header(T_IN, SECTORS)], writable: [512, 1] },
    { readable: [header(T_IN, 0).subarray(0, 15)], writable: [512, 1] },
    { readable: [header(T_IN, 0)], writable: [300, 1] },
    { readable: [header(T_OUT, 0xffff_ffff_ffff_fff0n), pattern(8192, 1)], writable: [1] },
    { readable: [header(T_GET_ID)], writable: [5, 1] },
    { readable: [header(T_WRITE_ZEROES), segment(SECTORS, 1)], writable: [1] },
    { readable: [header(99)], writable: [1] },
  ];
  memory.allowWrite(0, 1 << 20, 'the harness playing the driver');
  const heads = specs.map((spec) => mq.addChain(spec));
  memory.clearAllowed();
  // Where the device returns buffers: the split ring's used ring; the packed ring's descriptor ring
  // and its device event suppression area.
  if (mq instanceof MockPackedQueue) {
    memory.allowWrite(mq.descAddr, packedDescRingSize(32), 'descriptor ring');
    memory.allowWrite(mq.deviceAddr, PVIRTQ_EVENT_SUPPRESS_SIZE, 'device event suppression');
  } else if (mq instanceof MockQueue) memory.allowWrite(mq.usedAddr, usedRingSize(32), 'used ring');
  for (const head of heads) for (const w of mq.buffers(head).writable) memory.allowWrite(w.addr, w.len, `chain ${head}`);
  memory.snapshot();
  dev.queueNotify(0);
  assert.equal(mq.readUsed().length, specs.length);
  memory.assertClean();
  assert.deepEqual(disk, pattern(SECTORS * 512, 19));
});

eachRing('a request with no writable status byte sets DEVICE_NEEDS_RESET and is not answered', (ring) => {
  const disk = pattern(SECTORS * 512, 9);
  const snapshot = disk.slice();
  const r = rig({ ring, backend: new MemoryBlockBackend(disk) });
  r.mq.addChain({ readable: [header(T_OUT, 0), pattern(512, 2)] });
  r.dev.queueNotify(0);
  assert.equal(r.host.resets.length, 1);
  assert.equal(r.mq.readUsed().length, 0);
  assert.deepEqual(disk, snapshot);
  // Stopped until reset: later chains are not consumed.
  r.mq.addChain({ readable: [header(T_IN, 0)], writable: [512, 1] });
  r.dev.queueNotify(0);
  assert.equal(r.mq.readUsed().length, 0);
});

test('a guest fault in the ring sets DEVICE_NEEDS_RESET without crashing', () => {
  const r = rig({ backend: new MemoryBlockBackend(SECTORS * 512) });
  const mq = r.mq;
  assert.ok(mq instanceof MockQueue);
  mq.setAvailRing(0, 200); // head index >= queue size
  mq.setAvailIdx(1);
  r.dev.queueNotify(0);
  assert.equal(r.host.resets.length, 1);
  assert.equal((r.host.resets[0] as { code?: string }).code, 'ERR_QUEUE_HEAD_INDEX');
});

eachRing('FLUSH reaches the backend; GET_ID returns the NUL-padded serial', (ring) => {
  const backend = new MemoryBlockBackend(SECTORS * 512);
  const r = rig({ ring, backend, serial: 'disk-0042' });
  const f = run(r, { readable: [header(T_FLUSH)], writable: [1] });
  assert.equal(f.status, S_OK);
  assert.equal(f.len, 1);
  assert.equal(backend.flushes, 1);
  const id = run(r, { readable: [header(T_GET_ID)], writable: [20, 1] });
  assert.equal(id.status, S_OK);
  assert.equal(id.len, 21);
  const expected = new Uint8Array(20);
  expected.set(Buffer.from('disk-0042'));
  assert.deepEqual(id.data, expected);

  const full = rig({ ring, backend, serial: 'ABCDEFGHIJKLMNOPQRST' });
  const id20 = run(full, { readable: [header(T_GET_ID)], writable: [7, 13, 1] });
  assert.equal(Buffer.from(id20.data).toString('latin1'), 'ABCDEFGHIJKLMNOPQRST', '20 bytes: no NUL terminator');
  assert.throws(() => new BlkDevice({ backend, serial: 'x'.repeat(21) }), { code: 'ERR_USAGE' });
});

eachRing('unsupported request types are answered UNSUPP', (ring) => {
  const r = rig({ ring, backend: new MemoryBlockBackend(SECTORS * 512) });
  for (const type of [T_GET_LIFETIME, 14, 16, 0x8000_0000, 0xffff_ffff, 2, 3]) {
    const d = run(r, { readable: [header(type)], writable: [1] });
    assert.equal(d.status, S_UNSUPP, `type ${type}`);
    assert.equal(d.len, 1);
  }
});

eachRing('read-only disk: RO offered, OUT/DISCARD/WRITE_ZEROES get IOERR with the disk untouched, IN and FLUSH work', (ring) => {
  const disk = pattern(SECTORS * 512, 10);
  const snapshot = disk.slice();
  const r = rig({ ring, backend: new MemoryBlockBackend(disk, { readOnly: true }) });
  assert.ok(hasFeature(r.dev.deviceFeatures, F.RO));
  assert.ok(!hasFeature(r.dev.deviceFeatures, F.DISCARD) && !hasFeature(r.dev.deviceFeatures, F.WRITE_ZEROES));
  assert.equal(run(r, { readable: [header(T_OUT, 0), pattern(512, 1)], writable: [1] }).status, S_IOERR);
  assert.equal(run(r, { readable: [header(T_IN, 0)], writable: [512, 1] }).status, S_OK);
  assert.equal(run(r, { readable: [header(T_FLUSH)], writable: [1] }).status, S_OK);
  assert.deepEqual(disk, snapshot);

  // RO on a writable backend, by option.
  const disk2 = pattern(SECTORS * 512, 11);
  const ro = rig({ ring, backend: new MemoryBlockBackend(disk2), readOnly: true }, undefined);
  const forced = run(ro, { readable: [header(T_OUT, 1), pattern(512, 1)], writable: [1] });
  assert.equal(forced.status, S_IOERR);
  assert.deepEqual(disk2, pattern(SECTORS * 512, 11));
  assert.throws(() => new BlkDevice({ backend: new MemoryBlockBackend(512, { readOnly: true }), readOnly: false }), { code: 'ERR_USAGE' });
});

eachRing('DISCARD and WRITE_ZEROES zero their segments; flags, limits and ranges are checked first', (ring) => {
  const disk = pattern(SECTORS * 512, 12);
  const r = rig({ ring, backend: new MemoryBlockBackend(disk), maxDiscardSectors: 8, maxDiscardSeg: 2 });
  const wz = run(r, { readable: [header(T_WRITE_ZEROES), Buffer.concat([segment(2, 1, 1), segment(10, 8)])], writable: [1] });
  assert.equal(wz.status, S_OK);
  const expected = pattern(SECTORS * 512, 12);
  expected.fill(0, 2 * 512, 3 * 512);
  expected.fill(0, 10 * 512, 18 * 512);
  assert.deepEqual(disk, expected);
  assert.equal(run(r, { readable: [header(T_DISCARD), segment(30, 2)], writable: [1] }).status, S_OK);
  expected.fill(0, 30 * 512, 32 * 512);
  assert.deepEqual(disk, expected);

  const refused: [string, number, Uint8Array, number][] = [
    ['DISCARD with unmap', T_DISCARD, segment(40, 1, 1), S_UNSUPP],
    ['WRITE_ZEROES with a reserved flag', T_WRITE_ZEROES, segment(40, 1, 2), S_UNSUPP],
    ['three segments, max 2', T_DISCARD, Buffer.concat([segment(40, 1), segment(41, 1), segment(42, 1)]), S_IOERR],
    ['9 sectors, max 8', T_WRITE_ZEROES, segment(40, 9), S_IOERR],
    ['past capacity', T_WRITE_ZEROES, segment(SECTORS - 1, 2), S_IOERR],
    ['sector near 2^64', T_DISCARD, segment(Number.MAX_SAFE_INTEGER, 1), S_IOERR],
    ['no segment', T_DISCARD, new Uint8Array(0), S_IOERR],
    ['half a segment', T_WRITE_ZEROES, segment(40, 1).subarray(0, 8), S_IOERR],
  ];
  for (const [name, type, body, status] of refused) {
    const d = run(r, { readable: body.byteLength ? [header(type), body] : [header(type)], writable: [1] });
    assert.equal(d.status, status, name);
  }
  assert.deepEqual(disk, expected, 'refused requests changed nothing');

  // Not negotiated: UNSUPP even though the device could.
  const plain = rig({ ring, backend: new MemoryBlockBackend(disk) }, 0n);
  assert.equal(run(plain, { readable: [header(T_DISCARD), segment(40, 1)], writable: [1] }).status, S_UNSUPP);
  assert.equal(run(plain, { readable: [header(T_WRITE_ZEROES), segment(40, 1)], writable: [1] }).status, S_UNSUPP);
  assert.deepEqual(disk, expected);
});

eachRing('write cache: writeback toggled through config; writethrough flushes every write before completing', (ring) => {
  const backend = new MemoryBlockBackend(SECTORS * 512);
  const features = (1n << BigInt(F.FLUSH)) | (1n << BigInt(F.CONFIG_WCE));
  const r = rig({ ring, backend }, features);
  assert.equal(r.dev.readConfig(32, 1), 1, 'writeback by default with FLUSH');
  run(r, { readable: [header(T_OUT, 0), pattern(512, 1)], writable: [1] });
  assert.equal(backend.flushes, 0, 'writeback: no flush per write');
  r.dev.writeConfig(32, 1, 0);
  assert.equal(r.dev.readConfig(32, 1), 0);
  run(r, { readable: [header(T_OUT, 0), pattern(512, 1)], writable: [1] });
  assert.equal(backend.flushes, 1, 'writethrough: flushed before completion');

  // CONFIG_WCE without FLUSH: writeback MUST start at 0 (5.2.5.1).
  const noFlush = rig({ ring, backend: new MemoryBlockBackend(512) }, 1n << BigInt(F.CONFIG_WCE));
  assert.equal(noFlush.dev.readConfig(32, 1), 0);
  // Neither negotiated (FLUSH offered): writes must be stable at completion.
  const b2 = new MemoryBlockBackend(SECTORS * 512);
  const none = rig({ ring, backend: b2 }, 0n);
  run(none, { readable: [header(T_OUT, 0), pattern(512, 1)], writable: [1] });
  assert.equal(b2.flushes, 1);
  // Without CONFIG_WCE the field is not writable.
  none.dev.writeConfig(32, 1, 1);
  assert.equal(none.dev.readConfig(32, 1), 0);
  // Reset restores the power-on value (the driver set 0 above): the configured mode, not one derived
  // from features, since a legacy driver may read it before the device knows any (5.2.5.2).
  void r.dev.reset(); // nothing in flight: completes at once
  assert.equal(r.dev.readConfig(32, 1), 1);
  assert.equal(new BlkDevice({ backend: new MemoryBlockBackend(512), writeback: false }).readConfig(32, 1), 0);
});

test('write cache through the legacy interface (no FEATURES_OK): a writeback written before DRIVER_OK is kept with CONFIG_WCE', () => {
  const wceFlush = (1n << BigInt(F.FLUSH)) | (1n << BigInt(F.CONFIG_WCE));
  const legacy = (features: bigint, write: number | undefined): number => {
    const dev = new BlkDevice({ backend: new MemoryBlockBackend(512) });
    const mq = new MockQueue({ size: 16 });
    dev.attach(new TestHost(mq.memory));
    if (write !== undefined) dev.writeConfig(32, 1, write);
    dev.activate({ features, queues: [mq.deviceQueue()] });
    return dev.readConfig(32, 1);
  };
  assert.equal(legacy(wceFlush, 0), 0, 'kept: the driver negotiated CONFIG_WCE');
  assert.equal(legacy(wceFlush, undefined), 1, 'default writeback with FLUSH');
  assert.equal(legacy(1n << BigInt(F.FLUSH), 0), 1, 'without CONFIG_WCE, DRIVER_OK sets the mode from FLUSH');
  assert.equal(legacy(0n, 1), 0, 'neither: writethrough');
});

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

eachRing('asynchronous backend: requests complete out of order, each with its own data and status', async (ring) => {
  const disk = pattern(SECTORS * 512, 13);
  const backend = new DeferredBackend(disk);
  const r = rig({ ring, backend, maxInFlight: 8 }, 1n << BigInt(F.FLUSH));
  const heads = [0, 1, 2, 3].map((i) => r.mq.addChain({ readable: [header(T_IN, i * 4)], writable: [512, 1] }));
  r.dev.queueNotify(0);
  assert.equal(r.dev.requestsInFlight, 4);
  assert.equal(r.mq.readUsed().length, 0, 'nothing completes before the backend does');
  const spans = heads.map((h) => r.mq.buffers(h).writable);
  // Complete 2, then 0 with an I/O error, then 3, then 1.
  for (const [i, ok] of [
    [2, true],
    [0, false],
    [3, true],
    [1, true],
  ] as const)
    backend.pending[i]!.release(ok);
  await tick();
  const used = r.mq.readUsed();
  assert.deepEqual(
    used.map((u) => u.id),
    [heads[2], heads[0], heads[3], heads[1]],
  );
  assert.ok(used.every((u) => u.len === 513));
  for (const [i, h] of heads.entries()) {
    const status = r.mq.memory.read8(spans[i]![1]!.addr);
    const bytes = r.mq.memory.view(spans[i]![0]!.addr, 512);
    if (i === 0) {
      assert.equal(status, S_IOERR, `head ${h}`);
      assert.ok(bytes.every((x) => x === 0));
    } else {
      assert.equal(status, S_OK);
      assert.deepEqual(bytes, disk.subarray(i * 4 * 512, i * 4 * 512 + 512));
    }
  }
  assert.equal(r.dev.requestsInFlight, 0);
  assert.ok(r.host.interrupts.length >= 1);
});

eachRing('a backend that completes some reads later and some at once: each request reads into its own buffers', async (ring) => {
  // The device refills one GuestIo for requests its backend completes at once; the one handed to a
  // deferred read must stay that read's, whatever completes after it.
  const disk = pattern(SECTORS * 512, 15);
  const deferred = new DeferredBackend(disk);
  const backend: BlockBackend = {
    size: deferred.size,
    readOnly: false,
    read: (offset, dst) => (offset === 0 ? deferred.read(offset, dst) : deferred.inner.read(offset, dst)),
    write: (offset, src) => deferred.inner.write(offset, src),
    flush: () => undefined,
  };
  const r = rig({ ring, backend }, 1n << BigInt(F.FLUSH));
  const heads = [0, 1, 2, 3].map((i) => r.mq.addChain({ readable: [header(T_IN, i * 4)], writable: [512, 1] }));
  r.dev.queueNotify(0);
  assert.equal(r.dev.requestsInFlight, 1, 'the read of sector 0 waits');
  assert.equal(r.mq.readUsed().length, 3, 'the others completed at once');
  deferred.releaseAll();
  await tick();
  assert.deepEqual(
    r.mq.readUsed().map((u) => u.id),
    [heads[0]],
  );
  for (const [i, h] of heads.entries()) {
    const [data, status] = r.mq.buffers(h).writable;
    assert.equal(r.mq.memory.read8(status!.addr), S_OK, `head ${h}`);
    assert.deepEqual(r.mq.memory.view(data!.addr, 512), disk.subarray(i * 4 * 512, i * 4 * 512 + 512), `request ${i}'s buffer`);
  }
});

eachRing('asynchronous backend: at most maxInFlight requests outstanding, the rest resume as slots free', async (ring) => {
  const backend = new DeferredBackend(pattern(SECTORS * 512, 14));
  const r = rig({ ring, backend, maxInFlight: 2 });
  for (let i = 0; i < 5; i++) r.mq.addChain({ readable: [header(T_IN, i)], writable: [512, 1] });
  r.dev.queueNotify(0);
  assert.equal(backend.pending.length, 2);
  backend.pending[1]!.release(true);
  await tick();
  assert.equal(backend.pending.length, 3, 'a freed slot pops the next chain without a new notify');
  assert.equal(r.dev.requestsInFlight, 2);
  for (let i = 0; i < 5 && backend.pending.some(Boolean); i++) {
    for (const p of backend.pending.splice(0)) p.release(true);
    await tick();
  }
  assert.equal(r.mq.readUsed().length, 5);
  assert.equal(r.dev.requestsInFlight, 0);
});

eachRing('reset with requests in flight: late completions are dropped, not pushed into the new queue', async (ring) => {
  const backend = new DeferredBackend(pattern(SECTORS * 512, 15));
  const r = rig({ ring, backend });
  r.mq.addChain({ readable: [header(T_IN, 0)], writable: [512, 1] });
  r.dev.queueNotify(0);
  void r.dev.reset(); // completes when the released operation settles
  backend.pending[0]!.release(true);
  await tick();
  assert.deepEqual(r.mq.readUsed(), []);
  assert.equal(r.dev.requestsInFlight, 0);
});

eachRing('multiqueue: each queue is served and interrupted on its own index', (ring) => {
  const disk = pattern(SECTORS * 512, 16);
  const r = rig({ ring, backend: new MemoryBlockBackend(disk), numQueues: 3 });
  const d = run(r, { readable: [header(T_IN, 5)], writable: [512, 1] }, 2);
  assert.equal(d.status, S_OK);
  assert.deepEqual(d.data, disk.subarray(5 * 512, 6 * 512));
  assert.deepEqual(r.host.interrupts, [2]);
  assert.deepEqual(r.queues[0]!.readUsed(), []);
});

eachRing('file backend through the device: data on the file, FLUSH is fsync, out-of-range leaves the file unchanged', async (ring, t) => {
  const dir = mkdtempSync(join(tmpdir(), 'virtio-blk-dev-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'disk.img');
  const original = pattern(SECTORS * 512, 17);
  writeFileSync(path, original);
  const backend = await FileBlockBackend.open(path);
  t.after(() => backend.close());
  const r = rig({ ring, backend }, (1n << BigInt(F.FLUSH)) | (1n << BigInt(F.CONFIG_WCE)));
  const data = pattern(1024, 18);
  const requests = [
    { readable: [header(T_OUT, 4), data], writable: [1] },
    { readable: [header(T_OUT, SECTORS - 1), data], writable: [1] }, // runs one sector past the end
    { readable: [header(T_IN, 60)], writable: [2048, 1] },
    { readable: [header(T_FLUSH)], writable: [1] },
  ];
  const statusAt = requests.map((spec) => {
    const head = r.mq.addChain(spec);
    const w = r.mq.buffers(head).writable;
    return w[w.length - 1]!.addr + w[w.length - 1]!.len - 1;
  });
  r.dev.queueNotify(0);
  let used = 0;
  for (let i = 0; i < 200 && used < requests.length; i++) {
    await new Promise((resolve) => setTimeout(resolve, 2));
    used += r.mq.readUsed().length;
  }
  assert.equal(used, requests.length);
  assert.deepEqual(
    statusAt.map((a) => r.mq.memory.read8(a)),
    [S_OK, S_IOERR, S_OK, S_OK],
  );
  assert.equal(backend.fsyncs, 1, 'FLUSH reached fsync');
  const expected = Buffer.from(original);
  Buffer.from(data).copy(expected, 4 * 512);
  assert.deepEqual(readFileSync(path), expected, 'only the in-range write reached the file');
});

eachRing(
  'one notify: requests run in ring order (a read after a write of its sector sees it) and complete in that order, in bursts',
  (ring) => {
    const disk = pattern(SECTORS * 512, 19);
    // maxInFlight 2: every burst holds at most two requests, so five take three bursts.
    const r = rig({ ring, backend: new MemoryBlockBackend(disk), maxInFlight: 2 });
    const a = pattern(512, 20);
    const b = pattern(512, 21);
    const heads = [
      r.mq.addChain({ readable: [header(T_OUT, 3), a], writable: [1] }),
      r.mq.addChain({ readable: [header(T_IN, 3)], writable: [512, 1] }),
      r.mq.addChain({ readable: [header(T_OUT, 3), b], writable: [1] }),
      r.mq.addChain({ readable: [header(T_IN, 3)], writable: [512, 1] }),
      r.mq.addChain({ readable: [header(T_IN, 4)], writable: [512, 1] }),
    ];
    r.dev.queueNotify(0);
    assert.deepEqual(
      r.mq.readUsed().map((u) => [u.id, u.len]),
      heads.map((h, i) => [h, i % 2 === 0 && i < 4 ? 1 : 513]),
      'every request answered, in ring order',
    );
    const read = (h: number): Uint8Array => r.mq.readWritten(h, 513);
    assert.deepEqual(read(heads[1]!), Uint8Array.from([...a, S_OK]), 'the first read sees the first write');
    assert.deepEqual(read(heads[3]!), Uint8Array.from([...b, S_OK]), 'the second read sees the second write');
    assert.deepEqual(read(heads[4]!).subarray(0, 512), disk.subarray(4 * 512, 5 * 512));
    assert.deepEqual(disk.subarray(3 * 512, 4 * 512), b);
    assert.deepEqual(r.host.interrupts, [0], 'one interrupt for the notify');
  },
);

eachRing(
  'a fatal chain inside a burst: the chains before it are answered first, then DEVICE_NEEDS_RESET; none after it is touched',
  (ring) => {
    const disk = pattern(SECTORS * 512, 22);
    const r = rig({ ring, backend: new MemoryBlockBackend(disk) });
    const a = pattern(512, 23);
    const first = r.mq.addChain({ readable: [header(T_IN, 1)], writable: [512, 1] });
    const second = r.mq.addChain({ readable: [header(T_OUT, 2), a], writable: [1] });
    r.mq.addChain({ readable: [header(T_OUT, 0), pattern(512, 24)] }); // no status byte
    const after = r.mq.addChain({ readable: [header(T_IN, 5)], writable: [512, 1] });
    const untouched = r.mq.readWritten(after, 513).slice();
    r.dev.queueNotify(0);
    assert.deepEqual(
      r.mq.readUsed().map((u) => u.id),
      [first, second],
    );
    assert.deepEqual(r.mq.readWritten(first, 513), Uint8Array.from([...disk.subarray(512, 1024), S_OK]));
    assert.deepEqual(disk.subarray(2 * 512, 3 * 512), a, 'the write before the fault reached the disk');
    assert.deepEqual(disk.subarray(0, 512), pattern(SECTORS * 512, 22).subarray(0, 512), 'the faulty chain wrote nothing');
    assert.equal(r.host.resets.length, 1);
    assert.equal((r.host.resets[0] as { code?: string }).code, 'ERR_REQUEST_SHAPE');
    assert.deepEqual(r.mq.readWritten(after, 513), untouched, 'the chain after the fault is untouched');
  },
);
