/**
 * virtio-net end to end on two in-process machines joined by the in-memory pair: frames per second
 * and MB/s from one driver's send() to the other driver's receive(), for small and full-size frames,
 * with and without MRG_RXBUF; and virtio-console bytes per second from a driver port to a host stream.
 * Everything (both drivers, both devices, the rings) runs on one thread, so the figures are the cost of
 * our code path, not of any wire. Each round sends a window of 32 frames (all sent before any is
 * awaited, as a network stack sends, or each awaited in turn) and then receives them; every byte is
 * checked. Buffer.copy of the same frames between two buffers is the reference, timed in the same
 * blocks.
 */

import { PassThrough } from 'node:stream';
import { VirtioConsoleDevice } from '../src/device/console/console-device.js';
import { createMemoryNetPair } from '../src/device/net/memory-pair.js';
import { VirtioNetDevice } from '../src/device/net/net-device.js';
import { VirtioConsoleDriver } from '../src/driver/console/console-driver.js';
import { VirtioNetDriver } from '../src/driver/net/net-driver.js';
import { Machine } from '../src/platform/machine.js';
import { streamBytePort } from '../src/device/console/port-streams.js';
import { Clock, si } from './clock.js';

const RUN_MS = 1000;
const WINDOW = 32;
/** Rounds of WINDOW frames per timed block: the CPU clock is read once per block (a system call). */
const BLOCK = 16;

async function netDriver(backend: ReturnType<typeof createMemoryNetPair>[0], mergeable: boolean): Promise<VirtioNetDriver> {
  const machine = new Machine({ ramSize: 32 << 20 });
  const { bdf } = machine.plugVirtio(new VirtioNetDevice({ backend }));
  return VirtioNetDriver.open(machine.bus, bdf, { mergeableRxBuffers: mergeable });
}

interface NetRate {
  readonly frames: number;
  readonly ours: Clock;
  readonly copy: Clock;
}

/**
 * How a window of frames is sent and received: `batch`, one sendAll() and receiveAll() calls (a
 * promise per window); `burst`, a send() per frame, all before any is awaited, and a receive() per
 * frame; `awaited`, each send() awaited before the next (the bench as it was before issue 17).
 */
export type SendMode = 'batch' | 'burst' | 'awaited';

/**
 * Frames of `frameLen` bytes from driver A to driver B for `runMs`, in blocks of BLOCK rounds of
 * WINDOW frames, every frame distinct within a block and its block number in byte 12, every byte
 * checked at B after the block (outside the timed region, as is the Buffer.copy reference).
 */
export async function netRate(frameLen: number, mergeable: boolean, mode: SendMode, runMs = RUN_MS): Promise<NetRate> {
  const [ea, eb] = createMemoryNetPair();
  const a = await netDriver(ea, mergeable);
  const b = await netDriver(eb, mergeable);
  const n = BLOCK * WINDOW;
  const frames = Array.from({ length: n }, (_, k) => {
    const f = new Uint8Array(frameLen);
    f.set(b.mac, 0);
    f.set(a.mac, 6);
    for (let i = 13; i < frameLen; i++) f[i] = (i + k * 7) & 0xff;
    return f;
  });
  const windows = Array.from({ length: BLOCK }, (_, r) => frames.slice(r * WINDOW, (r + 1) * WINDOW));
  const sink = Array.from({ length: n }, () => new Uint8Array(frameLen));
  const got: Uint8Array[] = new Array<Uint8Array>(n);
  const ours = new Clock();
  const copy = new Clock();
  let received = 0;
  const start = performance.now();
  for (let block = 0; performance.now() - start < runMs; block++) {
    for (const f of frames) f[12] = block & 0xff;
    ours.start();
    for (let r = 0; r < n; r += WINDOW) {
      if (mode === 'batch') {
        await a.sendAll(windows[r / WINDOW]!);
        for (let k = r; k < r + WINDOW;) for (const f of await b.receiveAll()) got[k++] = f;
        continue;
      }
      if (mode === 'burst') {
        const sent: Promise<void>[] = [];
        for (let k = r; k < r + WINDOW; k++) sent.push(a.send(frames[k]!));
        await Promise.all(sent);
      } else for (let k = r; k < r + WINDOW; k++) await a.send(frames[k]!);
      for (let k = r; k < r + WINDOW; k++) got[k] = await b.receive();
    }
    ours.stop();
    for (let k = 0; k < n; k++)
      if (Buffer.compare(got[k]!, frames[k]!) !== 0)
        throw new Error(`net bench: frame ${k} of block ${block} arrived with other bytes (${got[k]!.length} B)`);
    received += n;
    copy.start();
    for (let k = 0; k < n; k++) sink[k]!.set(frames[k]!);
    copy.stop();
  }
  if (received === 0 || b.stats.rxOverflow !== 0) throw new Error(`net bench: ${received} frames received, ${b.stats.rxOverflow} dropped`);
  await a.close();
  await b.close();
  return { frames: received, ours, copy };
}

async function consoleRate(): Promise<{ bytes: number; clock: Clock }> {
  let seen = 0;
  const output = new PassThrough();
  output.on('data', (chunk: Buffer) => (seen += chunk.length));
  const machine = new Machine({ ramSize: 32 << 20 });
  const { bdf } = machine.plugVirtio(new VirtioConsoleDevice({ ports: [{ console: true, host: streamBytePort({ output }) }] }));
  const drv = await VirtioConsoleDriver.open(machine.bus, bdf);
  const port = drv.port(0)!;
  const chunk = new Uint8Array(256 << 10);
  let bytes = 0;
  const clock = new Clock();
  clock.start();
  const start = performance.now();
  while (performance.now() - start < RUN_MS) {
    await port.write(chunk);
    bytes += chunk.byteLength;
  }
  clock.stop();
  await drv.close();
  await new Promise((resolve) => setImmediate(resolve));
  if (bytes === 0 || seen !== bytes) throw new Error(`console bench: ${bytes} bytes written, ${seen} reached the host stream`);
  return { bytes, clock };
}

export async function run(): Promise<void> {
  const rows: Record<string, string>[] = [];
  await netRate(64, true, 'burst', RUN_MS / 4); // warm-up: let the JIT settle before the first figure
  await netRate(64, true, 'awaited', RUN_MS / 4);
  await netRate(64, true, 'batch', RUN_MS / 4);
  for (const [mergeable, mode] of [
    [true, 'batch'],
    [false, 'batch'],
    [true, 'burst'],
    [true, 'awaited'],
  ] as const) {
    for (const len of [64, 1514]) {
      const { frames, ours, copy } = await netRate(len, mergeable, mode);
      const o = ours.rates(frames);
      const c = copy.rates(frames);
      rows.push({
        path: `net frames ${len} B${mergeable ? ', MRG_RXBUF' : ''}, ${mode === 'batch' ? 'sendAll/receiveAll' : mode === 'burst' ? 'send() burst' : 'each send() awaited'}`,
        'frames/s wall': si(o.wall),
        'frames/s cpu': si(o.cpu),
        'MB/s cpu': ((o.cpu * len) / 1e6).toFixed(1),
        'ours / Buffer.copy (cpu)': (o.cpu / c.cpu).toFixed(3),
      });
    }
  }
  const con = await consoleRate();
  const r = con.clock.rates(con.bytes);
  rows.push({
    path: 'console port write, 256 KiB writes',
    'frames/s wall': '-',
    'frames/s cpu': '-',
    'MB/s cpu': (r.cpu / 1e6).toFixed(1),
    'ours / Buffer.copy (cpu)': '',
  });
  console.log(`driver A send() -> device A -> memory pair -> device B -> driver B receive(), windows of ${WINDOW} frames`);
  console.table(rows);
}
