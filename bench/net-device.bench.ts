/**
 * virtio-net's device half alone: two VirtioNetDevice joined by the in-memory pair, device A's
 * transmitq pre-filled with a batch of frames and device B's receiveq with empty buffers, then one
 * notify of A's transmitq timed until B has placed every frame (the pair delivers in a microtask,
 * so the timed region ends after one await). The rings are filled and reaped by a driver-side ring
 * outside the timed region; no driver code runs inside it. Reference: Buffer.copy of the same frame
 * bytes between the same buffers, one copy per frame, as the devices make (A lends its transmit
 * buffer to the pair, B copies it into its receive buffer). The devices and the reference take
 * alternate batches, each right after A's frames are written and B's buffers read by the previous
 * batch's check, so that both find the same bytes in the cache. Every batch's frames are checked at
 * B (the devices': used length, num_buffers, every byte; the reference's: every byte); a batch that
 * moved nothing fails the bench.
 */

import { createMemoryNetPair } from '../src/device/net/memory-pair.js';
import { VirtioNetDevice } from '../src/device/net/net-device.js';
import { ArrayGuestMemory } from '../src/memory/guest-memory.js';
import { RamDma } from '../src/bus/ram-dma.js';
import { deviceRing, driverRing } from '../src/queue/rings.js';
import type { DeviceQueue, DriverRing } from '../src/queue/types.js';
import type { DmaBuffer } from '../src/memory/dma.js';
import { featureSet, VIRTIO_F_VERSION_1 } from '../src/spec/features.js';
import { VIRTIO_NET_F_MAC, VIRTIO_NET_F_MRG_RXBUF, VIRTIO_NET_HDR_NUM_BUFFERS, VIRTIO_NET_HDR_SIZE } from '../src/spec/net.js';
import { Clock, si } from './clock.js';

const QUEUE_SIZE = 256;
const RX_BUFFER = 2048;
const RAM = 4 << 20;
const SLICE_MS = 300;
const ROUNDS = 5;
const FEATURES = featureSet(VIRTIO_F_VERSION_1, VIRTIO_NET_F_MAC, VIRTIO_NET_F_MRG_RXBUF);

/** One side: guest memory, the device on it, and the driver-side rings the bench fills. */
interface Side {
  readonly device: VirtioNetDevice;
  readonly rx: DriverRing<number>;
  readonly tx: DriverRing<number>;
  readonly buffers: DmaBuffer[];
}

function side(backend: ReturnType<typeof createMemoryNetPair>[0]): Side {
  const memory = new ArrayGuestMemory(RAM);
  const dma = new RamDma(memory, 0, RAM);
  const device = new VirtioNetDevice({ backend, queueSize: QUEUE_SIZE });
  const rings = [0, 1].map((index) => driverRing<number>({ index, size: QUEUE_SIZE, dma, features: FEATURES, layout: 'separate' }));
  const queues: DeviceQueue[] = rings.map((r) =>
    deviceRing({ index: r.index, size: QUEUE_SIZE, memory, areas: r.areas, features: FEATURES }),
  );
  device.attach({
    memory,
    configChanged: () => {},
    // What the transport does on every used-buffer notification: ask the ring whether to interrupt.
    usedBuffers: (index) => void queues[index]!.needsInterrupt(),
    needsReset: (cause) => {
      throw cause;
    },
  });
  device.activate({ features: FEATURES, queues });
  const buffers = Array.from({ length: QUEUE_SIZE }, () => dma.alloc(RX_BUFFER, 16));
  return { device, rx: rings[0]!, tx: rings[1]!, buffers };
}

/** Frame k of a batch: distinct bytes per frame and per batch, so a misplaced or stale frame shows. */
function fillFrame(bytes: Uint8Array, k: number, batch: number): void {
  for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7 + k * 13 + batch) & 0xff;
}

/**
 * Frames per second of `frameLen`-byte frames through A's transmitq and B's receiveq, beside
 * Buffer.copy of the same bytes, over `ms` of batches (a warm-up of the same length first).
 */
async function measure(frameLen: number, ms: number): Promise<{ ours: Clock; copy: Clock; frames: number }> {
  const [ea, eb] = createMemoryNetPair();
  const a = side(ea);
  const b = side(eb);
  // Each tx buffer holds a header (all zero: a complete frame) and a frame, in one descriptor.
  for (const buf of a.buffers) buf.bytes.fill(0, 0, VIRTIO_NET_HDR_SIZE);
  let n = 0;
  const fill = (): void => {
    n++;
    for (let k = 0; k < QUEUE_SIZE; k++) fillFrame(a.buffers[k]!.bytes.subarray(VIRTIO_NET_HDR_SIZE, VIRTIO_NET_HDR_SIZE + frameLen), k, n);
  };
  // Both clocks time `frames` frames: one batch of each per round.
  const run = async (ours: Clock, copy: Clock): Promise<number> => {
    let frames = 0;
    const t0 = performance.now();
    while (performance.now() - t0 < ms) {
      // The reference's batch: the same frame bytes from A's buffers into B's, one Buffer.copy per frame.
      fill();
      copy.start();
      for (let k = 0; k < QUEUE_SIZE; k++)
        Buffer.prototype.copy.call(
          a.buffers[k]!.bytes,
          b.buffers[k]!.bytes,
          VIRTIO_NET_HDR_SIZE,
          VIRTIO_NET_HDR_SIZE,
          VIRTIO_NET_HDR_SIZE + frameLen,
        );
      copy.stop();
      for (let k = 0; k < QUEUE_SIZE; k++)
        if (!sameFrame(a, b, k, frameLen)) throw new Error(`net device bench: the reference's frame ${k} of batch ${n} differs`);
      // The devices' batch.
      fill();
      for (let k = 0; k < QUEUE_SIZE; k++) {
        a.tx.add([{ addr: a.buffers[k]!.addr, len: VIRTIO_NET_HDR_SIZE + frameLen }], [], k);
        b.rx.add([], [{ addr: b.buffers[k]!.addr, len: RX_BUFFER }], k);
      }
      a.tx.publishSync();
      b.rx.publishSync();
      ours.start();
      a.device.queueNotify(1);
      // B's used buffer notification comes in a microtask queued during the notify: this await runs after it.
      await Promise.resolve();
      ours.stop();
      frames += check(a, b, frameLen, n);
    }
    return frames;
  };
  await run(new Clock(), new Clock());
  const ours = new Clock();
  const copy = new Clock();
  const frames = await run(ours, copy);
  return { ours, copy, frames };
}

/** Reap both rings; every frame of batch `n` must be in B's buffer of the same index, whole. Returns the frames. */
function check(a: Side, b: Side, frameLen: number, n: number): number {
  const sent = a.tx.reapSync();
  const got = b.rx.reapSync();
  if (sent.length !== QUEUE_SIZE || got.length !== QUEUE_SIZE)
    throw new Error(`net device bench: ${sent.length} frames sent and ${got.length} received of ${QUEUE_SIZE}`);
  for (let k = 0; k < QUEUE_SIZE; k++) {
    const u = got[k]!;
    const rx = b.buffers[k]!.bytes;
    if (
      u.token !== k ||
      u.len !== VIRTIO_NET_HDR_SIZE + frameLen ||
      (rx[VIRTIO_NET_HDR_NUM_BUFFERS]! | (rx[VIRTIO_NET_HDR_NUM_BUFFERS + 1]! << 8)) !== 1 ||
      !sameFrame(a, b, k, frameLen)
    )
      throw new Error(`net device bench: frame ${k} of batch ${n} arrived as buffer ${u.token}, ${u.len} bytes, or with other bytes`);
  }
  return QUEUE_SIZE;
}

/** Frame k's bytes in B's buffer k are A's. */
function sameFrame(a: Side, b: Side, k: number, frameLen: number): boolean {
  const end = VIRTIO_NET_HDR_SIZE + frameLen;
  return (
    Buffer.compare(b.buffers[k]!.bytes.subarray(VIRTIO_NET_HDR_SIZE, end), a.buffers[k]!.bytes.subarray(VIRTIO_NET_HDR_SIZE, end)) === 0
  );
}

export async function run(): Promise<void> {
  const rows: Record<string, string>[] = [];
  for (const len of [64, 1514]) {
    let o = { wall: 0, cpu: 0 };
    let c = { wall: 0, cpu: 0 };
    // Best of ROUNDS (by CPU rate), the devices' and the reference's each: other processes on a
    // shared machine only ever slow a round down, the reference's as much as the devices'.
    for (let r = 0; r < ROUNDS; r++) {
      const m = await measure(len, SLICE_MS);
      const mo = m.ours.rates(m.frames);
      const mc = m.copy.rates(m.frames);
      if (mo.cpu > o.cpu) o = mo;
      if (mc.cpu > c.cpu) c = mc;
    }
    const target =
      len === 64
        ? `>= 1 M frames/s: ${o.cpu >= 1e6 ? 'met' : 'MISSED'}`
        : `>= 0.5x Buffer.copy: ${o.cpu / c.cpu >= 0.5 ? 'met' : 'MISSED'}`;
    rows.push({
      frame: `${len} B`,
      'frames/s wall': si(o.wall),
      'frames/s cpu': si(o.cpu),
      'MB/s cpu': ((o.cpu * len) / 1e6).toFixed(0),
      'Buffer.copy MB/s cpu': ((c.cpu * len) / 1e6).toFixed(0),
      'ours / Buffer.copy (cpu)': (o.cpu / c.cpu).toFixed(2),
      'ours / Buffer.copy (wall)': (o.wall / c.wall).toFixed(2),
      target,
    });
  }
  console.log(`device A's transmitq -> memory pair -> device B's receiveq, ${QUEUE_SIZE} frames per notify, MRG_RXBUF, no driver timed`);
  console.table(rows);
}
