import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { Socket as DgramSocket } from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';
import type { NetBackend } from '../../../src/device/net/backend.js';
import { DgramNetBackend } from '../../../src/device/net/dgram-backend.js';
import { VirtioNetDevice } from '../../../src/device/net/net-device.js';
import { StreamNetBackend } from '../../../src/device/net/stream-backend.js';
import { encodeStreamFrame, STREAM_MAX_FRAME, StreamFrameDecoder } from '../../../src/device/net/stream-framing.js';
import { VirtioNetDriver } from '../../../src/driver/net/net-driver.js';
import { Machine } from '../../../src/platform/machine.js';
import { ethFrame, mac } from '../../helpers/net-frames.js';

const PEER_SCRIPT = fileURLToPath(new URL('../../helpers/net-echo-peer.js', import.meta.url));
const OURS = mac(0x02, 0, 0, 0, 0, 0x21);
const THEIRS = mac(0x02, 0, 0, 0, 0, 0x22);
const dir = mkdtempSync(join(tmpdir(), 'virtio-net-'));
const cleanup: (() => Promise<void> | void)[] = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
  rmSync(dir, { recursive: true, force: true });
});

/** Start the echo peer in another process; resolves with what it printed after "ready". */
function startPeer(...args: string[]): Promise<{ child: ChildProcess; ready: string }> {
  const child = spawn(process.execPath, [PEER_SCRIPT, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  cleanup.push(() => {
    child.kill();
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`echo peer ${args.join(' ')} not ready within 10 s`)), 10_000);
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /ready (\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ child, ready: m[1]! });
      }
    });
    child.on('exit', (code) => reject(new Error(`echo peer exited with ${code} before it was ready`)));
  });
}

async function machineWith(backend: NetBackend): Promise<{ device: VirtioNetDevice; driver: VirtioNetDriver }> {
  const machine = new Machine({ ramSize: 16 << 20 });
  const device = new VirtioNetDevice({ backend, mac: OURS });
  const { bdf } = machine.plugVirtio(device);
  const driver = await VirtioNetDriver.open(machine.bus, bdf, { timeoutMs: 3000 });
  cleanup.push(() => driver.close());
  return { device, driver };
}

/** Send frames of several sizes and check each comes back with the MACs swapped. */
async function roundTrips(driver: VirtioNetDriver): Promise<void> {
  for (const size of [46, 1, 1500, 9000]) {
    const frame = ethFrame(THEIRS, OURS, size);
    await driver.send(frame);
    const back = await driver.receive();
    assert.deepEqual(back.subarray(0, 6), OURS);
    assert.deepEqual(back.subarray(6, 12), THEIRS);
    assert.deepEqual(back.subarray(12), frame.subarray(12));
  }
}

describe('stream framing (QEMU -netdev stream)', () => {
  it('prefixes a 4-byte big-endian length', () => {
    assert.deepEqual(encodeStreamFrame(Uint8Array.of(9, 8, 7)), Uint8Array.of(0, 0, 0, 3, 9, 8, 7));
  });

  it('reassembles frames split at every possible boundary', () => {
    const frames = [ethFrame(THEIRS, OURS, 30), new Uint8Array(0), ethFrame(OURS, THEIRS, 3)];
    const wire = Buffer.concat(frames.map(encodeStreamFrame));
    for (let cut1 = 0; cut1 <= wire.length; cut1++) {
      for (const cut2 of [cut1, Math.min(wire.length, cut1 + 1), Math.min(wire.length, cut1 + 5)]) {
        const d = new StreamFrameDecoder();
        const got = [...d.push(wire.subarray(0, cut1)), ...d.push(wire.subarray(cut1, cut2)), ...d.push(wire.subarray(cut2))];
        assert.deepEqual(got, frames, `cuts at ${cut1}, ${cut2}`);
      }
    }
  });

  it('refuses a length beyond the largest frame', () => {
    const d = new StreamFrameDecoder();
    const len = Buffer.alloc(4);
    len.writeUInt32BE(STREAM_MAX_FRAME + 1);
    assert.throws(() => d.push(len), { code: 'ERR_BUS' });
  });
});

describe('network backends to another process', () => {
  it('stream client over a Unix socket: frames echo back, and the link drops when the peer dies', async () => {
    const path = join(dir, 'listen.sock');
    const { child } = await startPeer('stream-listen', path);
    const backend = await StreamNetBackend.connect({ path });
    cleanup.push(() => backend.close());
    const { device, driver } = await machineWith(backend);
    assert.equal(await driver.linkUp(), true);
    await roundTrips(driver);
    assert.equal(backend.stats.rxFrames, 4);
    const down = new Promise<boolean>((resolve) => driver.onLinkChange(resolve));
    child.kill();
    assert.equal(await down, false);
    assert.equal(device.isLinkUp, false);
    // With no peer, frames are dropped and counted, not queued.
    await driver.send(ethFrame(THEIRS, OURS, 50));
    assert.equal(backend.stats.txDropped, 1);
  });

  it('stream server on TCP: the link comes up when the peer connects', async () => {
    const backend = await StreamNetBackend.listen({ host: '127.0.0.1', port: 0 });
    cleanup.push(() => backend.close());
    const { driver } = await machineWith(backend);
    assert.equal(await driver.linkUp(), false);
    const up = new Promise<boolean>((resolve) => driver.onLinkChange(resolve));
    await startPeer('stream-connect', String(backend.listeningPort));
    assert.equal(await up, true);
    await roundTrips(driver);
  });

  it('UDP datagrams, one frame each (QEMU -netdev dgram)', async () => {
    const { ready } = await startPeer('udp');
    const backend = await DgramNetBackend.open({
      local: { address: '127.0.0.1', port: 0 },
      remote: { address: '127.0.0.1', port: Number(ready) },
    });
    cleanup.push(() => backend.close());
    const { driver } = await machineWith(backend);
    await roundTrips(driver);
    assert.equal(backend.stats.rxFrames, 4);
    assert.equal(backend.stats.rxForeign, 0);
  });

  it('UDP: frames meeting a send queue over maxQueuedBytes are dropped and counted, not queued', async () => {
    const maxQueuedBytes = 16 << 10;
    const backend = await DgramNetBackend.open({
      local: { address: '127.0.0.1', port: 0 },
      remote: { address: '127.0.0.1', port: 9 },
      maxQueuedBytes,
    });
    cleanup.push(() => backend.close());
    // The kernel's send buffer stays full, so Node keeps every datagram queued (as on a slow link;
    // loopback never fills it, hence the stand-in for the socket's send path).
    const proto = DgramSocket.prototype;
    const { send, getSendQueueSize } = proto;
    let queued = 0;
    proto.send = function (msg: Uint8Array) {
      queued += msg.byteLength;
    } as typeof proto.send;
    proto.getSendQueueSize = () => queued;
    const frame = ethFrame(THEIRS, OURS, 1500);
    const sends = 100_000;
    try {
      for (let i = 0; i < sends; i++) backend.send(frame);
    } finally {
      proto.send = send;
      proto.getSendQueueSize = getSendQueueSize;
    }
    assert.ok(queued <= maxQueuedBytes + frame.byteLength, `${queued} bytes queued`);
    assert.equal(backend.stats.txFrames * frame.byteLength, queued, 'every frame passed on is queued');
    assert.equal(backend.stats.txFrames + backend.stats.txDropped, sends, 'every other one is counted as dropped');
  });
});
