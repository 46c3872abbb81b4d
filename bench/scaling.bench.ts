/**
 * How cost grows (issue 17, item 4). Three tables, each measured:
 * - per-chain cost of the device-side split ring against queue size (256 to 32768) and chain length
 *   (1 to 64 descriptors, direct and in an indirect table): a driver-side ring fills the whole ring
 *   outside the timed region; the device pops every chain, checks it and returns it (pushUsed), with
 *   one interrupt decision per batch. ns per chain and per descriptor (median batch, and CPU time); the used
 *   elements are checked after every batch (ids and count), so a ring that moved nothing fails. The
 *   indirect rows have length - 1 chains per batch (see chainCost()), the direct ones a full ring;
 *   a second table takes 256 chains a batch at every queue size, so the batch's working set is the same.
 * - notify-to-interrupt latency of virtio-blk (our driver and device, in-process machine, MSI-X),
 *   at each queue size: from the notify write on the bus to the MSI-X message reaching the
 *   interrupt listener, median of 2000 one-sector reads (the read's bytes are checked).
 * - host memory of virtio-blk functions (device and driver objects; guest RAM excluded) against
 *   queue size and against the number of functions on one in-process bus, each function opened and
 *   after a full queue of requests: heap + external + array buffers, after a forced GC.
 */

import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { ArrayGuestMemory } from '../src/memory/guest-memory.js';
import { RamDma } from '../src/bus/ram-dma.js';
import { deviceRing, driverRing } from '../src/queue/rings.js';
import { featureSet, VIRTIO_F_INDIRECT_DESC, VIRTIO_F_VERSION_1 } from '../src/spec/features.js';
import { Machine } from '../src/platform/machine.js';
import { bdf } from '../src/bus/pci-bus.js';
import { BlkDevice } from '../src/device/blk/blk-device.js';
import { MemoryBlockBackend } from '../src/device/blk/memory-backend.js';
import { BlkDriver } from '../src/driver/blk/blk-driver.js';
import { Clock } from './clock.js';

const QUEUE_SIZES = [256, 1024, 4096, 32768];
const CHAIN_LENGTHS = [1, 4, 16, 64];
const BUFFER = 64;
const RUN_MS = 400;

/**
 * ns per chain of `length` descriptors on a split ring of `size`, direct or indirect: the median
 * batch's wall time (a batch the scheduler preempted does not decide it), and the process's
 * CPU time over every batch.
 */
function chainCost(size: number, length: number, indirect: boolean, batchLimit = Infinity): { wall: number; cpu: number } {
  const features = indirect ? featureSet(VIRTIO_F_VERSION_1, VIRTIO_F_INDIRECT_DESC) : featureSet(VIRTIO_F_VERSION_1);
  const ram = 4 * size * 16 + 64 * 1024 + size * 64 * 16 + (indirect ? size * length * 16 + size * 16 : 0) + (1 << 20);
  const memory = new ArrayGuestMemory(ram);
  const dma = new RamDma(memory, 0, ram);
  const drv = driverRing<number>({ index: 0, size, dma, features, layout: 'separate' });
  const dev = deviceRing({ index: 0, size, memory, areas: drv.areas, features });
  // Every chain reads the same `length` buffers (their bytes do not matter to the ring).
  const data = dma.alloc(BUFFER * length, 16);
  const spans = Array.from({ length }, (_, i) => ({ addr: data.addr + i * BUFFER, len: BUFFER }));
  // The driver puts a chain in an indirect table only when its buffers do not fit in the ring
  // directly: a chain the device holds for the whole run leaves length - 1 descriptors free.
  let chains = Math.min(Math.floor(size / length), batchLimit);
  if (indirect) {
    const blocker = dma.alloc(BUFFER, 16);
    drv.add(
      Array.from({ length: size - length + 1 }, () => ({ addr: blocker.addr, len: BUFFER })),
      [],
      -1,
    );
    drv.publishSync();
    if (dev.pop()?.count !== size - length + 1) throw new Error('scaling bench: the blocking chain did not arrive whole');
    chains = length - 1;
  }
  const clock = new Clock();
  let done = 0;
  const perChain: number[] = [];
  const t0 = performance.now();
  for (let batch = 0; performance.now() - t0 < RUN_MS || batch < 3; batch++) {
    for (let k = 0; k < chains; k++) drv.add(spans, [], k);
    drv.publishSync();
    if (batch > 0) clock.start();
    const b0 = performance.now();
    let popped = 0;
    for (let chain = dev.pop(); chain !== null; chain = dev.pop()) {
      if (chain.count !== length) throw new Error(`scaling bench: a chain of ${chain.count} buffers, not ${length}`);
      dev.pushUsed(chain.head, 0);
      popped++;
    }
    dev.needsInterrupt();
    const b1 = performance.now();
    if (batch > 0) clock.stop();
    if (batch > 0) perChain.push(((b1 - b0) * 1e6) / chains);
    const used = drv.reapSync();
    if (popped !== chains || used.length !== chains)
      throw new Error(`scaling bench: ${popped} chains popped, ${used.length} used, of ${chains}`);
    if (batch > 0) done += chains;
  }
  return { wall: perChain.sort((a, b) => a - b)[perChain.length >> 1]!, cpu: (clock.cpuMs * 1e6) / done };
}

/** Median notify-to-interrupt latency (µs) of one-sector reads on a blk function with queue size `size`. */
async function notifyToInterrupt(size: number): Promise<number> {
  const machine = new Machine({ ramSize: 64 << 20 });
  const backend = new MemoryBlockBackend(1 << 20);
  for (let i = 0; i < backend.bytes.length; i++) backend.bytes[i] = (i * 31) & 0xff;
  const { bdf: fn } = machine.plugVirtio(new BlkDevice({ backend, queueSize: size }));
  const blk = await BlkDriver.open(machine.bus, fn, { queueSize: size });
  let notified = 0;
  const latencies: number[] = [];
  const bus = machine.bus;
  const memWrite = bus.memWrite.bind(bus);
  bus.memWrite = (addr, width, value) => {
    notified = performance.now();
    return memWrite(addr, width, value);
  };
  const stop = machine.listen(fn, () => {
    if (notified !== 0) latencies.push((performance.now() - notified) * 1000);
    notified = 0;
  });
  for (let i = 0; i < 2000; i++) {
    const sector = i % 2048;
    const got = await blk.read(sector, 1);
    if (got[0] !== ((sector * 512 * 31) & 0xff)) throw new Error(`scaling bench: sector ${sector} read back other bytes`);
  }
  stop();
  await blk.close();
  if (latencies.length === 0) throw new Error('scaling bench: no interrupt seen');
  return latencies.sort((a, b) => a - b)[latencies.length >> 1]!;
}

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

function hostBytes(): number {
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.external + m.arrayBuffers;
}

/** Host bytes per blk function: `count` functions of queue size `size` on one bus, each opened and through a full queue of reads. */
async function memoryPerFunction(size: number, count: number): Promise<number> {
  // Guest RAM and disks are allocated before the first reading, so only the functions are counted.
  const machine = new Machine({ ramSize: 64 << 20 });
  const backends = Array.from({ length: count }, () => new MemoryBlockBackend(64 << 10));
  const before = hostBytes();
  const drivers: BlkDriver[] = [];
  for (let i = 0; i < count; i++) {
    const { bdf: fn } = machine.plugVirtio(new BlkDevice({ backend: backends[i]!, queueSize: size }), { at: bdf(0, i >> 1, i & 1) });
    drivers.push(await BlkDriver.open(machine.bus, fn, { queueSize: size }));
  }
  for (const d of drivers) await Promise.all(Array.from({ length: 64 }, (_, k) => d.read(k, 1)));
  const after = hostBytes();
  for (const d of drivers) await d.close();
  return (after - before) / count;
}

export async function run(): Promise<void> {
  console.log('per-chain cost, device-side split ring: ns per chain, median batch (per descriptor); CPU ns per chain over all batches');
  const rows: Record<string, string>[] = [];
  for (const indirect of [false, true])
    for (const length of CHAIN_LENGTHS.filter((l) => !indirect || l > 1)) {
      const row: Record<string, string> = { chain: `${length} ${indirect ? 'indirect' : 'direct'}` };
      for (const size of QUEUE_SIZES) {
        if (!indirect && length > size) continue;
        const ns = chainCost(size, length, indirect);
        row[`queue ${size}`] = `${ns.wall.toFixed(0)} (${(ns.wall / length).toFixed(1)}) cpu ${ns.cpu.toFixed(0)}`;
      }
      rows.push(row);
    }
  console.table(rows);
  // The same rows with 256 chains a batch at every queue size: what a full ring costs beyond them is
  // its working set (guest ring areas and per-entry state), not work per chain.
  const fixed: Record<string, string>[] = [];
  for (const length of [1, 4]) {
    const row: Record<string, string> = { chain: `${length} direct, 256 a batch` };
    for (const size of QUEUE_SIZES) {
      const ns = chainCost(size, length, false, 256);
      row[`queue ${size}`] = `${ns.wall.toFixed(0)} (${(ns.wall / length).toFixed(1)}) cpu ${ns.cpu.toFixed(0)}`;
    }
    fixed.push(row);
  }
  console.table(fixed);
  await notifyToInterrupt(256); // warm-up: the first sizes would otherwise be timed in unoptimised code
  const lat: Record<string, string> = {};
  for (const size of QUEUE_SIZES) lat[`queue ${size}`] = `${(await notifyToInterrupt(size)).toFixed(1)} µs`;
  console.log('notify-to-interrupt latency, virtio-blk one-sector read, median of 2000');
  console.table([lat]);
  const mem: Record<string, string>[] = [];
  // Eight functions per queue size: one function's memory is within the GC's noise.
  for (const size of QUEUE_SIZES)
    mem.push({ functions: '8', queue: String(size), 'KiB per function': ((await memoryPerFunction(size, 8)) / 1024).toFixed(0) });
  for (const count of [64])
    mem.push({ functions: String(count), queue: '256', 'KiB per function': ((await memoryPerFunction(256, count)) / 1024).toFixed(0) });
  console.log('host memory per virtio-blk function (device + driver objects, guest RAM excluded)');
  console.table(mem);
}
