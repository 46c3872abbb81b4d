/**
 * Device-side split-ring processing: chains per second through SplitQueue.pop() + pushUsed() for
 * 1- and 3-descriptor chains, beside a bare ring-bookkeeping loop (same ring, same accesses, no
 * checks, no chain objects) measured in the same run.
 *
 * What is timed: the descriptor table is built once; before each batch a driver-side step (outside
 * the timed region) writes the avail ring entries and publishes avail.idx; the timed region pops
 * every chain of the batch, pushes its used element and asks needsInterrupt() once. A second figure
 * ("with refill") also times the driver-side step, amortised over the batch. Each batch is timed on
 * its own and the median batch gives the rate.
 */

import { ArrayGuestMemory } from '../src/memory/guest-memory.js';
import { SplitQueue } from '../src/queue/split/device-ring.js';
import {
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
  availRingSize,
  descTableSize,
} from '../src/spec/ring.js';

const QUEUE_SIZE = 1024;
const BUFFER_LEN = 512;
const RUN_MS = 1000;
const MAX_BATCHES = 1 << 16;

/** A ring in guest memory whose descriptor table holds QUEUE_SIZE / n chains of n buffers. */
class BenchRing {
  readonly memory = new ArrayGuestMemory(QUEUE_SIZE * BUFFER_LEN + 64 * 1024);
  readonly desc = 0;
  readonly avail = descTableSize(QUEUE_SIZE);
  readonly used = (this.avail + availRingSize(QUEUE_SIZE) + 3) & ~3;
  readonly chains: number;
  private readonly dv = new DataView(this.memory.bytes.buffer);
  private availIdx = 0;

  constructor(readonly buffersPerChain: number) {
    this.chains = Math.floor(QUEUE_SIZE / buffersPerChain);
    const data = 64 * 1024;
    for (let c = 0; c < this.chains; c++) {
      for (let b = 0; b < buffersPerChain; b++) {
        const i = c * buffersPerChain + b;
        const at = this.desc + i * VIRTQ_DESC_SIZE;
        const last = b === buffersPerChain - 1;
        // A request's shape: readable header buffers, then one writable buffer.
        this.dv.setUint32(at + VIRTQ_DESC_ADDR, data + i * BUFFER_LEN, true);
        this.dv.setUint32(at + VIRTQ_DESC_LEN, BUFFER_LEN, true);
        this.dv.setUint16(at + VIRTQ_DESC_FLAGS, last ? VIRTQ_DESC_F_WRITE : VIRTQ_DESC_F_NEXT, true);
        this.dv.setUint16(at + VIRTQ_DESC_NEXT, last ? 0 : i + 1, true);
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

  /** Driver side: make every chain available again. */
  refill(): void {
    const dv = this.dv;
    let idx = this.availIdx;
    for (let c = 0; c < this.chains; c++) {
      dv.setUint16(this.avail + VIRTQ_AVAIL_RING + (idx & (QUEUE_SIZE - 1)) * 2, c * this.buffersPerChain, true);
      idx = (idx + 1) & 0xffff;
    }
    this.availIdx = idx;
    dv.setUint16(this.avail + VIRTQ_AVAIL_IDX, idx, true);
  }
}

/** The device's ring work with every check and the chain object stripped out: the floor we compare with. */
class BareRing {
  private lastAvail = 0;
  private usedIdx = 0;
  private readonly dv: DataView;
  sink = 0;

  constructor(private readonly ring: BenchRing) {
    this.dv = new DataView(ring.memory.bytes.buffer);
  }

  processAll(): number {
    const dv = this.dv;
    const { desc, avail, used } = this.ring;
    const availIdx = dv.getUint16(avail + VIRTQ_AVAIL_IDX, true);
    let n = 0;
    while (this.lastAvail !== availIdx) {
      let i = dv.getUint16(avail + VIRTQ_AVAIL_RING + (this.lastAvail & (QUEUE_SIZE - 1)) * 2, true);
      const head = i;
      let len = 0;
      for (;;) {
        const off = desc + i * VIRTQ_DESC_SIZE;
        const flags = dv.getUint16(off + VIRTQ_DESC_FLAGS, true);
        this.sink += dv.getUint32(off + VIRTQ_DESC_ADDR, true) + dv.getUint32(off + VIRTQ_DESC_ADDR + 4, true);
        if ((flags & VIRTQ_DESC_F_WRITE) !== 0) len += dv.getUint32(off + VIRTQ_DESC_LEN, true);
        if ((flags & VIRTQ_DESC_F_NEXT) === 0) break;
        i = dv.getUint16(off + VIRTQ_DESC_NEXT, true);
      }
      const elem = used + VIRTQ_USED_RING + (this.usedIdx & (QUEUE_SIZE - 1)) * VIRTQ_USED_ELEM_SIZE;
      dv.setUint32(elem, head, true);
      dv.setUint32(elem + 4, len, true);
      this.usedIdx = (this.usedIdx + 1) & 0xffff;
      dv.setUint16(used + VIRTQ_USED_IDX, this.usedIdx, true);
      this.lastAvail = (this.lastAvail + 1) & 0xffff;
      n++;
    }
    return n;
  }
}

function processQueue(q: SplitQueue): number {
  let n = 0;
  for (let chain = q.pop(); chain !== null; chain = q.pop()) {
    q.pushUsed(chain.head, chain.writableBytes);
    n++;
  }
  q.needsInterrupt();
  return n;
}

interface Figure {
  readonly chainsPerSec: number;
  readonly withRefillPerSec: number;
}

/**
 * Run batches for RUN_MS, timing each batch's `work` alone and `refill + work`; rates come from
 * the median batch, so that batches the scheduler preempted (this machine is shared) do not count.
 */
function measure(ring: BenchRing, work: () => number): Figure {
  // Warm up so the figures are for optimised code.
  for (let i = 0; i < 2000; i++) {
    ring.refill();
    work();
  }
  const workNs = new Float64Array(MAX_BATCHES);
  const batchNs = new Float64Array(MAX_BATCHES);
  let batches = 0;
  let chains = 0;
  const stop = process.hrtime.bigint() + BigInt(RUN_MS) * 1_000_000n;
  while (batches < MAX_BATCHES) {
    const t0 = process.hrtime.bigint();
    ring.refill();
    const t1 = process.hrtime.bigint();
    chains = work();
    const t2 = process.hrtime.bigint();
    workNs[batches] = Number(t2 - t1);
    batchNs[batches] = Number(t2 - t0);
    batches++;
    if (t2 > stop) break;
  }
  const median = (a: Float64Array): number => a.subarray(0, batches).sort()[batches >> 1]!;
  return { chainsPerSec: (chains * 1e9) / median(workNs), withRefillPerSec: (chains * 1e9) / median(batchNs) };
}

const M = (n: number): string => `${(n / 1e6).toFixed(1)} M/s`;

export async function run(): Promise<void> {
  const rows: string[][] = [['chain', 'SplitQueue', 'with refill', 'bare loop', 'ratio']];
  for (const buffers of [1, 3]) {
    const ring = new BenchRing(buffers);
    const q = ring.queue();
    const queueFig = measure(ring, () => processQueue(q));
    const bareRing = new BenchRing(buffers);
    const bare = new BareRing(bareRing);
    const bareFig = measure(bareRing, () => bare.processAll());
    rows.push([
      `${buffers}-descriptor`,
      M(queueFig.chainsPerSec),
      M(queueFig.withRefillPerSec),
      M(bareFig.chainsPerSec),
      (queueFig.chainsPerSec / bareFig.chainsPerSec).toFixed(2),
    ]);
  }
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  for (const r of rows) console.log(r.map((cell, c) => cell.padEnd(widths[c]!)).join('  '));
  console.log(
    `(queue size ${QUEUE_SIZE}, batches of one full ring, rate of the median batch over ${RUN_MS} ms; "SplitQueue" and "bare loop" time`,
  );
  console.log(' pop + pushUsed + one needsInterrupt per batch; "with refill" adds the driver-side avail ring refill)');
}
