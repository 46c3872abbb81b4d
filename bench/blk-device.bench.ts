/**
 * virtio-blk's device half through both ring formats: our BlkDevice (memory backend) on a split and
 * on a packed device ring, behind the bare driver of bench/bare-blk-ring.ts, against that ring's own
 * bare device loop behind the same driver. Only the device half is timed (the notify, which for the
 * memory backend does every request before it returns), so the figure is the device model and its
 * ring, copy included; the ratio is to the bare device loop of the same format, in the same run.
 * Each rate is the best over alternating slices of the median step's device time.
 *
 * The device is driven without a transport (attach, activate with the ring, queueNotify), because
 * the transports do not offer VIRTIO_F_RING_PACKED yet; the ring is the one the transport would
 * build (queue/rings.ts deviceRing()) for the negotiated features. After each row the bytes both
 * device halves moved are checked: buffers against the disk, status bytes, and the used elements
 * or descriptors the driver reaped.
 */

import { BlkDevice } from '../src/device/blk/blk-device.js';
import { MemoryBlockBackend } from '../src/device/blk/memory-backend.js';
import { fillPattern } from '../src/cli/fill-pattern.js';
import { ArrayGuestMemory } from '../src/memory/guest-memory.js';
import { deviceRing } from '../src/queue/rings.js';
import { VIRTIO_F_RING_PACKED, VIRTIO_F_VERSION_1, featureSet } from '../src/spec/features.js';
import { VIRTIO_BLK_S_OK } from '../src/spec/blk.js';
import { Clock } from './clock.js';
import { BARE_QUEUE_SIZE, BARE_RING_AREAS, BareBlkRing, BarePackedBlkRing } from './bare-blk-ring.js';

const DISK_BYTES = 16 << 20;
/** Best of ROUNDS slices of SLICE_MS each, ours and the bare loop alternating. */
const ROUNDS = 5;
const SLICE_MS = 150;

type Format = 'split' | 'packed';

interface Row {
  readonly format: Format;
  readonly op: 'read' | 'write';
  readonly size: number;
  readonly depth: number;
  /** Bytes per second of device-half time (median step's wall time). */
  readonly ours: number;
  readonly bare: number;
  /** Buffer.copy of the same bytes between the same disk blocks and data buffers, per median step. */
  readonly copy: number;
  /** Bytes per second of the device half's CPU time, over the rounds, and of the copy's. */
  readonly oursCpu: number;
  readonly copyCpu: number;
}

type Ring = BareBlkRing | BarePackedBlkRing;

function bareRing(format: Format, backend: MemoryBlockBackend, size: number, depth: number): Ring {
  return format === 'split' ? new BareBlkRing(backend.bytes, size, depth) : new BarePackedBlkRing(backend.bytes, size, depth);
}

/** A bare ring with our BlkDevice attached to its memory (the device ring built for the format's features). */
function rig(format: Format, backend: MemoryBlockBackend, size: number, depth: number): { ring: Ring; notify: () => void } {
  const ring = bareRing(format, backend, size, depth);
  const memory = new ArrayGuestMemory(ring.ram);
  const features = format === 'split' ? featureSet(VIRTIO_F_VERSION_1) : featureSet(VIRTIO_F_VERSION_1, VIRTIO_F_RING_PACKED);
  const device = new BlkDevice({ backend, queueSize: BARE_QUEUE_SIZE });
  device.attach({
    memory,
    configChanged: () => {},
    usedBuffers: () => {},
    needsReset: (cause) => {
      throw cause;
    },
  });
  const queue = deviceRing({ index: 0, size: BARE_QUEUE_SIZE, memory, areas: BARE_RING_AREAS, features });
  device.activate({ features, queues: [queue] });
  return { ring, notify: () => device.queueNotify(0) };
}

/**
 * Device-half rate of `step` over one slice: bytes per second of the median step's device time, so
 * that steps the scheduler preempted (this machine is shared) do not count.
 */
function slice(
  bytesPerStep: number,
  ring: { deviceMs: number },
  step: (i: number) => void,
  first: number,
  moved?: (bytes: number) => void,
): number {
  const times: number[] = [];
  const t0 = performance.now();
  while (performance.now() - t0 < SLICE_MS) {
    const d0 = ring.deviceMs;
    step(first + times.length);
    times.push(ring.deviceMs - d0);
  }
  moved?.(times.length * bytesPerStep);
  times.sort((a, b) => a - b);
  return bytesPerStep / (times[times.length >> 1]! / 1000);
}

function measure(format: Format, backend: MemoryBlockBackend, op: 'read' | 'write', size: number, depth: number): Row {
  const rigged = rig(format, backend, size, depth);
  // Our device's notify, on the CPU clock in the slices that measure CPU time (reading it costs
  // about a microsecond, which the wall-clock slices leave out).
  const oursClock = new Clock();
  let onCpuClock = false;
  const ours = {
    ring: rigged.ring,
    notify: (): void => {
      if (!onCpuClock) return rigged.notify();
      oursClock.start();
      rigged.notify();
      oursClock.stop();
    },
  };
  const bare = bareRing(format, backend, size, depth);
  const slots = DISK_BYTES / size;
  const blocks: number[] = [];
  const stepOf =
    (ring: Ring, device?: () => void) =>
    (i: number): void => {
      for (let k = 0; k < depth; k++) blocks[k] = (i * depth + k) % slots;
      ring.run(op === 'write', blocks, device);
    };
  const oursStep = stepOf(ours.ring, ours.notify);
  const bareStep = stepOf(bare);
  slice(size * depth, ours.ring, oursStep, 0);
  slice(size * depth, bare, bareStep, 0);
  // The reference: Buffer.copy of each request's bytes between its disk block and its data buffer,
  // the very buffers our device fills or drains (one copy each, as the device makes).
  const copyClock = new Clock();
  const copyRef = { deviceMs: 0 };
  const buffers = Array.from({ length: depth }, (_, k) => ours.ring.buffer(k));
  const copyStep = (i: number): void => {
    if (onCpuClock) copyClock.start();
    const t0 = performance.now();
    for (let k = 0; k < depth; k++) {
      const at = ((i * depth + k) % slots) * size;
      if (op === 'read') Buffer.prototype.copy.call(backend.bytes, buffers[k]!, 0, at, at + size);
      else Buffer.prototype.copy.call(buffers[k]!, backend.bytes, at, 0, size);
    }
    copyRef.deviceMs += performance.now() - t0;
    if (onCpuClock) copyClock.stop();
  };
  slice(size * depth, copyRef, copyStep, 0);
  let o = 0;
  let b = 0;
  let c = 0;
  let oursBytes = 0;
  let copyBytes = 0;
  for (let r = 0; r < ROUNDS; r++) {
    o = Math.max(o, slice(size * depth, ours.ring, oursStep, r * 1_000_000));
    b = Math.max(b, slice(size * depth, bare, bareStep, r * 1_000_000));
    c = Math.max(c, slice(size * depth, copyRef, copyStep, r * 1_000_000));
    onCpuClock = true;
    slice(size * depth, ours.ring, oursStep, r * 1_000_000 + 500_000, (n) => (oursBytes += n));
    slice(size * depth, copyRef, copyStep, r * 1_000_000 + 500_000, (n) => (copyBytes += n));
    onCpuClock = false;
  }
  verify(backend.bytes, ours.ring, oursStep, op, size, depth);
  verify(backend.bytes, bare, bareStep, op, size, depth);
  return {
    format,
    op,
    size,
    depth,
    ours: o,
    bare: b,
    copy: c,
    oursCpu: oursBytes / (oursClock.cpuMs / 1000),
    copyCpu: copyBytes / (copyClock.cpuMs / 1000),
  };
}

/** One more step on fresh buffer contents: every request's status is OK and its buffer equals its block. */
function verify(disk: Uint8Array, ring: Ring, step: (i: number) => void, op: string, size: number, depth: number): void {
  const i = ROUNDS * 1_000_000 + 7;
  for (let k = 0; k < depth; k++) ring.buffer(k).fill(op === 'write' ? i + k : 0);
  step(i);
  for (let k = 0; k < depth; k++) {
    const at = ((i * depth + k) % (DISK_BYTES / size)) * size;
    if (ring.status(k) !== VIRTIO_BLK_S_OK || Buffer.compare(ring.buffer(k), disk.subarray(at, at + size)) !== 0)
      throw new Error(`blk device bench: ${op} ${size} B, request ${k}: status ${ring.status(k)} or its buffer and block differ`);
  }
}

const MB = (r: number): string => (r / 1e6).toFixed(0).padStart(7);

export async function run(): Promise<void> {
  const backend = new MemoryBlockBackend(DISK_BYTES);
  fillPattern(backend.bytes, DISK_BYTES);
  const rows: Row[] = [];
  for (const size of [4096, 65536])
    for (const depth of [1, 32])
      for (const op of ['read', 'write'] as const)
        for (const format of ['split', 'packed'] as const) rows.push(measure(format, backend, op, size, depth));
  console.log(
    '                                   device half MB/s (median step, wall)        / Buffer.copy                 CPU MB/s (process)',
  );
  console.log(
    'ring    op     size  per notify     ours     bare   ours/bare   copy   wall   target            ours     copy   ratio   packed / split',
  );
  for (const r of rows) {
    const split = rows.find((s) => s.format === 'split' && s.op === r.op && s.size === r.size && s.depth === r.depth)!;
    const want = r.size === 4096 ? 0.5 : 0.85;
    const ratio = r.ours / r.copy;
    console.log(
      `${r.format.padEnd(7)} ${r.op.padEnd(5)} ${(r.size / 1024).toString().padStart(3)} KiB  ${r.depth.toString().padStart(10)}  ${MB(r.ours)}  ${MB(r.bare)}   ${(r.ours / r.bare).toFixed(2).padStart(9)}  ${MB(r.copy)}  ${ratio.toFixed(2).padStart(5)}   ${`>= ${want} ${ratio >= want ? 'met' : 'MISSED'}`.padEnd(14)} ${MB(r.oursCpu)}  ${MB(r.copyCpu)}   ${(r.oursCpu / r.copyCpu).toFixed(2).padStart(5)}   ${r.format === 'split' ? '' : (r.ours / split.ours).toFixed(2)}`,
    );
  }
}
