// Snapshot and restore with I/O in flight (docs/snapshots.md), end to end with our driver on the
// in-process Machine, for blk, net, console and rng on split and packed rings: one run is interrupted
// by a save (snapshot, encode, decode) and a restore into a FRESH device and function with a fresh
// backend holding the host state of the moment, swapped in under the driver; a second run is not.
// Both must show the driver the same completions (tokens, lens, bytes), leave the same guest memory
// (so the same used-ring sequence) and the same host-side bytes, and complete every request once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough, Writable } from 'node:stream';
import { BlkDevice } from '../../../src/device/blk/blk-device.js';
import { VirtioConsoleDevice } from '../../../src/device/console/console-device.js';
import { streamBytePort } from '../../../src/device/console/port-streams.js';
import { VirtioNetDevice } from '../../../src/device/net/net-device.js';
import { RngDevice } from '../../../src/device/rng/rng-device.js';
import type { VirtioDevice } from '../../../src/core/virtio-device.js';
import { VirtioDriver } from '../../../src/driver/virtio-driver.js';
import type { DriverQueue } from '../../../src/driver/driver-queue.js';
import type { DmaSpan } from '../../../src/memory/dma.js';
import type { DeviceHost, PciFunction } from '../../../src/pci/function.js';
import { Machine } from '../../../src/platform/machine.js';
import { decodeSnapshot, encodeSnapshot } from '../../../src/snapshot/codec.js';
import { SnapshotReader } from '../../../src/snapshot/snapshot-reader.js';
import { VirtioPciFunction, type VirtioPciFunctionOptions } from '../../../src/transport/pci/virtio-pci-function.js';
import { VIRTIO_F_EVENT_IDX, VIRTIO_F_INDIRECT_DESC, VIRTIO_F_IN_ORDER, featureSet } from '../../../src/spec/features.js';
import { blkHeader } from '../../helpers/blk-request.js';
import { DeferredBackend } from '../../helpers/deferred-backend.js';
import { ethFrame, mac, RecordingNetBackend } from '../../helpers/net-frames.js';
import { RING_FORMATS, offering, type RingName } from '../../helpers/ring-formats.js';

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
const ticks = async (n = 5): Promise<void> => {
  for (let i = 0; i < n; i++) await tick();
};
const RAM = 4 << 20;
// VIRTIO_BLK_T_IN / T_OUT (5.2.6).
const T_IN = 0;
const T_OUT = 1;

/** The slot's function, which the test can replace by another under the driver (a restored one). */
class SwappableFunction implements PciFunction {
  constructor(public target: VirtioPciFunction) {}
  configRead(offset: number, size: 1 | 2 | 4): number {
    return this.target.configRead(offset, size);
  }
  configWrite(offset: number, size: 1 | 2 | 4, value: number): void {
    this.target.configWrite(offset, size, value);
  }
  get bars(): PciFunction['bars'] {
    return this.target.bars;
  }
  decodedBars(): ReturnType<PciFunction['decodedBars']> {
    return this.target.decodedBars();
  }
  barRead(bar: number, offset: number, size: 1 | 2 | 4): number {
    return this.target.barRead(bar, offset, size);
  }
  barWrite(bar: number, offset: number, size: 1 | 2 | 4, value: number): void {
    this.target.barWrite(bar, offset, size, value);
  }
}

/** One device kind: how to make it from host state, and the driver's work before and after the save point. */
interface Kind<H> {
  /** Host state at the start. */
  host(): H;
  /** A device over host state `h` (for the restored run: a copy of the state at the save point). */
  device(h: H): VirtioDevice;
  /** A copy of the host state at the save point, for the fresh device. */
  copyHost(h: H): H;
  /** The driver's work: phase 1 before the save point, phase 2 after. Returns what the driver saw. */
  phase1(ctx: Ctx<H>): Promise<void>;
  phase2(ctx: Ctx<H>): Promise<void>;
  /** Host-side output to compare (disk bytes, frames sent, console output). */
  output(h: H[]): string;
}

interface Ctx<H> {
  readonly m: Machine;
  readonly drv: VirtioDriver;
  /** Host state of the function serving now. */
  h(): H;
  /** What the driver saw, in order. */
  readonly seen: string[];
  readonly queues: DriverQueue<number>[];
}

function span(m: Machine, bytes: Uint8Array | number): DmaSpan {
  const len = typeof bytes === 'number' ? bytes : bytes.byteLength;
  const b = m.bus.dma.alloc(len, 8);
  if (typeof bytes !== 'number') b.bytes.set(bytes);
  return { addr: b.addr, len };
}

/** Reap `q` until `count` completions arrived, recording token, len and the bytes written. */
async function collect(ctx: Ctx<unknown>, q: DriverQueue<number>, count: number, buffers: Map<number, DmaSpan>): Promise<void> {
  for (let got = 0; got < count;) {
    for (const c of await q.waitUsed(2000)) {
      got++;
      const b = buffers.get(c.token);
      const bytes = new Uint8Array(Math.min(c.len, b?.len ?? 0));
      if (b) ctx.m.memory.read(b.addr, bytes);
      ctx.seen.push(`q${q.index} token ${c.token} len ${c.len} ${Buffer.from(bytes).toString('hex')}`);
    }
  }
}

interface RunResult {
  readonly seen: string[];
  /** Guest memory at the end. */
  readonly memory: Uint8Array;
  readonly output: string;
  /** The saved snapshot, guest memory and a copy of the host state at the save point (runs with a save). */
  readonly saved?: { readonly bytes: Uint8Array; readonly memory: Uint8Array; readonly host: unknown };
}

/**
 * Which interface the driver uses: the modern-only function (default), a transitional function
 * through either interface (the committed interface is part of the snapshot), a legacy-only one.
 */
type Face = 'modern' | 'transitional, modern' | 'transitional, legacy' | 'legacy';

function functionOptions(ring: RingName, face: Face): VirtioPciFunctionOptions {
  const mode = face === 'modern' ? 'modern' : face === 'legacy' ? 'legacy' : 'transitional';
  return { ...offering(ring), msixVectors: 4, mode };
}

async function run<H>(kind: Kind<H>, ring: RingName, wanted: bigint, save: boolean, face: Face = 'modern'): Promise<RunResult> {
  const m = new Machine({ ramSize: RAM });
  const hosts = [kind.host()];
  const options = functionOptions(ring, face);
  let deviceHost: DeviceHost | undefined;
  const { bdf, fn: slot } = m.plug((host) => {
    deviceHost = host;
    return new SwappableFunction(new VirtioPciFunction(kind.device(hosts[0]!), host, options));
  });
  const drv = await VirtioDriver.open(m.bus, bdf, { timeoutMs: 2000, forceLegacy: face === 'transitional, legacy' });
  const ctx: Ctx<H> = { m, drv, h: () => hosts.at(-1)!, seen: [], queues: [] };
  await drv.negotiate(wanted);
  await kind.phase1(ctx);
  await ticks();
  let saved: RunResult['saved'];
  if (save) {
    const atSave = new Uint8Array(RAM);
    m.memory.read(0, atSave);
    saved = { bytes: encodeSnapshot(slot.target.snapshot()), memory: atSave, host: kind.copyHost(hosts.at(-1)!) };
    const fresh = kind.copyHost(hosts.at(-1)!);
    hosts.push(fresh);
    const restored = new VirtioPciFunction(kind.device(fresh), deviceHost!, options);
    restored.restore(decodeSnapshot(saved.bytes));
    slot.target = restored;
    m.invalidateRouting();
  }
  await kind.phase2(ctx);
  await ticks();
  const memory = new Uint8Array(RAM);
  m.memory.read(0, memory);
  const output = kind.output(hosts);
  await drv.close();
  return { seen: ctx.seen, memory, output, ...(saved ? { saved } : {}) };
}

async function compare<H>(kind: Kind<H>, ring: RingName, wanted: bigint): Promise<RunResult['saved'] & object> {
  const plain = await run(kind, ring, wanted, false);
  const saved = await run(kind, ring, wanted, true);
  assert.deepEqual(saved.seen, plain.seen, 'the driver sees the same completions, in the same order');
  assert.equal(new Set(saved.seen).size, saved.seen.length, 'no completion twice');
  assert.equal(saved.output, plain.output, 'the host sees the same bytes');
  const diff = saved.memory.findIndex((b, i) => b !== plain.memory[i]);
  assert.equal(diff, -1, `guest memory differs at 0x${diff.toString(16)}`);
  return saved.saved!;
}

// ---- blk: requests held by the backend at the save point, one completed out of order before it ----

interface BlkHost {
  readonly backend: DeferredBackend;
  /** Every operation the backend was asked for, by offset. */
  readonly started: number[];
}
const blkBuffers = new Map<number, DmaSpan>();
const blkDisk = Uint8Array.from({ length: 64 * 512 }, (_, i) => (i * 7 + (i >> 9)) & 0xff);
const blk: Kind<BlkHost> = {
  host: () => ({ backend: new DeferredBackend(blkDisk.slice()), started: [] }),
  copyHost: (h) => ({ backend: new DeferredBackend(h.backend.inner.bytes.slice()), started: [] }),
  device: (h) => {
    const backend = h.backend;
    // Record each operation the device starts (the backend's pending list only holds unreleased ones).
    const record =
      <A extends unknown[]>(op: (offset: number, ...rest: A) => Promise<void>) =>
      (offset: number, ...rest: A) => {
        h.started.push(offset);
        return op.call(backend, offset, ...rest);
      };
    const counted = Object.assign(Object.create(backend) as DeferredBackend, { read: record(backend.read), write: record(backend.write) });
    return new BlkDevice({ backend: counted, queueSize: 16 });
  },
  async phase1(ctx) {
    const q = await ctx.drv.setupQueue<number>(0);
    ctx.queues.push(q);
    await ctx.drv.driverOk();
    const requests: [number, number, Uint8Array | undefined][] = [
      [T_OUT, 2, new Uint8Array(512).fill(0xa1)],
      [T_IN, 5, undefined],
      [T_OUT, 9, new Uint8Array(1024).fill(0xb2)],
      [T_IN, 7, undefined],
    ];
    requests.forEach(([type, sector, data], token) => {
      const status = span(ctx.m, 1);
      const out = [span(ctx.m, blkHeader(type, sector)), ...(data ? [span(ctx.m, data)] : [])];
      const inn = data ? [status] : [span(ctx.m, 512), status];
      blkBuffers.set(token, inn[0]!);
      q.submit(out, inn, token);
    });
    await q.kick();
    await ticks();
    assert.equal(ctx.h().backend.pending.length, 4);
    // The read of sector 5 completes before the save point (with IN_ORDER it is held back for order).
    ctx.h().backend.pending.splice(1, 1)[0]!.release(true);
    await ticks();
  },
  async phase2(ctx) {
    const backend = ctx.h().backend;
    assert.equal(backend.pending.length, 3, 'the three requests in flight at the save point are in flight again');
    // Completed in reverse order of submission; the flushes that make the writes stable (no
    // VIRTIO_BLK_F_FLUSH negotiated: writethrough) follow.
    while (backend.pending.length > 0) {
      for (const p of backend.pending.splice(0).sort((a, b) => b.offset - a.offset)) p.release(true);
      await ticks();
    }
    await collect(ctx, ctx.queues[0]!, 4, blkBuffers);
  },
  output: (hosts) =>
    `disk ${Buffer.from(hosts.at(-1)!.backend.inner.bytes).toString('hex')} started ${hosts.map((h) => h.started.join(',')).join(' | ')}`,
};

/** The driver's feature choices: the ring alone, or with VIRTIO_F_IN_ORDER (and event index, indirect descriptors). */
const VARIANTS: readonly [string, bigint][] = [
  ['', 0n],
  [', in order', featureSet(VIRTIO_F_IN_ORDER, VIRTIO_F_EVENT_IDX, VIRTIO_F_INDIRECT_DESC)],
];

const BLK_CASES: [RingName, string, bigint, Face][] = [
  ...RING_FORMATS.flatMap((r) => VARIANTS.map(([v, w]) => [r, v, w, 'modern'] as [RingName, string, bigint, Face])),
  ...(['transitional, modern', 'transitional, legacy', 'legacy'] as const).map(
    (f) => ['split', `, ${f}`, 0n, f] as [RingName, string, bigint, Face],
  ),
];

for (const [ring, variant, wanted, face] of BLK_CASES) {
  test(`blk: requests in flight at the save point complete once after restore into a fresh device (${ring} ring${variant})`, async () => {
    const plain = await run(blk, ring, wanted, false, face);
    const saved = await run(blk, ring, wanted, true, face);
    assert.deepEqual(saved.seen, plain.seen);
    assert.equal(saved.seen.length, 4);
    const diff = saved.memory.findIndex((b, i) => b !== plain.memory[i]);
    assert.equal(diff, -1, `guest memory differs at 0x${diff.toString(16)}`);
    // The disk holds both writes; the fresh backend was asked only for the three requests in flight.
    const [disk, started] = saved.output.split(' started ');
    assert.equal(disk, plain.output.split(' started ')[0]);
    const after = new Uint8Array(Buffer.from(disk!.slice('disk '.length), 'hex'));
    assert.ok(after.subarray(2 * 512, 3 * 512).every((b) => b === 0xa1));
    assert.ok(after.subarray(9 * 512, 11 * 512).every((b) => b === 0xb2));
    assert.equal(started, '1024,2560,4608,3584 | 1024,4608,3584', 'before: all four; the fresh backend: the three in flight, in order');
    // The read of sector 7 returned the disk's bytes.
    const read7 = saved.seen.find((s) => s.startsWith('q0 token 3 '))!;
    assert.ok(read7.endsWith(Buffer.from(blkDisk.subarray(7 * 512, 8 * 512)).toString('hex')));
    // With VIRTIO_F_IN_ORDER the read completed before the save point is held back for order: in the
    // snapshot as a held chain, not handed to the fresh device again.
    const snap = decodeSnapshot(saved.saved!.bytes);
    if (face.startsWith('transitional'))
      assert.equal(
        new SnapshotReader(snap.fields, 'function').struct('arbiter').string('committed'),
        face.endsWith('legacy') ? 'legacy' : 'modern',
      );
    const chains = new SnapshotReader(snap.fields, 'function').struct('core').structs('queues', 1)[0]!.struct('ring').structs('chains', 16);
    assert.deepEqual(
      chains.map((c) => [c.u16('id'), c.flag('held')]).map(([, held]) => held),
      wanted === 0n ? [false, false, false] : [false, true, false, false],
    );

    // The same snapshot into a fresh device on a fresh machine over a COPY of guest memory at the save
    // point, with no driver: the device writes what it wrote in the uninterrupted run (guest memory
    // equal but for the driver area, which only the driver writes).
    const copy = new Machine({ ramSize: RAM });
    copy.memory.write(0, saved.saved!.memory);
    const host = saved.saved!.host as BlkHost;
    const { fn } = copy.plugVirtio(blk.device(host), functionOptions(ring, face));
    fn.restore(snap);
    await ticks();
    while (host.backend.pending.length > 0) {
      for (const p of host.backend.pending.splice(0).sort((a, b) => b.offset - a.offset)) p.release(true);
      await ticks();
    }
    const after2 = new Uint8Array(RAM);
    copy.memory.read(0, after2);
    const q0 = new SnapshotReader(fn.snapshot().fields, 'function').struct('core').structs('queues', 1)[0]!;
    const driverArea = Number(q0.u64('driver'));
    const differs = after2.findIndex((b, i) => b !== plain.memory[i] && (i < driverArea || i >= driverArea + 64));
    assert.equal(differs, -1, `guest memory differs at 0x${differs.toString(16)}`);
    assert.deepEqual(host.backend.inner.bytes, after);
  });
}

// ---- net: a receive chain held for the next frame at the save point ----

interface NetHost {
  readonly backend: RecordingNetBackend;
}
const OUR_MAC = mac(0x52, 0x54, 0, 0x12, 0x34, 0x56);
const netBuffers = new Map<number, DmaSpan>();
const net: Kind<NetHost> = {
  host: () => ({ backend: new RecordingNetBackend() }),
  copyHost: () => ({ backend: new RecordingNetBackend() }),
  device: (h) => new VirtioNetDevice({ backend: h.backend, mac: OUR_MAC, queueSize: 16 }),
  async phase1(ctx) {
    const rx = await ctx.drv.setupQueue<number>(0);
    const tx = await ctx.drv.setupQueue<number>(1);
    ctx.queues.push(rx, tx);
    await ctx.drv.driverOk();
    for (const token of [0, 1]) {
      const b = span(ctx.m, 48);
      netBuffers.set(token, b);
      rx.submit([], [b], token);
    }
    await rx.kick();
    // Too big for a 48-byte buffer: dropped, and the buffer it was popped into is kept for the next frame.
    ctx.h().backend.inject(ethFrame(OUR_MAC, mac(2, 0, 0, 0, 0, 1), 80));
    tx.submit([span(ctx.m, new Uint8Array(12)), span(ctx.m, ethFrame(mac(2, 0, 0, 0, 0, 1), OUR_MAC, 30))], [], 10);
    await tx.kick();
    await collect(ctx, tx, 1, netBuffers);
  },
  async phase2(ctx) {
    const [rx, tx] = ctx.queues as [DriverQueue<number>, DriverQueue<number>];
    ctx.h().backend.inject(ethFrame(OUR_MAC, mac(2, 0, 0, 0, 0, 1), 16));
    ctx.h().backend.inject(ethFrame(OUR_MAC, mac(2, 0, 0, 0, 0, 2), 18));
    await collect(ctx, rx, 2, netBuffers);
    tx.submit([span(ctx.m, new Uint8Array(12)), span(ctx.m, ethFrame(mac(2, 0, 0, 0, 0, 1), OUR_MAC, 40))], [], 11);
    await tx.kick();
    await collect(ctx, tx, 1, netBuffers);
  },
  output: (hosts) => hosts.flatMap((h) => h.backend.sent.map((f) => Buffer.from(f).toString('hex'))).join(' '),
};

// ---- console: host bytes waiting for a receive buffer at the save point ----

interface ConsoleHost {
  readonly input: PassThrough;
  readonly out: string[];
}
const consoleBuffers = new Map<number, DmaSpan>();
const consoleKind: Kind<ConsoleHost> = {
  host: () => ({ input: new PassThrough(), out: [] }),
  copyHost: () => ({ input: new PassThrough(), out: [] }),
  device: (h) => {
    const output = new Writable({
      write(chunk: Buffer, _enc, cb) {
        h.out.push(chunk.toString('latin1'));
        cb();
      },
    });
    return new VirtioConsoleDevice({ ports: [{ console: true, host: streamBytePort({ input: h.input, output }) }], queueSize: 16 });
  },
  async phase1(ctx) {
    const rx = await ctx.drv.setupQueue<number>(0);
    const tx = await ctx.drv.setupQueue<number>(1);
    ctx.queues.push(rx, tx);
    await ctx.drv.driverOk();
    // No receive buffer yet: the device keeps the host's bytes.
    ctx.h().input.write('hello from the host');
    tx.submit([span(ctx.m, new TextEncoder().encode('guest says hi'))], [], 20);
    await tx.kick();
    await collect(ctx, tx, 1, consoleBuffers);
  },
  async phase2(ctx) {
    const [rx] = ctx.queues as [DriverQueue<number>];
    for (const token of [0, 1]) {
      const b = span(ctx.m, 8);
      consoleBuffers.set(token, b);
      rx.submit([], [b], token);
    }
    await rx.kick();
    await collect(ctx, rx, 2, consoleBuffers);
  },
  output: (hosts) => hosts.map((h) => h.out.join('')).join(''),
};

// ---- rng: requests answered at once, state carried across ----

interface RngHost {
  /** The entropy source's position (host state). */
  readonly at: { n: number };
}
const rngBuffers = new Map<number, DmaSpan>();
const rng: Kind<RngHost> = {
  host: () => ({ at: { n: 1 } }),
  copyHost: (h) => ({ at: { n: h.at.n } }),
  device: (h) => new RngDevice({ queueSize: 16, entropy: (dst) => dst.forEach((_, i) => (dst[i] = h.at.n++ & 0xff)) }),
  async phase1(ctx) {
    const q = await ctx.drv.setupQueue<number>(0);
    ctx.queues.push(q);
    await ctx.drv.driverOk();
    for (const token of [0, 1]) {
      const b = span(ctx.m, 16);
      rngBuffers.set(token, b);
      q.submit([], [b], token);
    }
    await q.kick();
    await collect(ctx, q, 2, rngBuffers);
  },
  async phase2(ctx) {
    const q = ctx.queues[0]!;
    for (const token of [2, 3]) {
      const b = span(ctx.m, 24);
      rngBuffers.set(token, b);
      q.submit([], [b], token);
    }
    await q.kick();
    await collect(ctx, q, 2, rngBuffers);
  },
  output: () => '',
};

for (const [ring, [variant, wanted]] of RING_FORMATS.flatMap((r) => VARIANTS.map((v) => [r, v] as const))) {
  test(`net: a receive buffer held at the save point takes the next frame after restore (${ring} ring${variant})`, async () => {
    await compare(net, ring, wanted);
  });
  test(`console: host bytes waiting at the save point reach the guest after restore (${ring} ring${variant})`, async () => {
    const saved = await compare(consoleKind, ring, wanted);
    assert.ok(Buffer.from(saved.bytes).includes(Buffer.from('hello from the host')), 'the waiting bytes are in the snapshot');
  });
  test(`rng: requests after restore are served on (${ring} ring${variant})`, async () => {
    await compare(rng, ring, wanted);
  });
}
