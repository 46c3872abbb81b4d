/**
 * Every device model in a small, deterministic configuration for fuzzing: small queues (so a walk of
 * every descriptor table stays cheap), in-memory backends, host-side hooks the input can drive
 * (frames arriving for net, bytes arriving on a console port) and bounded counters of what the
 * device sent out, so output growth is visible.
 */

import { PassThrough, Writable } from 'node:stream';
import type { VirtioDevice } from '../../src/core/virtio-device.js';
import { BlkDevice } from '../../src/device/blk/blk-device.js';
import type { BlockBackend } from '../../src/device/blk/backend.js';
import { MemoryBlockBackend } from '../../src/device/blk/memory-backend.js';
import { VirtioConsoleDevice } from '../../src/device/console/console-device.js';
import type { NetBackend, NetBackendPort } from '../../src/device/net/backend.js';
import { VirtioNetDevice } from '../../src/device/net/net-device.js';
import { RngDevice } from '../../src/device/rng/rng-device.js';
import { streamBytePort } from '../../src/device/console/port-streams.js';
import { DeferredBackend } from '../../test/helpers/deferred-backend.js';

/** Queue size of every fuzzed device: small enough to scan, large enough for real chains. */
export const ZOO_QUEUE_SIZE = 8;

export interface ZooDevice {
  readonly name: string;
  readonly device: VirtioDevice;
  /** The host offers bytes to the device (a frame for net, console input); no-op for others. */
  hostInput(port: number, bytes: Uint8Array): void;
  /** Bytes the device has sent to the host so far (tx frames, console output). */
  readonly hostOutputBytes: () => number;
  /** blk-held: the backend operations waiting for the harness to release them. */
  readonly held?: DeferredBackend;
  /** console-stuck: bytes the device wrote to a host stream after it had reported itself full. */
  readonly writesPastFull?: () => number;
}

/** A net backend whose frames the harness injects and whose sends it only counts. */
class HarnessNetBackend implements NetBackend {
  port: NetBackendPort | undefined;
  sent = 0;
  attach(port: NetBackendPort): void {
    this.port = port;
  }
  send(frame: Uint8Array): void {
    this.sent += frame.byteLength;
  }
  async close(): Promise<void> {}
}

function counter(): { stream: Writable; bytes: () => number } {
  let n = 0;
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      n += chunk.byteLength;
      cb();
    },
  });
  return { stream, bytes: () => n };
}

/** Every kind, by index, so one input byte picks one. */
export const ZOO_KINDS = ['rng', 'blk', 'blk-ro-mq', 'net', 'net-mq', 'console', 'console-multiport'] as const;
/**
 * Also: blk whose backend completes every request on a later turn (in-flight limits, stalls, resets
 * mid-I/O); blk whose backend operations wait until the harness releases them, in any order, with
 * success or an I/O error (completions across resets); a console whose host streams never drain.
 */
export type ZooKind = (typeof ZOO_KINDS)[number] | 'blk-async' | 'blk-held' | 'console-stuck';

/** High-water mark of a console-stuck host stream: a few chains fill it. */
export const STUCK_HIGH_WATER_MARK = 64;

/**
 * A host stream that takes its first chunk and never finishes it, so it never drains; counts the
 * bytes it is handed after write() returned false (a writer that ignores backpressure grows its
 * buffer without bound).
 */
export function stuckStream(): { stream: Writable; pastFull: () => number } {
  let full = false;
  let pastFull = 0;
  const stream = new Writable({ highWaterMark: STUCK_HIGH_WATER_MARK, write() {} });
  const write = stream.write.bind(stream) as (chunk: Uint8Array) => boolean;
  stream.write = ((chunk: Uint8Array) => {
    if (full) pastFull += chunk.byteLength;
    const ok = write(chunk);
    full ||= !ok;
    return ok;
  }) as Writable['write'];
  return { stream, pastFull: () => pastFull };
}

/** A 16-sector disk with no zero byte, so that data read into zeroed guest memory always shows. */
function disk(): Uint8Array {
  return Uint8Array.from({ length: 16 * 512 }, (_, i) => ((i * 31) % 255) + 1);
}

/** A backend that completes each operation on a later event-loop turn, as a file would. */
function asyncBackend(inner: MemoryBlockBackend): BlockBackend {
  const later = (op: () => void): Promise<void> => new Promise<void>((resolve) => setImmediate(resolve)).then(op);
  return {
    size: inner.size,
    readOnly: inner.readOnly,
    read: (offset, iov) => later(() => inner.read(offset, iov)),
    write: (offset, iov) => later(() => inner.write(offset, iov)),
    flush: () => later(() => inner.flush()),
    writeZeroes: (offset, length) => later(() => inner.writeZeroes(offset, length)),
    discard: (offset, length) => later(() => inner.discard(offset, length)),
  };
}

export function makeZooDevice(kind: ZooKind, queueSize = ZOO_QUEUE_SIZE): ZooDevice {
  const q = queueSize;
  switch (kind) {
    case 'rng': {
      let seed = 1;
      const device = new RngDevice({
        queueSize: q,
        maxBytesPerRequest: 4096,
        entropy: (dst) => dst.forEach((_, i) => (dst[i] = seed++ & 0xff)),
      });
      return { name: kind, device, hostInput: () => {}, hostOutputBytes: () => 0 };
    }
    case 'blk-async': {
      const device = new BlkDevice({
        backend: asyncBackend(new MemoryBlockBackend(disk())),
        queueSize: q,
        maxInFlight: 3,
        maxDiscardSeg: 4,
        maxDiscardSectors: 8,
        sizeMax: 4096,
      });
      return { name: kind, device, hostInput: () => {}, hostOutputBytes: () => 0 };
    }
    case 'blk-held': {
      const held = new DeferredBackend(disk());
      const device = new BlkDevice({ backend: held, queueSize: q, maxInFlight: 4, sizeMax: 4096 });
      return { name: kind, device, hostInput: () => {}, hostOutputBytes: () => 0, held };
    }
    case 'blk':
    case 'blk-ro-mq': {
      const ro = kind === 'blk-ro-mq';
      const backend = new MemoryBlockBackend(16 * 512, { readOnly: ro });
      const device = new BlkDevice({
        backend,
        queueSize: q,
        numQueues: ro ? 2 : 1,
        readOnly: ro,
        maxDiscardSeg: 4,
        maxDiscardSectors: 8,
        sizeMax: 4096,
      });
      return { name: kind, device, hostInput: () => {}, hostOutputBytes: () => 0 };
    }
    case 'net':
    case 'net-mq': {
      const backend = new HarnessNetBackend();
      const device = new VirtioNetDevice({
        backend,
        mac: Uint8Array.of(0x52, 0x54, 0, 0x12, 0x34, 0x56),
        queueSize: q,
        queuePairs: kind === 'net-mq' ? 2 : 1,
      });
      return { name: kind, device, hostInput: (_p, bytes) => backend.port?.receive(bytes), hostOutputBytes: () => backend.sent };
    }
    case 'console':
    case 'console-multiport': {
      const multi = kind === 'console-multiport';
      const outs = [counter(), counter()];
      const ins = [new PassThrough(), new PassThrough()];
      const ports = (multi ? [0, 1] : [0]).map((i) => ({
        console: i === 0,
        name: `p${i}`,
        host: streamBytePort({ input: ins[i]!, output: outs[i]!.stream }),
      }));
      const device = new VirtioConsoleDevice({ ports, multiport: multi, queueSize: q, size: { cols: 80, rows: 25 } });
      return {
        name: kind,
        device,
        hostInput: (p, bytes) => void ins[p % ports.length]!.write(bytes),
        hostOutputBytes: () => outs[0]!.bytes() + outs[1]!.bytes(),
      };
    }
    case 'console-stuck': {
      const outs = [stuckStream(), stuckStream()];
      const ins = [new PassThrough(), new PassThrough()];
      const ports = [0, 1].map((i) => ({ console: i === 0, name: `p${i}`, streams: { input: ins[i]!, output: outs[i]!.stream } }));
      const device = new VirtioConsoleDevice({ ports, multiport: true, queueSize: q, size: { cols: 80, rows: 25 } });
      return {
        name: kind,
        device,
        hostInput: (p, bytes) => void ins[p % 2]!.write(bytes),
        hostOutputBytes: () => 0,
        writesPastFull: () => outs[0]!.pastFull() + outs[1]!.pastFull(),
      };
    }
  }
}
