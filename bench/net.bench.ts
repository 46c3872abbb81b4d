/**
 * virtio-net end to end on two in-process machines joined by the in-memory pair: frames per second
 * and MiB/s from one driver's send() to the other driver's receive(), for small and full-size frames,
 * with and without MRG_RXBUF; and virtio-console bytes per second from a driver port to a host stream.
 * Everything (both drivers, both devices, the rings) runs on one thread, so the figures are the cost of
 * our code path, not of any wire.
 */

import { PassThrough } from 'node:stream';
import { VirtioConsoleDevice } from '../src/device/console/console-device.js';
import { createMemoryNetPair } from '../src/device/net/memory-pair.js';
import { VirtioNetDevice } from '../src/device/net/net-device.js';
import { VirtioConsoleDriver } from '../src/driver/console/console-driver.js';
import { VirtioNetDriver } from '../src/driver/net/net-driver.js';
import { Machine } from '../src/platform/machine.js';
import { streamBytePort } from '../src/device/console/port-streams.js';

const RUN_MS = 1000;

async function netDriver(backend: ReturnType<typeof createMemoryNetPair>[0], mergeable: boolean): Promise<VirtioNetDriver> {
  const machine = new Machine({ ramSize: 32 << 20 });
  const { bdf } = machine.plugVirtio(new VirtioNetDevice({ backend }));
  return VirtioNetDriver.open(machine.bus, bdf, { mergeableRxBuffers: mergeable });
}

async function netRate(frameLen: number, mergeable: boolean, runMs = RUN_MS): Promise<{ fps: number; mibs: number; dropped: number }> {
  const [ea, eb] = createMemoryNetPair();
  const a = await netDriver(ea, mergeable);
  const b = await netDriver(eb, mergeable);
  const frame = new Uint8Array(frameLen);
  frame.set(b.mac, 0);
  frame.set(a.mac, 6);
  let received = 0;
  const start = performance.now();
  while (performance.now() - start < runMs) {
    // A window of 32 frames in flight, then take them all: the receiver keeps up, nothing drops.
    for (let i = 0; i < 32; i++) await a.send(frame);
    for (let i = 0; i < 32; i++) {
      await b.receive();
      received++;
    }
  }
  const secs = (performance.now() - start) / 1000;
  const dropped = b.stats.rxOverflow;
  await a.close();
  await b.close();
  return { fps: received / secs, mibs: (received * frameLen) / secs / (1 << 20), dropped };
}

async function consoleRate(): Promise<number> {
  const output = new PassThrough();
  output.resume();
  const machine = new Machine({ ramSize: 32 << 20 });
  const { bdf } = machine.plugVirtio(new VirtioConsoleDevice({ ports: [{ console: true, host: streamBytePort({ output }) }] }));
  const drv = await VirtioConsoleDriver.open(machine.bus, bdf);
  const port = drv.port(0)!;
  const chunk = new Uint8Array(256 << 10);
  let bytes = 0;
  const start = performance.now();
  while (performance.now() - start < RUN_MS) {
    await port.write(chunk);
    bytes += chunk.byteLength;
  }
  const secs = (performance.now() - start) / 1000;
  await drv.close();
  return bytes / secs / (1 << 20);
}

export async function run(): Promise<void> {
  const rows: Record<string, string>[] = [];
  await netRate(64, true, RUN_MS / 4); // warm-up: let the JIT settle before the first figure
  for (const mergeable of [true, false]) {
    for (const len of [64, 1514]) {
      const r = await netRate(len, mergeable);
      rows.push({
        path: `net frames ${len} B${mergeable ? ', MRG_RXBUF' : ''}`,
        'per second': r.fps.toFixed(0),
        'MiB/s': r.mibs.toFixed(1),
        dropped: String(r.dropped),
      });
    }
  }
  const mibs = await consoleRate();
  rows.push({ path: 'console port write, 256 KiB writes in 4 KiB buffers', 'per second': '-', 'MiB/s': mibs.toFixed(1), dropped: '0' });
  console.table(rows);
}
