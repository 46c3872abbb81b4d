import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';
import { VirtioConsoleDevice, type ConsolePortOptions } from '../../../src/device/console/console-device.js';
import { filePortStreams, socketPortStreams, streamBytePort } from '../../../src/device/console/port-streams.js';
import { VirtioConsoleDriver, type VirtioConsoleDriverOptions } from '../../../src/driver/console/console-driver.js';
import type { VirtioPciFunctionOptions } from '../../../src/transport/pci/virtio-pci-function.js';
import { Machine } from '../../../src/platform/machine.js';
import { patterned } from '../../helpers/console-peer.js';
import { offering, RING_FORMATS, type RingName } from '../../helpers/ring-formats.js';

const PEER = fileURLToPath(new URL('../../helpers/console-peer.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'virtio-console-'));
const cleanup: (() => unknown)[] = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
  rmSync(dir, { recursive: true, force: true });
});
const text = (s: string): Uint8Array => new TextEncoder().encode(s);

async function machineWith(
  device: VirtioConsoleDevice,
  opts: VirtioConsoleDriverOptions = {},
  plug: VirtioPciFunctionOptions = {},
): Promise<VirtioConsoleDriver> {
  const machine = new Machine({ ramSize: 32 << 20 });
  const { bdf } = machine.plugVirtio(device, plug);
  const driver = await VirtioConsoleDriver.open(machine.bus, bdf, { timeoutMs: 5000, ...opts });
  cleanup.push(() => driver.close());
  return driver;
}

/** Read exactly `n` bytes from a driver port. */
async function readExactly(port: { read(max?: number): Promise<Uint8Array> }, n: number): Promise<Uint8Array> {
  const out = new Uint8Array(n);
  for (let at = 0; at < n;) {
    const part = await port.read(n - at);
    out.set(part, at);
    at += part.byteLength;
  }
  return out;
}

/** A Unix socket whose accepted connection becomes a console port; resolves with it. */
async function unixPort(name: string): Promise<{ path: string; accepted: Promise<Socket> }> {
  const path = join(dir, name);
  const server = createServer();
  cleanup.push(() => new Promise((r) => server.close(r)));
  const accepted = new Promise<Socket>((resolve) => server.once('connection', resolve));
  await new Promise<void>((r) => server.listen(path, r));
  return { path, accepted };
}

function runPeer(...args: string[]): Promise<string> {
  const child = spawn(process.execPath, [PEER, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  cleanup.push(() => child.kill());
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('exit', (code) => (code === 0 ? resolve(out.trim()) : reject(new Error(`console peer exited with ${code}: ${out}`))));
  });
}

for (const ring of RING_FORMATS) {
  describe(`virtio-console driver and device on an in-process machine, ${ring} ring`, () => {
    /** Our driver on `device`, on the `ring` format: negotiated, then checked. */
    const machineOn = async (device: VirtioConsoleDevice, opts: VirtioConsoleDriverOptions = {}): Promise<VirtioConsoleDriver> => {
      const driver = await machineWith(device, opts, offering(ring));
      assert.equal(driver.core.ringFormat.name, ring);
      return driver;
    };

    it('single port: a line typed on the host reaches the guest, and output comes back', async () => {
      const input = new PassThrough();
      const output = new PassThrough();
      const driver = await machineOn(
        new VirtioConsoleDevice({ ports: [{ console: true, host: streamBytePort({ input, output }) }], size: { cols: 80, rows: 24 } }),
      );
      assert.equal(driver.multiport, false);
      assert.deepEqual(await driver.size(), { cols: 80, rows: 24 });
      const port = driver.port(0)!;
      assert.equal(port.isConsole, true);
      input.write('echo hello\n');
      assert.deepEqual(await readExactly(port, 11), text('echo hello\n'));
      await port.write(text('hello\n'));
      assert.equal(output.read()?.toString(), 'hello\n');
      await driver.emergencyWrite(text('!'));
      assert.equal(output.read()?.toString(), '!');
    });

    it('multiport: names, console port, host open state, data on a named port, resize', async () => {
      const conIn = new PassThrough();
      const conOut = new PassThrough();
      const aIn = new PassThrough();
      const aOut = new PassThrough();
      const ports: ConsolePortOptions[] = [
        { console: true, host: streamBytePort({ input: conIn, output: conOut }) },
        { name: 'org.test.a', host: streamBytePort({ input: aIn, output: aOut }) },
        { name: 'org.test.closed' },
      ];
      const device = new VirtioConsoleDevice({ ports });
      const driver = await machineOn(device);
      assert.equal(driver.multiport, true);
      assert.equal(driver.maxPorts, 3);
      const a = await driver.waitPort('org.test.a');
      const closed = await driver.waitPort('org.test.closed');
      const con = await driver.waitPort(0);
      for (let i = 0; i < 100 && !(con.isConsole && device.port(0).guestOpen); i++) await new Promise((r) => setTimeout(r, 5));
      assert.equal(con.isConsole, true);
      assert.equal(a.id, 1);
      assert.equal(a.hostConnected, true);
      assert.equal(closed.hostConnected, false);
      // Host bytes wait until the guest opens the port.
      aIn.write('early');
      await new Promise((r) => setTimeout(r, 20));
      assert.equal(a.buffered, 0);
      await a.open();
      assert.deepEqual(await readExactly(a, 5), text('early'));
      await a.write(text('to host a'));
      assert.equal(aOut.read()?.toString(), 'to host a');
      await con.write(text('console out'));
      assert.equal(conOut.read()?.toString(), 'console out');
      device.resize(132, 50);
      for (let i = 0; i < 100 && !con.size; i++) await new Promise((r) => setTimeout(r, 5));
      assert.deepEqual(con.size, { cols: 132, rows: 50 });
      // The host end going away is reported with PORT_OPEN 0.
      aOut.destroy();
      await new Promise((r) => setTimeout(r, 20));
      assert.equal(a.hostConnected, false);
    });

    it('a port backed by files: the guest reads the input file and its output lands in the output file', async () => {
      const inPath = join(dir, `console-${ring}.in`);
      const outPath = join(dir, `console-${ring}.out`);
      writeFileSync(inPath, 'from a file\n');
      const driver = await machineOn(
        new VirtioConsoleDevice({ ports: [{ console: true, host: streamBytePort(filePortStreams(outPath, inPath)) }] }),
      );
      const port = driver.port(0)!;
      assert.deepEqual(await readExactly(port, 12), text('from a file\n'));
      await new Promise((r) => setTimeout(r, 20)); // the input file has ended by now; output still works
      await port.write(text('to a file\n'));
      let out = '';
      for (let i = 0; i < 100 && out !== 'to a file\n'; i++) {
        await new Promise((r) => setTimeout(r, 5));
        out = readFileSync(outPath, 'utf8');
      }
      assert.equal(out, 'to a file\n');
    });

    /** A peer process in `mode` on a Unix socket, behind port 1 ('data', opened) of a console on this ring. */
    const socketDataPort = async (name: string, mode: string, total: number) => {
      const { path, accepted } = await unixPort(`${name}-${ring}.sock`);
      const peer = runPeer(mode, path, String(total));
      const socket = await accepted;
      const device = new VirtioConsoleDevice({
        ports: [{ console: true }, { name: 'data', host: streamBytePort(socketPortStreams(socket)) }],
      });
      const driver = await machineOn(device);
      const port = await driver.waitPort('data');
      await port.open();
      return { peer, socket, device, port };
    };

    it('guest -> host through a real Unix socket with a slow reader: no loss, bounded buffering', async () => {
      const total = 2 << 20;
      const { peer, socket, device, port } = await socketDataPort('slow-reader', 'slow-read', total);
      let maxQueued = 0;
      const sampler = setInterval(() => (maxQueued = Math.max(maxQueued, socket.writableLength)), 1);
      const data = patterned(total);
      await port.write(data);
      const [word, count, hash] = (await peer).split(' ');
      clearInterval(sampler);
      assert.equal(word, 'done');
      assert.equal(Number(count), total);
      assert.equal(hash, createHash('sha256').update(data).digest('hex'));
      // Node buffers at most a highWaterMark (16 KiB) plus one transmit chunk before the device stops.
      assert.ok(maxQueued <= 64 << 10, `socket held ${maxQueued} unsent bytes`);
      assert.equal(device.stats.txBytes, total);
    });

    it('host -> guest through a real Unix socket with a slow guest: no loss, bounded buffering', async () => {
      const total = 1 << 20;
      const { peer, socket, device, port } = await socketDataPort('fast-writer', 'fast-write', total);
      let maxWaiting = 0;
      let maxReadable = 0;
      const hash = createHash('sha256');
      let got = 0;
      while (got < total) {
        maxWaiting = Math.max(maxWaiting, device.port(1).waiting?.byteLength ?? 0);
        maxReadable = Math.max(maxReadable, socket.readableLength);
        const part = await port.read(16 << 10);
        hash.update(part);
        got += part.byteLength;
        if ((got & 0xffff) < part.byteLength) await new Promise((r) => setTimeout(r, 2)); // a slow guest
      }
      const sent = await peer;
      assert.equal(got, total);
      assert.equal(sent, `sent ${hash.digest('hex')}`);
      // One socket read (at most 64 KiB) waits in the device and at most one more in the socket.
      assert.ok(maxWaiting <= 64 << 10, `device held ${maxWaiting} bytes`);
      assert.ok(maxReadable <= 128 << 10, `socket buffered ${maxReadable} bytes`);
      assert.equal(device.stats.rxBytes, total);
    });
  });
}

describe('virtio-console over every interface and interrupt mode', () => {
  const CASES: {
    name: string;
    plug: VirtioPciFunctionOptions;
    driver: VirtioConsoleDriverOptions;
    kind: 'modern' | 'legacy';
    ring?: RingName;
  }[] = [
    { name: 'modern, INTx', plug: {}, driver: { interrupts: 'intx' }, kind: 'modern' },
    { name: 'modern, MSI-X per queue', plug: { msixVectors: 8 }, driver: { interrupts: 'msix' }, kind: 'modern' },
    { name: 'transitional, legacy interface', plug: { mode: 'transitional' }, driver: { forceLegacy: true }, kind: 'legacy' },
    { name: 'legacy-only, MSI-X', plug: { mode: 'legacy', msixVectors: 8 }, driver: { interrupts: 'msix' }, kind: 'legacy' },
    {
      name: 'transitional offering the packed ring, modern interface',
      plug: { mode: 'transitional', msixVectors: 8, packed: true },
      driver: {},
      kind: 'modern',
      ring: 'packed',
    },
    // Bit 34 lies beyond the legacy feature word: the packed offer never reaches a legacy driver.
    {
      name: 'transitional offering the packed ring, legacy interface',
      plug: { mode: 'transitional', packed: true },
      driver: { forceLegacy: true },
      kind: 'legacy',
      ring: 'split',
    },
  ];
  for (const c of CASES) {
    it(`${c.name}: multiport handshake and a line each way on a named port`, async () => {
      const input = new PassThrough();
      const output = new PassThrough();
      const device = new VirtioConsoleDevice({
        ports: [{ console: true }, { name: 'org.test.line', host: streamBytePort({ input, output }) }],
      });
      const driver = await machineWith(device, c.driver, c.plug);
      assert.equal(driver.core.probe.kind, c.kind);
      assert.equal(driver.core.ringFormat.name, c.ring ?? 'split');
      const port = await driver.waitPort('org.test.line');
      await port.open();
      input.write('typed line\n');
      assert.deepEqual(await readExactly(port, 11), text('typed line\n'));
      await port.write(text('answer\n'));
      assert.equal(output.read()?.toString(), 'answer\n');
    });
  }
});
