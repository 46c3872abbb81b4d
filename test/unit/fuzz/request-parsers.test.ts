/**
 * Property tests of each device's request parser on arbitrary chains (fast-check): any split of
 * any bytes into device-readable then device-writable buffers scattered in guest memory. A parser
 * returns a request or throws RequestShapeError, nothing else; reads only the chain's buffers and
 * writes nothing; and what it returns stays inside the chain (blk data views are views of the
 * chain's own buffers, with the promised total length; net frames and control data are copies of
 * the readable bytes). FUZZ_PROPERTY_RUNS raises the number of runs for a long campaign.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { decodeConsoleControl } from '../../../src/device/console/control-message.js';
import {
  parseBlkRequest,
  RequestStorage,
  statusAddress,
  usualRequest,
  type BlkLimits,
  type BlkRequest,
} from '../../../src/device/blk/request.js';
import { NET_CTRL_MAX_BYTES, parseNetCtrlRequest } from '../../../src/device/net/ctrl-request.js';
import { NetTxReader } from '../../../src/device/net/tx-request.js';
import { RequestShapeError } from '../../../src/errors.js';
import { ArrayGuestMemory } from '../../../src/memory/guest-memory.js';
import type { DescriptorChain } from '../../../src/queue/types.js';
import {
  VIRTIO_BLK_T_DISCARD,
  VIRTIO_BLK_T_GET_ID,
  VIRTIO_BLK_T_IN,
  VIRTIO_BLK_T_OUT,
  VIRTIO_BLK_T_WRITE_ZEROES,
} from '../../../src/spec/blk.js';
import { VIRTIO_CONSOLE_CONTROL_SIZE } from '../../../src/spec/console.js';
import {
  ETH_MAX_FRAME_NO_GSO,
  VIRTIO_NET_HDR_F_NEEDS_CSUM,
  VIRTIO_NET_HDR_LEGACY_SIZE,
  VIRTIO_NET_HDR_SIZE,
} from '../../../src/spec/net.js';
import { GuardedMemory } from '../../../src/testing/guarded-memory.js';

const RUNS = Number(process.env.FUZZ_PROPERTY_RUNS ?? 300);
const MEM = 0x10000;
/** blk has the most shapes to reach; it gets more runs. */
const BLK_RUNS = Math.max(RUNS, 1500);

/** A popped chain over guarded memory: buffers placed with gaps, their bytes as given. */
class FakeChain implements DescriptorChain {
  readonly head = 0;
  readonly count: number;
  readonly readableBytes: number;
  readonly writableBytes: number;
  private readonly spans: { addr: number; len: number }[] = [];

  constructor(
    private readonly mem: GuardedMemory,
    readonly readable: number,
    buffers: readonly Uint8Array[],
    gaps: readonly number[],
  ) {
    let at = 0x100;
    buffers.forEach((b, i) => {
      at += gaps[i % gaps.length] ?? 0;
      mem.inner.write(at, b);
      this.spans.push({ addr: at, len: b.length });
      mem.allowRead(at, b.length, `buffer ${i}`);
      at += b.length;
    });
    this.count = buffers.length;
    this.readableBytes = buffers.slice(0, readable).reduce((n, b) => n + b.length, 0);
    this.writableBytes = buffers.slice(readable).reduce((n, b) => n + b.length, 0);
  }
  addr(i: number): number {
    return this.spans[i]!.addr;
  }
  len(i: number): number {
    return this.spans[i]!.len;
  }
  view(i: number): Uint8Array {
    return this.mem.view(this.spans[i]!.addr, this.spans[i]!.len);
  }
  /** Whether `v` is a view of guest memory inside one of buffers [from, to). */
  /** Whether guest range `r` lies inside one of buffers from..to-1. */
  owns(r: { addr: number; len: number }, from: number, to: number): boolean {
    return this.spans.slice(from, to).some((s) => r.addr >= s.addr && r.addr + r.len <= s.addr + s.len);
  }
  readableCopy(): Uint8Array {
    const out = new Uint8Array(this.readableBytes);
    let at = 0;
    for (let i = 0; i < this.readable; i++) {
      out.set(this.mem.inner.view(this.spans[i]!.addr, this.spans[i]!.len), at);
      at += this.spans[i]!.len;
    }
    return out;
  }
}

/** A chain: up to 5 readable then up to 3 writable buffers, header-like first bytes, any gaps. */
function chains(firstBytes: fc.Arbitrary<number[]>): fc.Arbitrary<{ readable: Uint8Array[]; writable: Uint8Array[]; gaps: number[] }> {
  // Sector-sized buffers often enough that IN/OUT requests with data parse, not only fail.
  const buf = fc.oneof(fc.uint8Array({ maxLength: 1100 }), fc.uint8Array({ minLength: 512, maxLength: 512 }));
  const writableLen = fc.oneof(fc.constantFrom(0, 1, 16, 20, 512, 513, 1024, 1025), fc.integer({ min: 0, max: 1100 }));
  return fc.record({
    readable: fc.tuple(firstBytes, fc.oneof(fc.constant([]), fc.array(buf, { maxLength: 4 }))).chain(([head, rest]) =>
      // The header split at any point across two buffers (2.6.4: framing is free).
      fc
        .integer({ min: 0, max: head.length })
        .map((cut) => [Uint8Array.from(head.slice(0, cut)), Uint8Array.from(head.slice(cut)), ...rest]),
    ),
    writable: fc.array(
      writableLen.map((n) => new Uint8Array(n)),
      { maxLength: 3 },
    ),
    gaps: fc.array(fc.integer({ min: 0, max: 64 }), { minLength: 1, maxLength: 4 }),
  });
}

/** Run `parse` under guard: only RequestShapeError may escape, nothing is written, only the chain read. */
function guarded<T>(
  spec: { readable: Uint8Array[]; writable: Uint8Array[]; gaps: number[] },
  parse: (c: FakeChain, mem: GuardedMemory) => T,
): { chain: FakeChain; result: T | RequestShapeError } {
  const mem = new GuardedMemory(MEM);
  const chain = new FakeChain(mem, spec.readable.length, [...spec.readable, ...spec.writable], spec.gaps);
  mem.snapshot();
  let result: T | RequestShapeError;
  try {
    result = parse(chain, mem);
  } catch (e) {
    if (!(e instanceof RequestShapeError)) throw e;
    result = e;
  }
  assert.deepEqual(mem.problems(), [], 'the parser touched memory outside its chain or wrote');
  return { chain, result };
}

const u32 = (v: number): number[] => [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff];
const blkType = fc.oneof(
  {
    arbitrary: fc.constantFrom(VIRTIO_BLK_T_IN, VIRTIO_BLK_T_OUT, 4, VIRTIO_BLK_T_GET_ID, VIRTIO_BLK_T_DISCARD, VIRTIO_BLK_T_WRITE_ZEROES),
    weight: 4,
  },
  { arbitrary: fc.nat({ max: 0xffff_ffff }), weight: 1 },
);
const blkHeader = fc
  .tuple(
    blkType,
    fc.oneof(fc.nat({ max: 40 }), fc.constantFrom(0xffff_ffff, 2 ** 32)),
    fc.nat({ max: 0xffff_ffff }),
    fc.oneof(fc.constant([]), fc.array(fc.nat({ max: 255 }), { maxLength: 48 })),
  )
  .map(([type, sector, hi, tail]) => [...u32(type), 0, 0, 0, 0, ...u32(sector % 2 ** 32), ...u32(sector >= 2 ** 32 ? hi : 0), ...tail]);

/** Chains shaped like real blk requests (data and segments where the type has them), with hostile numbers. */
const blkShaped = fc
  .tuple(
    blkType,
    fc.nat({ max: 40 }),
    fc.nat({ max: 2 }),
    fc.array(
      fc.tuple(
        fc.nat({ max: 40 }),
        fc.nat({ max: 12 }),
        fc.oneof({ arbitrary: fc.constant(0), weight: 6 }, { arbitrary: fc.nat({ max: 3 }), weight: 1 }),
      ),
      { minLength: 1, maxLength: 5 },
    ),
    fc.integer({ min: 0, max: 16 }),
  )
  .map(([type, sector, k, segs, cut]) => {
    const header = [...u32(type), 0, 0, 0, 0, ...u32(sector), 0, 0, 0, 0];
    const segments = segs.flatMap(([sec, num, flags]) => [...u32(sec), 0, 0, 0, 0, ...u32(num), ...u32(flags)]);
    const dataOut =
      type === VIRTIO_BLK_T_OUT
        ? new Array(512 * k).fill(0x5a)
        : type === VIRTIO_BLK_T_DISCARD || type === VIRTIO_BLK_T_WRITE_ZEROES
          ? segments
          : [];
    const dataIn = type === VIRTIO_BLK_T_IN ? 512 * k : type === VIRTIO_BLK_T_GET_ID ? 20 : 0;
    return {
      readable: [Uint8Array.from(header.slice(0, cut)), Uint8Array.from([...header.slice(cut), ...dataOut])],
      writable: [...(dataIn > 0 ? [new Uint8Array(dataIn)] : []), new Uint8Array(1)],
      gaps: [k * 8],
    };
  });

const BLK_LIMITS: BlkLimits = { capacity: 32, maxDiscardSectors: 8, maxDiscardSeg: 4, maxWriteZeroesSectors: 8, maxWriteZeroesSeg: 4 };
/** A request as plain data (its spans copied out of the refilled storage), for deepEqual. */
const described = (r: BlkRequest): unknown =>
  'data' in r
    ? { ...r, data: { memory: r.data.memory, spans: r.data.spans.map(({ addr, len }) => ({ addr, len })), length: r.data.length } }
    : r;

test('blk: any chain parses to a request inside the disk and the chain, or to RequestShapeError', () => {
  const parsed = new Set<number | string>();
  // One storage refilled across every run, as a device refills its own: the same request each time.
  const storage = new RequestStorage(new ArrayGuestMemory(16));
  fc.assert(
    fc.property(fc.oneof(chains(blkHeader), blkShaped), (spec) => {
      const { chain, result } = guarded(spec, (c, mem) => {
        if (statusAddress(c) === undefined) return undefined;
        const fresh = parseBlkRequest(c, BLK_LIMITS, mem);
        assert.deepEqual(
          described(parseBlkRequest(c, BLK_LIMITS, mem, storage)),
          described(fresh),
          'a refilled RequestStorage describes the same request',
        );
        return fresh;
      });
      if (result === undefined || result instanceof RequestShapeError) return;
      parsed.add(result.type);
      if (result.type === VIRTIO_BLK_T_IN || result.type === VIRTIO_BLK_T_OUT) {
        const { data } = result;
        assert.ok(result.offset % 512 === 0 && data.length % 512 === 0 && result.offset + data.length <= BLK_LIMITS.capacity * 512);
        const [from, to] = result.type === VIRTIO_BLK_T_IN ? [chain.readable, chain.count] : [0, chain.readable];
        assert.ok(
          data.spans.every((s) => chain.owns(s, from, to)),
          'data spans outside the chain',
        );
        assert.equal(
          data.spans.reduce((n, s) => n + s.len, 0),
          data.length,
        );
        assert.ok(
          data.spans.every((s) => s.len > 0),
          'no empty spans',
        );
      } else if (result.type === VIRTIO_BLK_T_GET_ID) {
        assert.ok(result.data.spans.every((s) => chain.owns(s, chain.readable, chain.count)));
      } else if (result.type === VIRTIO_BLK_T_DISCARD || result.type === VIRTIO_BLK_T_WRITE_ZEROES) {
        assert.ok(
          result.ranges.length <= 4 && result.ranges.every((r) => r.length <= 8 * 512 && r.offset + r.length <= BLK_LIMITS.capacity * 512),
        );
      }
    }),
    { numRuns: BLK_RUNS },
  );
  // Not vacuous: reads, writes and discards parsed successfully too.
  for (const t of [VIRTIO_BLK_T_IN, VIRTIO_BLK_T_OUT, VIRTIO_BLK_T_DISCARD])
    assert.ok(parsed.has(t), `no ${t} request parsed in ${BLK_RUNS} runs`);
});

/** Three buffers, as the usual layout has them, with hostile numbers: any type, sector, data and status length, either direction. */
const blkUsualShaped = fc
  .tuple(
    fc.oneof({ arbitrary: fc.constantFrom(VIRTIO_BLK_T_IN, VIRTIO_BLK_T_OUT), weight: 4 }, { arbitrary: blkType, weight: 1 }),
    fc.oneof({ arbitrary: fc.nat({ max: 40 }), weight: 4 }, { arbitrary: fc.constantFrom(0xffff_ffff, 2 ** 32, 2 ** 53), weight: 1 }),
    fc.oneof({ arbitrary: fc.constant(16), weight: 4 }, { arbitrary: fc.nat({ max: 40 }), weight: 1 }),
    fc.oneof({ arbitrary: fc.constantFrom(512, 1024, 4096), weight: 4 }, { arbitrary: fc.nat({ max: 5000 }), weight: 1 }),
    fc.oneof({ arbitrary: fc.constant(1), weight: 4 }, { arbitrary: fc.nat({ max: 3 }), weight: 1 }),
    // The data's direction: the type's own mostly, the other one sometimes.
    fc.oneof({ arbitrary: fc.constant(true), weight: 4 }, { arbitrary: fc.constant(false), weight: 1 }),
  )
  .map(([type, sector, headerLen, dataLen, statusLen, typesOwn]) => {
    const header = Uint8Array.from(
      [...u32(type), 0, 0, 0, 0, ...u32(sector % 2 ** 32), ...u32(Math.floor(sector / 2 ** 32)), ...new Array<number>(40).fill(7)].slice(
        0,
        headerLen,
      ),
    );
    const data = new Uint8Array(dataLen).fill(0x5a);
    const dataReadable = (type === VIRTIO_BLK_T_OUT) === typesOwn;
    return {
      readable: dataReadable ? [header, data] : [header],
      writable: dataReadable ? [new Uint8Array(statusLen)] : [data, new Uint8Array(statusLen)],
      gaps: [8],
    };
  });

test('blk: the usual layout parsed in one pass gives what the general parser gives, or leaves the chain to it', () => {
  const storage = new RequestStorage(new ArrayGuestMemory(16));
  let taken = 0;
  fc.assert(
    fc.property(fc.oneof(blkUsualShaped, chains(blkHeader), blkShaped), (spec) => {
      guarded(spec, (c, mem) => {
        const usual = usualRequest(c, BLK_LIMITS, mem, storage);
        if (usual === undefined) return;
        taken++;
        const copy = described(usual);
        // The general parser finds the same status byte and the same request, without a fault
        // (a fault it throws is a test failure here, not a parse result).
        assert.equal(statusAddress(c), c.addr(2), 'the status byte is the last buffer');
        let general: unknown;
        try {
          general = described(parseBlkRequest(c, BLK_LIMITS, mem));
        } catch (err) {
          assert.fail(`the general parser refuses what the usual layout took: ${String(err)}`);
        }
        assert.deepEqual(general, copy);
      });
    }),
    { numRuns: BLK_RUNS },
  );
  // Not vacuous: the usual layout was taken often.
  assert.ok(taken > BLK_RUNS / 20, `the usual layout taken ${taken} times in ${BLK_RUNS} runs`);
});

test("net: transmit chains read to a header and the frame (a view, or the reader's copy), or to RequestShapeError", () => {
  const reader = new NetTxReader();
  fc.assert(
    fc.property(
      chains(fc.array(fc.nat({ max: 255 }), { maxLength: 80 })),
      fc.constantFrom(VIRTIO_NET_HDR_SIZE, VIRTIO_NET_HDR_LEGACY_SIZE),
      (spec, hdrSize) => {
        const { chain, result } = guarded(spec, (c, mem) => reader.read(c, hdrSize, mem));
        if (result instanceof RequestShapeError) return;
        assert.equal(chain.writableBytes, 0);
        assert.ok(result.byteLength <= ETH_MAX_FRAME_NO_GSO);
        const bytes = chain.readableCopy();
        assert.deepEqual(result, bytes.subarray(hdrSize));
        assert.equal(reader.flags, bytes[0]);
        if ((reader.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) !== 0) assert.equal(reader.csumOffset, bytes[8]! | (bytes[9]! << 8));
      },
    ),
    { numRuns: RUNS },
  );
});

test('net: control chains parse to a command or RequestShapeError, MAC tables bounded by their bytes', () => {
  const ctrl = fc
    .tuple(fc.nat({ max: 5 }), fc.nat({ max: 5 }), fc.array(fc.nat({ max: 255 }), { maxLength: 64 }), fc.nat({ max: 0xffff_ffff }))
    .map(([c, cmd, data, n]) => [c, cmd, ...u32(n % 8), ...data]);
  fc.assert(
    fc.property(chains(ctrl), (spec) => {
      const { chain, result } = guarded(spec, (c) => parseNetCtrlRequest(c));
      if (result instanceof RequestShapeError) return;
      assert.ok(chain.writableBytes >= 1 && chain.readableBytes <= NET_CTRL_MAX_BYTES);
      if (result.kind === 'mac-table') assert.ok(6 * (result.unicast.length + result.multicast.length) <= chain.readableBytes);
    }),
    { numRuns: RUNS },
  );
});

test('console: control messages decode from any bytes of at least 8, anything shorter is RequestShapeError', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
      let r: ReturnType<typeof decodeConsoleControl> | RequestShapeError;
      try {
        r = decodeConsoleControl(bytes);
      } catch (e) {
        assert.ok(e instanceof RequestShapeError);
        assert.ok(bytes.byteLength < VIRTIO_CONSOLE_CONTROL_SIZE);
        return;
      }
      const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      assert.deepEqual(r.msg, { id: dv.getUint32(0, true), event: dv.getUint16(4, true), value: dv.getUint16(6, true) });
      assert.deepEqual(r.data, bytes.subarray(VIRTIO_CONSOLE_CONTROL_SIZE));
    }),
    { numRuns: RUNS },
  );
});
