// VIRTIO_F_RING_RESET end to end (2.6.1, 4.1.4.3): our driver resets one queue of each of our four
// devices while requests are in flight and other queues carry traffic; the requests of the other
// queues complete exactly once, the reset queue gives its tokens back, and works again on a new ring.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { BlkDevice } from '../../../src/device/blk/blk-device.js';
import { VirtioConsoleDevice } from '../../../src/device/console/console-device.js';
import { streamBytePort } from '../../../src/device/console/port-streams.js';
import { VirtioNetDevice } from '../../../src/device/net/net-device.js';
import { RngDevice } from '../../../src/device/rng/rng-device.js';
import type { VirtioDevice } from '../../../src/core/virtio-device.js';
import { VirtioDriver } from '../../../src/driver/virtio-driver.js';
import type { DriverQueue } from '../../../src/driver/driver-queue.js';
import { UsageError } from '../../../src/errors.js';
import { Machine } from '../../../src/platform/machine.js';
import type { VirtioPciFunction } from '../../../src/transport/pci/virtio-pci-function.js';
import { featureSet, hasFeature, VIRTIO_F_INDIRECT_DESC, VIRTIO_F_RING_RESET } from '../../../src/spec/features.js';
import { blkRead } from '../../helpers/blk-request.js';
import { DeferredBackend } from '../../helpers/deferred-backend.js';
import { ethFrame, mac, RecordingNetBackend } from '../../helpers/net-frames.js';

// Spec numbers written out: VIRTIO_BLK_F_MQ (5.2.3), common cfg offsets (4.1.4.3).
const BLK_F_MQ = 12;
const Q_SELECT = 22;
const Q_ENABLE = 28;
const Q_RESET = 58;
/** virtio_net_hdr with VERSION_1 and no MRG_RXBUF (5.1.9). */
const NET_HDR = 12;

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

async function open(device: VirtioDevice, wanted = 0n): Promise<{ m: Machine; fn: VirtioPciFunction; drv: VirtioDriver }> {
  const m = new Machine({ ramSize: 16 << 20 });
  const { bdf, fn } = m.plugVirtio(device);
  const drv = await VirtioDriver.open(m.bus, bdf, { timeoutMs: 2000 });
  await drv.negotiate(wanted);
  assert.ok(hasFeature(drv.features, VIRTIO_F_RING_RESET), 'the device offers RING_RESET and the driver accepts it');
  return { m, fn, drv };
}

/**
 * open(), then the receiveq (0) and transmitq (1) set up and DRIVER_OK; `post` puts a `len`-byte
 * device-writable buffer in the receiveq and returns its bytes.
 */
async function openRxTx(
  t: TestContext,
  device: VirtioDevice,
  len: number,
): Promise<{ m: Machine; rx: DriverQueue<number>; tx: DriverQueue<number>; post: (token: number) => Uint8Array }> {
  const { m, drv } = await open(device);
  t.after(() => drv.close());
  const rx = await drv.setupQueue<number>(0);
  const tx = await drv.setupQueue<number>(1);
  await drv.driverOk();
  const post = (token: number): Uint8Array => {
    const b = m.bus.dma.alloc(len, 8);
    rx.submit([], [{ addr: b.addr, len }], token);
    return b.bytes;
  };
  return { m, rx, tx, post };
}

/** queue_reset and queue_enable of queue `index`, read as the driver would (BAR4 common cfg). */
function queueRegs(fn: VirtioPciFunction, index: number): { reset: number; enable: number } {
  fn.barWrite(4, Q_SELECT, 2, index);
  return { reset: fn.barRead(4, Q_RESET, 2), enable: fn.barRead(4, Q_ENABLE, 2) };
}

/** Every completion of `q` until `count` have arrived: tokens in arrival order. */
async function collect<T>(q: DriverQueue<T>, count: number): Promise<T[]> {
  const tokens: T[] = [];
  while (tokens.length < count) for (const c of await q.waitUsed()) tokens.push(c.token);
  return tokens;
}

test('blk: queue 1 reset with backend reads in flight completes only after they settle; queue 0 carries on; then queue 1 works again', async (t) => {
  const disk = Uint8Array.from({ length: 1 << 20 }, (_, i) => (i * 13 + (i >> 9)) & 0xff);
  const backend = new DeferredBackend(disk);
  const { m, fn, drv } = await open(new BlkDevice({ backend, numQueues: 2, queueSize: 64 }), featureSet(BLK_F_MQ, VIRTIO_F_INDIRECT_DESC));
  t.after(() => drv.close());
  const q0 = await drv.setupQueue<number>(0);
  const q1 = await drv.setupQueue<number>(1);
  await drv.driverOk();
  /** A 512-byte read of `sector`; returns its data and status buffers. */
  const read = (q: DriverQueue<number>, sector: number, token: number) => ({ sector, ...blkRead(m, q, sector, token) });
  const check = (r: { sector: number; data: Uint8Array; status: Uint8Array }): void => {
    assert.equal(r.status[0], 0, `sector ${r.sector}: VIRTIO_BLK_S_OK`);
    assert.deepEqual(r.data, disk.subarray(r.sector * 512, (r.sector + 1) * 512));
  };

  const stale = [0, 1, 2, 3].map((i) => read(q1, 1000 + i, 100 + i));
  await q1.kick();
  const first = [0, 1, 2, 3].map((i) => read(q0, i, i));
  await q0.kick();
  assert.equal(backend.pending.length, 8);

  let reset = false;
  const resetting = q1.reset().then((tokens) => ((reset = true), tokens));
  await tick();
  assert.equal(reset, false, "the queue reset waits for queue 1's four reads");
  assert.deepEqual(queueRegs(fn, 1), { reset: 1, enable: 0 }, 'queue_reset reads 1 while the reset is ongoing');
  assert.throws(() => q1.submit([], [{ addr: 0, len: 1 }], 9), UsageError, 'a queue being reset takes no request');

  // Queue 0 carries on meanwhile: its reads complete, and new ones start and complete.
  const queue0Ops = (): typeof backend.pending => backend.pending.filter((p) => p.offset < 1000 * 512);
  for (const p of queue0Ops()) p.release(true);
  const second = [4, 5, 6, 7].map((i) => read(q0, i, i));
  await q0.kick();
  for (const p of queue0Ops()) p.release(true);
  const done = await collect(q0, 8);
  assert.deepEqual(
    [...done].sort((a, b) => a - b),
    [0, 1, 2, 3, 4, 5, 6, 7],
    'each request of queue 0 exactly once',
  );
  [...first, ...second].forEach(check);
  assert.equal(reset, false, 'queue 1 is still being reset');

  backend.releaseAll();
  const tokens = await resetting;
  assert.deepEqual(
    [...tokens].sort((a, b) => a - b),
    [100, 101, 102, 103],
    'the reads in flight come back as tokens',
  );
  assert.deepEqual(queueRegs(fn, 1), { reset: 0, enable: 0 });
  stale.forEach((r) => assert.equal(r.status[0], 0xff, 'no status byte for a request of the reset queue'));
  assert.equal(drv.fault, undefined);

  await q1.reenable({ size: 8 });
  assert.equal(q1.size, 8, 're-enabled with another size (2.6.1.2)');
  assert.equal(queueRegs(fn, 1).enable, 1);
  const again = [0, 1, 2].map((i) => read(q1, 2000 + i, 200 + i));
  await q1.kick();
  backend.releaseAll();
  assert.deepEqual((await collect(q1, 3)).sort(), [200, 201, 202]);
  again.forEach(check);
  const more = read(q0, 9, 9);
  await q0.kick();
  backend.releaseAll();
  assert.deepEqual(await collect(q0, 1), [9]);
  check(more);
});

test('net: the receiveq is reset (its buffers come back) while the transmitq carries frames; frames meanwhile are dropped; then received again', async (t) => {
  const backend = new RecordingNetBackend();
  const device = new VirtioNetDevice({ backend, mac: mac(2, 0, 0, 0, 0, 1), queueSize: 16 });
  const { m, rx, tx, post } = await openRxTx(t, device, 1526);
  const dma = m.bus.dma;
  const send = async (payload: number, token: number): Promise<Uint8Array> => {
    const frame = ethFrame(mac(2, 0, 0, 0, 0, 9), mac(2, 0, 0, 0, 0, 1), new Uint8Array(60).fill(payload));
    const b = dma.alloc(NET_HDR + frame.length, 8);
    b.bytes.set(frame, NET_HDR);
    tx.submit([{ addr: b.addr, len: NET_HDR + frame.length }], [], token);
    await tx.kick();
    return frame;
  };
  for (let i = 0; i < 4; i++) post(i);
  await rx.kick();
  const incoming = (n: number): Uint8Array => ethFrame(mac(2, 0, 0, 0, 0, 1), mac(2, 0, 0, 0, 0, 7), new Uint8Array(40).fill(n));
  backend.inject(incoming(1));
  assert.deepEqual(await collect(rx, 1), [0]);

  const resetting = rx.reset();
  const sent = [await send(0xa1, 10), await send(0xa2, 11)];
  assert.deepEqual((await resetting).sort(), [1, 2, 3], 'the three unused receive buffers come back');
  const dropped = device.stats.rxDropped;
  backend.inject(incoming(2));
  assert.equal(device.stats.rxDropped, dropped + 1, 'a frame for the reset receiveq is dropped');
  sent.push(await send(0xa3, 12));
  assert.deepEqual((await collect(tx, 3)).sort(), [10, 11, 12]);
  assert.deepEqual(backend.sent, sent, 'each frame sent once, in order, while the receiveq was reset');

  await rx.reenable({ size: 8 });
  const buf = post(20);
  await rx.kick();
  backend.inject(incoming(3));
  assert.deepEqual(await collect(rx, 1), [20]);
  assert.deepEqual(buf.subarray(NET_HDR, NET_HDR + 54), incoming(3));
});

test('console: the receiveq is reset while output flows; input written meanwhile waits and arrives after re-enable, no byte lost', async (t) => {
  const input = new PassThrough();
  const output = new PassThrough();
  const written: Buffer[] = [];
  output.on('data', (c: Buffer) => written.push(c));
  const device = new VirtioConsoleDevice({ ports: [{ host: streamBytePort({ input, output }) }], queueSize: 16 });
  const { m, rx, tx, post } = await openRxTx(t, device, 64);
  const dma = m.bus.dma;
  const write = async (text: string, token: number): Promise<void> => {
    const b = dma.alloc(text.length, 1);
    b.bytes.set(Buffer.from(text));
    tx.submit([{ addr: b.addr, len: text.length }], [], token);
    await tx.kick();
  };
  post(0);
  post(1);
  await rx.kick();

  assert.deepEqual((await rx.reset()).sort(), [0, 1]);
  input.write('typed while the queue was reset');
  await write('out-1 ', 10);
  await write('out-2', 11);
  assert.deepEqual((await collect(tx, 2)).sort(), [10, 11]);
  await tick();
  assert.equal(Buffer.concat(written).toString(), 'out-1 out-2');

  await rx.reenable();
  const buf = post(5);
  await rx.kick();
  const [c] = await rx.waitUsed();
  assert.equal(c!.token, 5);
  assert.equal(Buffer.from(buf.subarray(0, c!.len)).toString(), 'typed while the queue was reset');
});

test('rng: requests submitted but not published come back from the reset; the re-enabled queue is served', async (t) => {
  const { m, drv } = await open(new RngDevice({ entropy: (dst) => dst.fill(0x42) }));
  t.after(() => drv.close());
  const q = await drv.setupQueue<number>(0);
  await drv.driverOk();
  const dma = m.bus.dma;
  const ask = (token: number): Uint8Array => {
    const b = dma.alloc(16, 8);
    q.submit([], [{ addr: b.addr, len: 16 }], token);
    return b.bytes;
  };
  ask(1);
  await q.kick();
  assert.deepEqual(await collect(q, 1), [1]);
  const untouched = ask(2);
  assert.deepEqual(await q.reset(), [2]);
  assert.ok(
    untouched.every((b) => b === 0),
    'never filled',
  );
  await assert.rejects(q.reset(), UsageError, 'already reset');
  await q.reenable();
  const filled = ask(3);
  await q.kick();
  assert.deepEqual(await collect(q, 1), [3]);
  assert.ok(filled.every((b) => b === 0x42));
});

test('a queue reset needs RING_RESET negotiated and a live device; a failed call leaves the queue usable', async (t) => {
  const m = new Machine({ ramSize: 4 << 20 });
  const { bdf } = m.plugVirtio(new RngDevice(), { mode: 'transitional' });
  const drv = await VirtioDriver.open(m.bus, bdf, { forceLegacy: true });
  t.after(() => drv.close());
  await drv.negotiate(0n);
  assert.equal(hasFeature(drv.features, VIRTIO_F_RING_RESET), false, 'bit 40 is out of the legacy interface reach');
  const q = await drv.setupQueue<number>(0);
  await drv.driverOk();
  await assert.rejects(q.reset(), UsageError);
  const b = m.bus.dma.alloc(8, 8);
  q.submit([], [{ addr: b.addr, len: 8 }], 7);
  await q.kick();
  assert.deepEqual(await collect(q, 1), [7]);
});
