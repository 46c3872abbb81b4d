/**
 * Device-side ring processing: chains per second through a device ring's pop() + pushUsed() for 1-
 * and 3-descriptor chains, each beside its bare bookkeeping loop over the same ring memory, measured
 * in the same run (the two alternate batch by batch, so load from other processes hits both alike).
 *
 * A bare loop does only what the format requires of a device, checks nothing and keeps nothing: it
 * reads the avail index (split) or the next descriptor's flags (packed), reads every descriptor of
 * the chain (address, length, flags, next or id) and writes the used element (split) or the used
 * descriptor (packed). It is the reference each ratio is taken against.
 *
 * What is timed: before each batch a driver-side step (outside the timed region) makes every chain
 * of the ring available again; the timed region pops every chain, returns it used with its writable
 * bytes and asks needsInterrupt() once. Each batch is timed on its own and the median batch gives the
 * rate (wall time); the CPU time of every batch (bench/clock.ts) gives the rate beside it. Every bench checks what it moved: the chains the device ring handed out (head, buffers,
 * addresses, lengths) and, after the timed batches, the used entries both the device ring and the
 * bare loop wrote (ids, lengths, flags, used index).
 *
 * The rings are built directly, without the VIRTIO_F_IN_ORDER layer (src/queue/in-order-queue.ts),
 * which wraps them only when that feature is negotiated: these are the rates without it.
 */

import { ArrayGuestMemory } from '../src/memory/guest-memory.js';
import { PackedQueue } from '../src/queue/packed/device-ring.js';
import { SplitQueue } from '../src/queue/split/device-ring.js';
import type { DeviceQueue } from '../src/queue/types.js';
import * as packed from '../src/spec/packed-ring.js';
import * as ring from '../src/spec/ring.js';
import { Clock } from './clock.js';

// The layout constants as this module's own consts, as the rings themselves hold them: V8 11 (Node
// 20) folds a module's own const into optimised code but reloads an imported binding, with a TDZ
// check, at every use, which made a bare loop 2.5x slower and flattered every ratio.
const {
  VIRTQ_AVAIL_IDX,
  VIRTQ_AVAIL_RING,
  VIRTQ_DESC_ADDR,
  VIRTQ_DESC_F_NEXT,
  VIRTQ_DESC_F_WRITE,
  VIRTQ_DESC_FLAGS,
  VIRTQ_DESC_LEN,
  VIRTQ_DESC_NEXT,
  VIRTQ_DESC_SIZE,
  VIRTQ_USED_ELEM_SIZE,
  VIRTQ_USED_IDX,
  VIRTQ_USED_RING,
} = ring;
const { PVIRTQ_DESC_ADDR, PVIRTQ_DESC_FLAGS, PVIRTQ_DESC_ID, PVIRTQ_DESC_LEN, PVIRTQ_DESC_SIZE, VIRTQ_DESC_F_AVAIL, VIRTQ_DESC_F_USED } =
  packed;

const QUEUE_SIZE = 1024;
const MASK = QUEUE_SIZE - 1;
const BUFFER_LEN = 512;
/** Guest address of the first data buffer; the rings lie below it. */
const DATA = 64 * 1024;
const RUN_MS = 1000;
const MAX_BATCHES = 1 << 16;

/** One side of a case, over one ring: the driver's refill (untimed) and the device's work (timed). */
interface Side {
  /** Driver side: make every chain of the ring available again. */
  refill(): void;
  /** Device side: take every available chain and return it used; returns the number taken. */
  drain(): number;
  /** Throws unless the used entries of the last drain() return every chain, in order, with BUFFER_LEN bytes. */
  verifyUsed(): void;
}

/** Guest memory with QUEUE_SIZE / n chains of n buffers: readable header buffers, then one writable buffer. */
abstract class BenchRing {
  readonly memory = new ArrayGuestMemory(DATA + QUEUE_SIZE * BUFFER_LEN);
  readonly dv = new DataView(this.memory.bytes.buffer);
  readonly chains: number;

  constructor(readonly buffersPerChain: number) {
    this.chains = Math.floor(QUEUE_SIZE / buffersPerChain);
  }

  /** Guest address of buffer b of chain c. */
  bufferAddr(c: number, b: number): number {
    return DATA + (c * this.buffersPerChain + b) * BUFFER_LEN;
  }

  /** Check a chain as a device ring handed it out: chain `c`, in order. */
  checkChain(
    chain: {
      readonly count: number;
      readonly readable: number;
      readonly writableBytes: number;
      addr(i: number): number;
      len(i: number): number;
    },
    c: number,
  ): void {
    const n = this.buffersPerChain;
    let ok = chain.count === n && chain.readable === n - 1 && chain.writableBytes === BUFFER_LEN;
    for (let b = 0; ok && b < n; b++) ok = chain.addr(b) === this.bufferAddr(c, b) && chain.len(b) === BUFFER_LEN;
    if (!ok) throw new Error(`bench ring: chain ${c} came out as ${chain.count} buffers (${chain.readable} readable)`);
  }

  /** Driver side: make every chain available again. */
  abstract refill(): void;
  /** The id the device returns chain c with. */
  abstract headOf(c: number): number;
  /** Throws unless the used entries of the last batch return every chain, in order, with BUFFER_LEN bytes. */
  abstract verifyUsed(): void;

  protected fail(what: string): never {
    throw new Error(`bench ring (${this.buffersPerChain}-descriptor): ${what}`);
  }
}

/** A split ring (2.7): the descriptor table is written once, each refill writes the avail ring. */
class SplitBenchRing extends BenchRing {
  readonly desc = 0;
  readonly avail = ring.descTableSize(QUEUE_SIZE);
  readonly used = (this.avail + ring.availRingSize(QUEUE_SIZE) + 3) & ~3;
  private availIdx = 0;

  constructor(buffersPerChain: number) {
    super(buffersPerChain);
    const dv = this.dv;
    for (let c = 0; c < this.chains; c++) {
      for (let b = 0; b < buffersPerChain; b++) {
        const i = c * buffersPerChain + b;
        const at = this.desc + i * VIRTQ_DESC_SIZE;
        const last = b === buffersPerChain - 1;
        dv.setUint32(at + VIRTQ_DESC_ADDR, this.bufferAddr(c, b), true);
        dv.setUint32(at + VIRTQ_DESC_LEN, BUFFER_LEN, true);
        dv.setUint16(at + VIRTQ_DESC_FLAGS, last ? VIRTQ_DESC_F_WRITE : VIRTQ_DESC_F_NEXT, true);
        dv.setUint16(at + VIRTQ_DESC_NEXT, last ? 0 : i + 1, true);
      }
    }
  }

  queue(): SplitQueue {
    return new SplitQueue({
      index: 0,
      size: QUEUE_SIZE,
      memory: this.memory,
      desc: this.desc,
      driver: this.avail,
      device: this.used,
      eventIdx: false,
      indirect: false,
    });
  }

  refill(): void {
    const dv = this.dv;
    let idx = this.availIdx;
    for (let c = 0; c < this.chains; c++) {
      dv.setUint16(this.avail + VIRTQ_AVAIL_RING + (idx & MASK) * 2, c * this.buffersPerChain, true);
      idx = (idx + 1) & 0xffff;
    }
    this.availIdx = idx;
    dv.setUint16(this.avail + VIRTQ_AVAIL_IDX, idx, true);
  }

  /** Chain c's id is its head descriptor's index, c * n. */
  headOf(c: number): number {
    return c * this.buffersPerChain;
  }

  verifyUsed(): void {
    const dv = this.dv;
    const usedIdx = dv.getUint16(this.used + VIRTQ_USED_IDX, true);
    if (usedIdx !== this.availIdx) this.fail(`used.idx ${usedIdx}, avail.idx ${this.availIdx}`);
    for (let c = 0; c < this.chains; c++) {
      const elem = this.used + VIRTQ_USED_RING + ((usedIdx - this.chains + c) & MASK) * VIRTQ_USED_ELEM_SIZE;
      const id = dv.getUint32(elem, true);
      const len = dv.getUint32(elem + 4, true);
      if (id !== this.headOf(c) || len !== BUFFER_LEN) this.fail(`used element ${c}: id ${id}, len ${len}`);
    }
  }
}

/** The split ring's bare bookkeeping loop. */
class SplitBare implements Side {
  private lastAvail = 0;
  private usedIdx = 0;
  /**
   * Every address (and readable length) read, summed modulo 2^32, so that no read is optimised away;
   * an int32 sum, which cannot overflow into a deoptimisation that would halve the loop's rate.
   */
  sink = 0;

  constructor(private readonly ring: SplitBenchRing) {}

  refill(): void {
    this.ring.refill();
  }

  verifyUsed(): void {
    this.ring.verifyUsed();
  }

  drain(): number {
    const { dv, desc, avail, used } = this.ring;
    const availIdx = dv.getUint16(avail + VIRTQ_AVAIL_IDX, true);
    let lastAvail = this.lastAvail;
    let usedIdx = this.usedIdx;
    let sink = 0;
    let n = 0;
    while (lastAvail !== availIdx) {
      const head = dv.getUint16(avail + VIRTQ_AVAIL_RING + (lastAvail & MASK) * 2, true);
      let i = head;
      let len = 0;
      for (;;) {
        const off = desc + i * VIRTQ_DESC_SIZE;
        const flags = dv.getUint16(off + VIRTQ_DESC_FLAGS, true);
        sink = (sink + dv.getUint32(off + VIRTQ_DESC_ADDR, true) + dv.getUint32(off + VIRTQ_DESC_ADDR + 4, true)) | 0;
        // Every buffer's length, as a device needs it; the writable ones' make the used length.
        const bufLen = dv.getUint32(off + VIRTQ_DESC_LEN, true);
        if ((flags & VIRTQ_DESC_F_WRITE) !== 0) len += bufLen;
        else sink = (sink + bufLen) | 0;
        if ((flags & VIRTQ_DESC_F_NEXT) === 0) break;
        i = dv.getUint16(off + VIRTQ_DESC_NEXT, true);
      }
      const elem = used + VIRTQ_USED_RING + (usedIdx & MASK) * VIRTQ_USED_ELEM_SIZE;
      dv.setUint32(elem, head, true);
      dv.setUint32(elem + 4, len, true);
      usedIdx = (usedIdx + 1) & 0xffff;
      dv.setUint16(used + VIRTQ_USED_IDX, usedIdx, true);
      lastAvail = (lastAvail + 1) & 0xffff;
      n++;
    }
    this.lastAvail = lastAvail;
    this.usedIdx = usedIdx;
    this.sink = (this.sink + sink) | 0;
    return n;
  }
}

/**
 * A packed ring (2.8): each refill writes every chain's descriptors at the driver's position, the
 * first descriptor's flags last (2.8.21), with the buffer id c; the position runs on across
 * batches, so chains of 3 cross the end of the ring and the wrap counters flip.
 */
class PackedBenchRing extends BenchRing {
  readonly desc = 0;
  readonly driver = packed.packedDescRingSize(QUEUE_SIZE);
  readonly device = this.driver + 64;
  private pos = 0;
  private wrap = 1;
  /** Where the last refill started: the used descriptors of that batch start there. */
  private batchPos = 0;
  private batchWrap = 1;

  queue(): PackedQueue {
    return new PackedQueue({
      index: 0,
      size: QUEUE_SIZE,
      memory: this.memory,
      desc: this.desc,
      driver: this.driver,
      device: this.device,
      eventIdx: false,
      indirect: false,
    });
  }

  refill(): void {
    const dv = this.dv;
    const n = this.buffersPerChain;
    this.batchPos = this.pos;
    this.batchWrap = this.wrap;
    for (let c = 0; c < this.chains; c++) {
      const head = this.pos;
      let headFlags = 0;
      for (let b = 0; b < n; b++) {
        const at = this.desc + this.pos * PVIRTQ_DESC_SIZE;
        const flags = (b === n - 1 ? VIRTQ_DESC_F_WRITE : VIRTQ_DESC_F_NEXT) | (this.wrap === 1 ? VIRTQ_DESC_F_AVAIL : VIRTQ_DESC_F_USED);
        dv.setUint32(at + PVIRTQ_DESC_ADDR, this.bufferAddr(c, b), true);
        dv.setUint32(at + PVIRTQ_DESC_ADDR + 4, 0, true);
        dv.setUint32(at + PVIRTQ_DESC_LEN, BUFFER_LEN, true);
        dv.setUint16(at + PVIRTQ_DESC_ID, c, true);
        if (b === 0) headFlags = flags;
        else dv.setUint16(at + PVIRTQ_DESC_FLAGS, flags, true);
        if (++this.pos === QUEUE_SIZE) {
          this.pos = 0;
          this.wrap ^= 1;
        }
      }
      dv.setUint16(this.desc + head * PVIRTQ_DESC_SIZE + PVIRTQ_DESC_FLAGS, headFlags, true);
    }
  }

  /** Chain c's buffer id is c. */
  headOf(c: number): number {
    return c;
  }

  verifyUsed(): void {
    const dv = this.dv;
    let pos = this.batchPos;
    let wrap = this.batchWrap;
    for (let c = 0; c < this.chains; c++) {
      const at = this.desc + pos * PVIRTQ_DESC_SIZE;
      const id = dv.getUint16(at + PVIRTQ_DESC_ID, true);
      const len = dv.getUint32(at + PVIRTQ_DESC_LEN, true);
      const flags = dv.getUint16(at + PVIRTQ_DESC_FLAGS, true);
      const want = (wrap === 1 ? VIRTQ_DESC_F_AVAIL | VIRTQ_DESC_F_USED : 0) | VIRTQ_DESC_F_WRITE;
      if (id !== c || len !== BUFFER_LEN || flags !== want)
        this.fail(`used descriptor ${c} at ${pos}: id ${id}, len ${len}, flags 0x${flags.toString(16)}`);
      pos += this.buffersPerChain;
      if (pos >= QUEUE_SIZE) {
        pos -= QUEUE_SIZE;
        wrap ^= 1;
      }
    }
  }
}

/**
 * The packed ring's bare bookkeeping loop. It completes chains in order, so each used descriptor
 * goes where its chain began (2.8.6), with the wrap counter as it was there.
 */
class PackedBare implements Side {
  private pos = 0;
  private wrap = 1;
  /**
   * Every address (and readable length) read, summed modulo 2^32, so that no read is optimised away;
   * an int32 sum, which cannot overflow into a deoptimisation that would halve the loop's rate.
   */
  sink = 0;

  constructor(private readonly ring: PackedBenchRing) {}

  refill(): void {
    this.ring.refill();
  }

  verifyUsed(): void {
    this.ring.verifyUsed();
  }

  drain(): number {
    const { dv, desc } = this.ring;
    let pos = this.pos;
    let wrap = this.wrap;
    let sink = 0;
    let n = 0;
    for (;;) {
      const head = desc + pos * PVIRTQ_DESC_SIZE;
      let off = head;
      let flags = dv.getUint16(off + PVIRTQ_DESC_FLAGS, true);
      // 2.8.1: available when AVAIL equals the wrap counter and USED does not.
      const usedFlags = wrap === 1 ? VIRTQ_DESC_F_AVAIL | VIRTQ_DESC_F_USED : 0;
      if ((flags & (VIRTQ_DESC_F_AVAIL | VIRTQ_DESC_F_USED)) !== (wrap === 1 ? VIRTQ_DESC_F_AVAIL : VIRTQ_DESC_F_USED)) break;
      let len = 0;
      for (;;) {
        sink = (sink + dv.getUint32(off + PVIRTQ_DESC_ADDR, true) + dv.getUint32(off + PVIRTQ_DESC_ADDR + 4, true)) | 0;
        // Every buffer's length, as a device needs it; the writable ones' make the used length.
        const bufLen = dv.getUint32(off + PVIRTQ_DESC_LEN, true);
        if ((flags & VIRTQ_DESC_F_WRITE) !== 0) len += bufLen;
        else sink = (sink + bufLen) | 0;
        if (++pos === QUEUE_SIZE) {
          pos = 0;
          wrap ^= 1;
        }
        if ((flags & VIRTQ_DESC_F_NEXT) === 0) break;
        off = desc + pos * PVIRTQ_DESC_SIZE;
        flags = dv.getUint16(off + PVIRTQ_DESC_FLAGS, true);
      }
      dv.setUint16(head + PVIRTQ_DESC_ID, dv.getUint16(off + PVIRTQ_DESC_ID, true), true);
      dv.setUint32(head + PVIRTQ_DESC_LEN, len, true);
      dv.setUint16(head + PVIRTQ_DESC_FLAGS, usedFlags | (len > 0 ? VIRTQ_DESC_F_WRITE : 0), true);
      n++;
    }
    this.pos = pos;
    this.wrap = wrap;
    this.sink = (this.sink + sink) | 0;
    return n;
  }
}

/** A device ring over a bench ring. */
class DeviceSide implements Side {
  constructor(
    private readonly ring: BenchRing,
    readonly queue: DeviceQueue,
    readonly drain: () => number,
  ) {}

  refill(): void {
    this.ring.refill();
  }

  verifyUsed(): void {
    this.ring.verifyUsed();
  }

  /** One batch through the queue's interface, every chain checked as it comes out (untimed). */
  verifyChains(): void {
    this.ring.refill();
    for (let c = 0; c < this.ring.chains; c++) {
      const chain = this.queue.pop();
      if (chain === null || chain.head !== this.ring.headOf(c)) throw new Error(`bench ring: chain ${c} came out as ${chain?.head}`);
      this.ring.checkChain(chain, c);
      this.queue.pushUsed(chain.head, chain.writableBytes);
    }
    if (this.queue.pop() !== null) throw new Error('bench ring: a chain more than the driver made available');
    this.queue.needsInterrupt();
    this.ring.verifyUsed();
  }
}

// One drain function per ring class, so that each call site sees one class (as a device model's does).
function drainSplit(q: SplitQueue): number {
  let n = 0;
  for (let chain = q.pop(); chain !== null; chain = q.pop()) {
    q.pushUsed(chain.head, chain.writableBytes);
    n++;
  }
  q.needsInterrupt();
  return n;
}

function drainPacked(q: PackedQueue): number {
  let n = 0;
  for (let chain = q.pop(); chain !== null; chain = q.pop()) {
    q.pushUsed(chain.head, chain.writableBytes);
    n++;
  }
  q.needsInterrupt();
  return n;
}

/** Both sides of a case, `rounds` batches each, alternating. */
function warm(device: Side, bare: Side, rounds: number): void {
  for (let i = 0; i < rounds; i++) {
    device.refill();
    device.drain();
    bare.refill();
    bare.drain();
  }
}

/** Chains per second of one side: of the median batch's wall time, and of the CPU time of all batches. */
interface Rate {
  readonly wall: number;
  readonly cpu: number;
}

/**
 * Chains per second of `device` and `bare`, alternating batch by batch for RUN_MS after a warm-up;
 * each wall rate comes from the median batch, so that batches the scheduler preempted (this machine
 * is shared) do not count; each CPU rate from the process's CPU time over every batch.
 */
function measure(device: Side, bare: Side): [Rate, Rate] {
  warm(device, bare, 2000);
  const deviceNs = new Float64Array(MAX_BATCHES);
  const bareNs = new Float64Array(MAX_BATCHES);
  let batches = 0;
  let deviceChains: number;
  let bareChains: number;
  let deviceTotal = 0;
  let bareTotal = 0;
  const deviceClock = new Clock();
  const bareClock = new Clock();
  const stop = process.hrtime.bigint() + BigInt(RUN_MS) * 1_000_000n;
  for (;;) {
    device.refill();
    deviceClock.start();
    const t0 = process.hrtime.bigint();
    deviceChains = device.drain();
    const t1 = process.hrtime.bigint();
    deviceClock.stop();
    bare.refill();
    bareClock.start();
    const t2 = process.hrtime.bigint();
    bareChains = bare.drain();
    const t3 = process.hrtime.bigint();
    bareClock.stop();
    deviceTotal += deviceChains;
    bareTotal += bareChains;
    deviceNs[batches] = Number(t1 - t0);
    bareNs[batches] = Number(t3 - t2);
    batches++;
    if (t3 > stop || batches === MAX_BATCHES) break;
  }
  device.verifyUsed();
  bare.verifyUsed();
  const median = (a: Float64Array): number => a.subarray(0, batches).sort()[batches >> 1]!;
  // A batch that moved nothing would make any rate meaningless.
  if (deviceChains === 0 || bareChains === 0) throw new Error('bench ring: a batch took no chains');
  return [
    { wall: (deviceChains * 1e9) / median(deviceNs), cpu: deviceClock.rates(deviceTotal).cpu },
    { wall: (bareChains * 1e9) / median(bareNs), cpu: bareClock.rates(bareTotal).cpu },
  ];
}

/** One case: a device ring (checked once through its interface) and its bare loop, each over its own ring. */
interface Case {
  readonly format: 'split' | 'packed';
  readonly buffers: number;
  readonly device: DeviceSide;
  readonly bare: Side;
}

function splitCase(buffers: number): Case {
  const deviceRing = new SplitBenchRing(buffers);
  const q = deviceRing.queue();
  const device = new DeviceSide(deviceRing, q, () => drainSplit(q));
  device.verifyChains();
  return { format: 'split', buffers, device, bare: new SplitBare(new SplitBenchRing(buffers)) };
}

function packedCase(buffers: number): Case {
  const deviceRing = new PackedBenchRing(buffers);
  const q = deviceRing.queue();
  const device = new DeviceSide(deviceRing, q, () => drainPacked(q));
  device.verifyChains();
  return { format: 'packed', buffers, device, bare: new PackedBare(new PackedBenchRing(buffers)) };
}

const M = (n: number): string => `${(n / 1e6).toFixed(1)} M/s`;

export async function run(): Promise<void> {
  const cases = [splitCase(1), splitCase(3), packedCase(1), packedCase(3)];
  // Every case runs before any is timed, so that each is timed in the code a device meets chains of
  // both lengths with (code that has seen only one-descriptor chains is faster for them: timed first,
  // a case would be flattered).
  for (const c of cases) warm(c.device, c.bare, 2000);
  const rates = cases.map((c) => measure(c.device, c.bare));
  const table = [
    [
      'ring',
      'chain',
      'device ring',
      'bare loop',
      'device / bare',
      'device ring (cpu)',
      'bare loop (cpu)',
      'device / bare (cpu)',
      'packed / split',
    ],
  ];
  cases.forEach((c, k) => {
    const [device, bare] = rates[k]!;
    let vsSplit = '';
    if (c.format === 'packed') {
      // Packed against split measured alternately as well (the rows' rates come from different
      // seconds, which load from other processes can make unequal).
      const split = cases.find((o) => o.format === 'split' && o.buffers === c.buffers)!;
      const [packedRate, splitRate] = measure(c.device, split.device);
      vsSplit = `${(packedRate.wall / splitRate.wall).toFixed(2)} (cpu ${(packedRate.cpu / splitRate.cpu).toFixed(2)})`;
    }
    table.push([
      c.format,
      `${c.buffers}-descriptor`,
      M(device.wall),
      M(bare.wall),
      (device.wall / bare.wall).toFixed(2),
      M(device.cpu),
      M(bare.cpu),
      (device.cpu / bare.cpu).toFixed(2),
      vsSplit,
    ]);
  });
  const widths = table[0]!.map((_, c) => Math.max(...table.map((r) => r[c]!.length)));
  for (const r of table) console.log(r.map((cell, c) => cell.padEnd(widths[c]!)).join('  '));
  console.log(
    `(queue size ${QUEUE_SIZE}, batches of one full ring, rate of the median batch over ${RUN_MS} ms (cpu: process CPU time over all batches), device ring and bare loop`,
  );
  console.log(
    ' alternating, then packed and split device rings alternating; pop + pushUsed + one needsInterrupt per batch; the driver-side refill is not',
  );
  console.log(' timed; targets: device / bare >= 0.5, packed / split >= 1)');
}
