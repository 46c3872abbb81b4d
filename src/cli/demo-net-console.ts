/**
 * The net and console parts of `virtio-ts demo`: two machines exchanging Ethernet frames through a
 * pair of virtio-net devices linked in memory, and a line typed through a virtio-console port and
 * echoed back, each moved by our drivers through our devices.
 */

import { PassThrough } from 'node:stream';
import { VirtioConsoleDevice } from '../device/console/console-device.js';
import { createMemoryNetPair } from '../device/net/memory-pair.js';
import { VirtioNetDevice } from '../device/net/net-device.js';
import { VirtioConsoleDriver } from '../driver/console/console-driver.js';
import { VirtioNetDriver } from '../driver/net/net-driver.js';
import type { VirtioDriverOptions } from '../driver/virtio-driver.js';
import { Machine } from '../platform/machine.js';
import type { VirtioPciFunctionOptions } from '../transport/pci/virtio-pci-function.js';
import { streamBytePort } from '../device/console/port-streams.js';
import { describeRing } from './ring-option.js';

const hexMac = (mac: Uint8Array): string => [...mac].map((b) => b.toString(16).padStart(2, '0')).join(':');

/** An Ethernet frame from `src` to `dst` (EtherType 0x88b5, local experimental) carrying `text`. */
function frame(dst: Uint8Array, src: Uint8Array, text: string): Uint8Array {
  const payload = new TextEncoder().encode(text);
  const f = new Uint8Array(Math.max(60, 14 + payload.byteLength));
  f.set(dst, 0);
  f.set(src, 6);
  f[12] = 0x88;
  f[13] = 0xb5;
  f.set(payload, 14);
  return f;
}

/** Two machines, one virtio-net device each, linked back to back; one frame each way. Returns lines to print. */
export async function netDemo(fnOptions: VirtioPciFunctionOptions, drvOptions: VirtioDriverOptions): Promise<string[]> {
  const [endA, endB] = createMemoryNetPair();
  const machines = [new Machine(), new Machine()];
  const drivers: VirtioNetDriver[] = [];
  try {
    for (const [i, backend] of [endA, endB].entries()) {
      const m = machines[i]!;
      const { bdf } = m.plugVirtio(new VirtioNetDevice({ backend }), fnOptions);
      drivers.push(await VirtioNetDriver.open(m.bus, bdf, drvOptions));
    }
    const [a, b] = drivers as [VirtioNetDriver, VirtioNetDriver];
    const lines = [
      `virtio-net: machine A ${hexMac(a.mac)} <-> machine B ${hexMac(b.mac)} (in-memory link), ${a.core.probe.kind} interface, ring ${describeRing(a.core)}`,
    ];
    for (const [from, to, name] of [
      [a, b, 'A -> B'],
      [b, a, 'B -> A'],
    ] as const) {
      const sent = frame(to.mac, from.mac, `hello from ${name}`);
      await from.send(sent);
      const got = await to.receive();
      const same = got.byteLength === sent.byteLength && got.every((v, k) => v === sent[k]);
      lines.push(`  frame ${name}: ${sent.byteLength} bytes sent, ${got.byteLength} received, ${same ? 'identical' : 'DIFFERENT'}`);
      if (!same) process.exitCode = 1;
    }
    return lines;
  } finally {
    for (const d of drivers) await d.close();
    await endA.close();
    await endB.close();
  }
}

/** A console device whose port is two in-memory streams: a line typed in arrives in the driver and is written back. */
export async function consoleDemo(fnOptions: VirtioPciFunctionOptions, drvOptions: VirtioDriverOptions): Promise<string[]> {
  const input = new PassThrough();
  const output = new PassThrough();
  const m = new Machine();
  const { bdf } = m.plugVirtio(new VirtioConsoleDevice({ ports: [{ console: true, host: streamBytePort({ input, output }) }] }), fnOptions);
  const drv = await VirtioConsoleDriver.open(m.bus, bdf, drvOptions);
  try {
    const port = await drv.waitPort(0);
    await port.open();
    const typed = 'a line typed at the host end\n';
    input.write(typed);
    const echoedChunks: Buffer[] = [];
    output.on('data', (chunk: Buffer) => echoedChunks.push(chunk));
    let got = '';
    // Bounded: each read waits at most the driver's timeout and returns at least one byte.
    while (got.length < typed.length) got += new TextDecoder().decode(await port.read(typed.length - got.length));
    await port.write(new TextEncoder().encode(got.toUpperCase()));
    // The device hands bytes to the stream as it takes them; give the stream a bounded moment to emit them.
    for (let i = 0; i < 100 && Buffer.concat(echoedChunks).length < typed.length; i++) await new Promise((r) => setTimeout(r, 10));
    const echoed = Buffer.concat(echoedChunks).toString();
    const ok = got === typed && echoed === typed.toUpperCase();
    if (!ok) process.exitCode = 1;
    return [
      `virtio-console: port 0, ${drv.core.probe.kind} interface, ring ${describeRing(drv.core)}`,
      `  host -> driver: ${JSON.stringify(got)}`,
      `  driver -> host: ${JSON.stringify(echoed)} ${ok ? '(as sent)' : '(DIFFERENT)'}`,
    ];
  } finally {
    await drv.close();
  }
}
