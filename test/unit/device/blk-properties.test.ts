/**
 * Property tests of the virtio-blk device against hostile chains: any header, any sector, any split
 * of header/data/status across buffers. Whatever the guest sends, the device answers in the chain's
 * own writable bytes (or sets DEVICE_NEEDS_RESET when there is no status byte), writes guest memory
 * nowhere else, and changes the disk only for a successful write, only inside its sectors.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { MockQueue } from '../../../src/testing/mock-queue.js';
import { GuardedMemory } from '../../../src/testing/guarded-memory.js';
import { BlkDevice } from '../../../src/device/blk/blk-device.js';
import { MemoryBlockBackend } from '../../../src/device/blk/memory-backend.js';
import type { VirtioDeviceHost } from '../../../src/core/virtio-device.js';
import { usedRingSize } from '../../../src/spec/ring.js';

const SECTORS = 32;
const QUEUE = 64;
const MEM = 1 << 20;

const ORIGINAL = Uint8Array.from({ length: SECTORS * 512 }, (_, i) => (i * 7 + (i >> 9)) & 0xff);

/** Cut `bytes` into pieces at the given fractions (empty pieces included). */
function cut(bytes: Uint8Array, cuts: readonly number[]): Uint8Array[] {
  const at = [...new Set(cuts.map((c) => Math.floor(c * bytes.byteLength)))].sort((a, b) => a - b);
  const out: Uint8Array[] = [];
  let prev = 0;
  for (const p of at) {
    out.push(bytes.slice(prev, p));
    prev = p;
  }
  out.push(bytes.slice(prev));
  return out;
}

/** The first `len` bytes of the chain's writable buffers. */
function readWritten(mq: MockQueue, writable: readonly { addr: number; len: number }[], len: number): Uint8Array {
  const out = new Uint8Array(len);
  let done = 0;
  for (const w of writable) {
    const n = Math.min(w.len, len - done);
    out.set(mq.memory.view(w.addr, n), done);
    done += n;
  }
  return out;
}

interface Shape {
  readonly type: number;
  readonly sector: bigint;
  readonly headerLen: number;
  readonly dataOut: number;
  readonly dataIn: number;
  /** The device-readable bytes after the header. */
  readonly body: Uint8Array;
  readonly readOnly: boolean;
}

const OK = 0;
const IOERR = 1;
const UNSUPP = 2;

/** The status spec 5.2.6 calls for, worked out independently of the device's code. */
function expectedStatus(r: Shape): number {
  if (r.headerLen < 16) return IOERR;
  const inRange = (sector: bigint, count: bigint): boolean => sector + count <= BigInt(SECTORS);
  switch (r.type) {
    case 0:
      if (r.dataOut !== 0 || r.dataIn % 512 !== 0 || !inRange(r.sector, BigInt(r.dataIn / 512))) return IOERR;
      return OK;
    case 1:
      if (r.dataIn !== 0 || r.dataOut % 512 !== 0 || !inRange(r.sector, BigInt(r.dataOut / 512)) || r.readOnly) return IOERR;
      return OK;
    case 4:
      return r.dataOut !== 0 || r.dataIn !== 0 ? IOERR : OK;
    case 8:
      return r.dataOut !== 0 ? IOERR : OK;
    case 11:
    case 13: {
      if (r.dataIn !== 0 || r.dataOut === 0 || r.dataOut % 16 !== 0 || r.dataOut / 16 > 2) return IOERR;
      // struct virtio_blk_discard_write_zeroes: le64 sector, le32 num_sectors, le32 flags.
      const dv = new DataView(r.body.buffer, r.body.byteOffset, r.body.byteLength);
      for (let at = 0; at < r.body.byteLength; at += 16) {
        const sector = dv.getBigUint64(at, true);
        const count = dv.getUint32(at + 8, true);
        const flags = dv.getUint32(at + 12, true);
        if ((flags & ~(r.type === 13 ? 1 : 0)) !== 0) return UNSUPP;
        if (count > 16 || !inRange(sector, BigInt(count))) return IOERR;
      }
      return r.readOnly ? UNSUPP : OK; // not offered on a read-only disk
    }
    default:
      return UNSUPP;
  }
}

const request = fc.record({
  type: fc.oneof({ arbitrary: fc.constantFrom(0, 1, 4, 8, 11, 13), weight: 6 }, { arbitrary: fc.nat({ max: 0xffff_ffff }), weight: 1 }),
  sector: fc.oneof(
    fc.bigInt({ min: 0n, max: BigInt(SECTORS + 2) }),
    { arbitrary: fc.bigInt({ min: BigInt(SECTORS - 3), max: BigInt(SECTORS + 1) }), weight: 3 },
    fc.constantFrom(2n ** 53n, 2n ** 64n - 1n, 2n ** 64n - 2n),
    fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
  ),
  headerLen: fc.oneof(fc.constant(16), fc.nat({ max: 20 })),
  headerCuts: fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 3 }),
  dataOut: fc.oneof(fc.constantFrom(0, 512, 1024, 1536, 2048, 16, 32), fc.nat({ max: 2100 })),
  segments: fc.array(fc.tuple(fc.nat({ max: SECTORS + 4 }), fc.nat({ max: 40 }), fc.constantFrom(0, 1, 2, 0x8000_0000)), { maxLength: 3 }),
  writable: fc.oneof(
    fc.array(fc.oneof(fc.constantFrom(0, 1, 20, 512, 513, 1025), fc.nat({ max: 1100 })), { maxLength: 4 }),
    // Well-formed IN shapes: whole sectors then the status byte, cut anywhere.
    fc.tuple(fc.integer({ min: 0, max: 4 }), fc.nat({ max: 2048 })).map(([sectors, at]) => {
      const total = sectors * 512 + 1;
      const cutAt = Math.min(at, total);
      return [cutAt, total - cutAt];
    }),
  ),
  readOnly: fc.boolean(),
  /** Keep the shape the type calls for (then only sector and sizes are hostile), half of the time. */
  shapeOk: fc.boolean(),
});

test('any chain: an answer in its own bytes or NEEDS_RESET, no stray memory write, the disk changed only by a good write', () => {
  fc.assert(
    fc.property(request, (r) => {
      const memory = new GuardedMemory(MEM, { allowAllReads: true });
      const mq = new MockQueue({ size: QUEUE, memory });
      const disk = ORIGINAL.slice();
      const dev = new BlkDevice({
        backend: new MemoryBlockBackend(disk),
        readOnly: r.readOnly,
        queueSize: QUEUE,
        maxDiscardSectors: 16,
        maxDiscardSeg: 2,
      });
      const resets: Error[] = [];
      const host: VirtioDeviceHost = { memory, configChanged() {}, usedBuffers() {}, needsReset: (e) => resets.push(e) };
      dev.attach(host);
      dev.acceptFeatures(dev.deviceFeatures);
      dev.activate({ features: dev.deviceFeatures, queues: [mq.deviceQueue()] });

      const header = new Uint8Array(16);
      const dv = new DataView(header.buffer);
      dv.setUint32(0, r.type, true);
      dv.setBigUint64(8, r.sector, true);
      let body: Uint8Array;
      if ((r.type === 11 || r.type === 13) && r.segments.length > 0) {
        body = new Uint8Array(16 * r.segments.length);
        const sv = new DataView(body.buffer);
        r.segments.forEach(([sector, count, flags], i) => {
          sv.setBigUint64(i * 16, BigInt(sector), true);
          sv.setUint32(i * 16 + 8, count, true);
          sv.setUint32(i * 16 + 12, flags, true);
        });
      } else {
        const dataOut = r.shapeOk && r.type !== 1 ? 0 : r.shapeOk ? r.dataOut - (r.dataOut % 512) : r.dataOut;
        body = Uint8Array.from({ length: dataOut }, (_, i) => (i * 13 + 5) & 0xff);
      }
      const headerLen = r.shapeOk ? 16 : r.headerLen;
      // A short header comes alone: with data after it, the device would (rightly) read the data as header bytes.
      if (headerLen < 16) body = new Uint8Array(0);
      const wantsDataIn = r.type === 0 || r.type === 8;
      const writableSpec = r.shapeOk && !wantsDataIn ? [1] : r.writable;
      const readable = [...cut(header.subarray(0, headerLen), r.headerCuts), ...(body.byteLength ? [body] : [])];
      memory.allowWrite(0, MEM, 'harness');
      const head = mq.addChain({ readable, writable: writableSpec });
      memory.clearAllowed();
      memory.allowWrite(mq.usedAddr, usedRingSize(QUEUE), 'used ring');
      const writable = mq.buffers(head).writable;
      for (const w of writable) memory.allowWrite(w.addr, w.len, 'request');
      memory.snapshot();

      dev.queueNotify(0);

      memory.assertClean();
      const writableBytes = writableSpec.reduce((a, b) => a + b, 0);
      const used = mq.readUsed();
      if (writableBytes === 0) {
        assert.equal(resets.length, 1, 'no status byte: DEVICE_NEEDS_RESET');
        assert.equal(used.length, 0);
        assert.deepEqual(disk, ORIGINAL);
        return;
      }
      assert.equal(resets.length, 0);
      assert.equal(used.length, 1);
      assert.equal(used[0]!.len, writableBytes);
      const last = writable.filter((w) => w.len > 0).at(-1)!;
      const status = memory.read8(last.addr + last.len - 1);
      const dataOut = body.byteLength;
      assert.equal(
        status,
        expectedStatus({ type: r.type, sector: r.sector, headerLen, dataOut, dataIn: writableBytes - 1, body, readOnly: r.readOnly }),
      );
      if (r.type === 0 && status === 0) {
        // A successful read returned exactly the sectors asked for.
        const data = readWritten(mq, writable, writableBytes - 1);
        const start = Number(r.sector) * 512;
        assert.ok(start + data.byteLength <= disk.byteLength);
        assert.deepEqual(data, ORIGINAL.subarray(start, start + data.byteLength));
      }
      const changed = disk.findIndex((b, i) => b !== ORIGINAL[i]);
      if (changed < 0) return;
      // The disk changed: only a successful OUT, DISCARD or WRITE_ZEROES may do that.
      assert.equal(status, 0);
      assert.ok(!r.readOnly);
      if (r.type === 1) {
        const start = Number(r.sector) * 512;
        const expected = ORIGINAL.slice();
        expected.set(body, start);
        assert.deepEqual(disk, expected);
      } else {
        assert.ok(r.type === 11 || r.type === 13, `type ${r.type} changed the disk`);
        for (let i = 0; i < disk.length; i++) {
          if (disk[i] === ORIGINAL[i]) continue;
          const sector = Math.floor(i / 512);
          assert.equal(disk[i], 0);
          assert.ok(
            r.segments.some(([s, c]) => sector >= s && sector < s + c),
            `byte ${i} outside every segment`,
          );
        }
      }
    }),
    { numRuns: 2000, seed: 42 },
  );
});
