/**
 * A reset (device status 0, queue reset) with backend operations in flight completes only when none
 * of them can touch guest memory or the disk any more: device_status reads non-zero until then, and
 * from then on no byte of guest memory or of the disk changes because of the old life. Operations of
 * old lives count against the in-flight limit until they settle, so reset storms stay bounded.
 * Net and console have no backend operation that touches guest memory (frames and output are copies,
 * input and drains meet an inactive device), so their reset completes at once.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import type { BlockBackend, GuestIo } from '../../../src/device/blk/backend.js';
import { BlkDevice } from '../../../src/device/blk/blk-device.js';
import { FileBlockBackend } from '../../../src/device/blk/file-backend.js';
import { VirtioConsoleDevice } from '../../../src/device/console/console-device.js';
import { VirtioNetDevice } from '../../../src/device/net/net-device.js';
import { BlkDriver } from '../../../src/driver/blk/blk-driver.js';
import { ArrayGuestMemory, type GuestMemory } from '../../../src/memory/guest-memory.js';
import { Machine } from '../../../src/platform/machine.js';
import { bit, VIRTIO_F_VERSION_1 } from '../../../src/spec/features.js';
import { blkHeader } from '../../helpers/blk-request.js';
import { DeferredBackend } from '../../helpers/deferred-backend.js';
import { activateDevice } from '../../helpers/device-harness.js';
import { MockQueue, WRITABLE_FILL } from '../../../src/testing/mock-queue.js';
import { ModernHarness } from '../../helpers/modern-harness.js';
import { ethFrame, mac, RecordingNetBackend } from '../../helpers/net-frames.js';
import { streamBytePort } from '../../../src/device/console/port-streams.js';

// Spec numbers written out: device status bits (2.1), request types (5.2.6), common cfg offsets (4.1.4.3).
const ACK = 1;
const DRIVER = 2;
const DRIVER_OK = 4;
const FEATURES_OK = 8;
const NEEDS_RESET = 0x40;
const LIVE = ACK | DRIVER | FEATURES_OK | DRIVER_OK;
const T_IN = 0;
const T_OUT = 1;
const F_RING_RESET = 40;
const F_BLK_MQ = 12;
const Q_SELECT = 22;
const Q_ENABLE = 28;
const Q_DESC_LO = 32;
const Q_RESET = 58;
const COMMON_STATUS = 20;
/** The legacy header's device status (4.1.4.10). */
const LEGACY_STATUS = 18;

const DISK_BYTES = 1 << 20;
const image = (): Uint8Array => Uint8Array.from({ length: DISK_BYTES }, (_, i) => (i * 7 + (i >> 9)) & 0xff);
const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** All of `memory`'s bytes, copied. */
function snapshot(memory: ArrayGuestMemory): Buffer {
  return Buffer.from(memory.view(memory.base, memory.end - memory.base));
}

/** The driver's side of a blk device over BAR4, with one queue live on `mq`. */
function blkRig(backend: BlockBackend, maxInFlight = 64) {
  const memory = new ArrayGuestMemory(4 << 20);
  const h = new ModernHarness({ memory }, new BlkDevice({ backend, maxInFlight, queueSize: 64 })).enableBar();
  const mq = new MockQueue({ size: 64, memory, base: 0x1000 });
  initialize(h, mq);
  return { h, mq, memory };
}

/** Reset, negotiate VERSION_1, set queue 0 up on `mq`, DRIVER_OK: all without waiting for anything. */
function initialize(h: ModernHarness<BlkDevice>, mq: MockQueue): void {
  h.negotiate(bit(VIRTIO_F_VERSION_1));
  h.setupQueue(0, mq);
  h.setStatus(LIVE);
}

/** Four 4 KiB reads of sectors 0.. and four 4 KiB writes of sectors 128.., each write of its own byte. */
function addRequests(mq: MockQueue): { reads: number[]; writes: number[] } {
  const reads = [0, 1, 2, 3].map((i) => mq.addChain({ readable: [blkHeader(T_IN, i * 8)], writable: [4096, 1] }));
  const writes = [0, 1, 2, 3].map((i) =>
    mq.addChain({ readable: [blkHeader(T_OUT, 128 + i * 8), new Uint8Array(4096).fill(0xa0 + i)], writable: [1] }),
  );
  return { reads, writes };
}

/** The guest reuses every buffer of `heads` (as a driver may once the reset completed). */
function reuseBuffers(mq: MockQueue, memory: GuestMemory, heads: readonly number[]): void {
  for (const head of heads) {
    const { readable, writable } = mq.buffers(head);
    for (const s of [...readable, ...writable]) memory.view(s.addr, s.len).fill(0x5a);
  }
}

test('blk reset with requests in flight: status reads NEEDS_RESET until the backend settled; afterwards guest memory and disk stay still', async () => {
  const original = image();
  const backend = new DeferredBackend(original.slice());
  const disk = backend.inner.bytes;
  const { h, mq, memory } = blkRig(backend);
  const { reads, writes } = addRequests(mq);
  h.notify(0, 2, 0);
  assert.equal(backend.pending.length, 8);

  h.setStatus(0);
  assert.equal(h.status, NEEDS_RESET, 'the reset waits for 8 backend operations');
  h.setStatus(ACK);
  h.setCommon(Q_SELECT, 2, 0);
  assert.equal(h.status, NEEDS_RESET, 'driver writes are ignored until the reset completed');
  for (const p of backend.pending.splice(0, 7)) p.release(true);
  await tick();
  // Writethrough (FLUSH not negotiated): a write completes with a flush, which the reset waits for too.
  assert.equal(backend.pending.length, 4, 'the last write, and the flushes after the first three');
  assert.equal(h.status, NEEDS_RESET);
  backend.releaseAll();
  await tick();
  assert.equal(backend.pending.length, 1, "the last write's flush");
  assert.equal(h.status, NEEDS_RESET, 'one operation is still outstanding');
  backend.releaseAll();
  await tick();
  assert.equal(h.status, 0, 'every operation settled: the reset is complete');

  // Everything of the old life happened before that: the reads landed, the writes are on the disk.
  reads.forEach((head, i) =>
    assert.deepEqual(memory.view(mq.buffers(head).writable[0]!.addr, 4096), original.subarray(i * 4096, (i + 1) * 4096)),
  );
  writes.forEach((_, i) => assert.ok(disk.subarray((128 + i * 8) * 512, (136 + i * 8) * 512).every((b) => b === 0xa0 + i)));
  assert.equal(mq.usedIdx, 0, 'no used element and no status byte for requests of the old life');
  const diskAfterReset = Buffer.from(disk);
  reuseBuffers(mq, memory, [...reads, ...writes]);
  const memoryAfterReuse = snapshot(memory);
  await sleep(20);
  assert.ok(snapshot(memory).equals(memoryAfterReuse), 'no byte of guest memory changed after the reset completed');
  assert.ok(Buffer.from(disk).equals(diskAfterReset), 'no byte of the disk changed after the reset completed');
  assert.equal(h.device.requestsInFlight, 0);
});

/** A file backend whose operations start only when the test opens the gate. */
class GatedFileBackend implements BlockBackend {
  private readonly gates: (() => void)[] = [];
  readonly readOnly = false;
  constructor(private readonly file: FileBlockBackend) {}
  get size(): number {
    return this.file.size;
  }
  get waiting(): number {
    return this.gates.length;
  }
  open(): void {
    for (const go of this.gates.splice(0)) go();
  }
  private gate(): Promise<void> {
    return new Promise((resolve) => this.gates.push(resolve));
  }
  read(offset: number, dst: GuestIo): Promise<void> {
    return this.gate().then(() => this.file.read(offset, dst));
  }
  write(offset: number, src: GuestIo): Promise<void> {
    return this.gate().then(() => this.file.write(offset, src));
  }
  flush(): Promise<void> {
    return this.gate().then(() => this.file.flush());
  }
}

test('blk reset on a FILE backend: the reset completes after the file I/O; afterwards neither guest memory nor the file changes', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'virtio-blk-reset-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'disk.img');
  const original = image();
  writeFileSync(path, original);
  const file = await FileBlockBackend.open(path);
  t.after(() => file.close());
  const backend = new GatedFileBackend(file);
  const { h, mq, memory } = blkRig(backend);
  const { reads, writes } = addRequests(mq);
  h.notify(0, 2, 0);
  assert.equal(backend.waiting, 8);

  h.setStatus(0);
  backend.open();
  assert.equal(h.status, NEEDS_RESET, 'the file I/O has only just started');
  const status = (): number => h.status;
  let polls = 0;
  while (status() !== 0) {
    assert.ok(++polls < 2000, 'the reset completes once the file I/O is done');
    await sleep(1);
    backend.open(); // the flushes that follow the writes (writethrough)
  }
  const onFile = readFileSync(path);
  writes.forEach((_, i) =>
    assert.ok(
      onFile.subarray((128 + i * 8) * 512, (136 + i * 8) * 512).every((b) => b === 0xa0 + i),
      `write ${i} is on the file`,
    ),
  );
  reads.forEach((head, i) =>
    assert.deepEqual(memory.view(mq.buffers(head).writable[0]!.addr, 4096), original.subarray(i * 4096, (i + 1) * 4096)),
  );
  reuseBuffers(mq, memory, [...reads, ...writes]);
  const memoryAfterReuse = snapshot(memory);
  await sleep(30);
  assert.ok(snapshot(memory).equals(memoryAfterReuse), 'guest memory unchanged after the reset completed');
  assert.ok(readFileSync(path).equals(onFile), 'the file unchanged after the reset completed');
  assert.equal(mq.usedIdx, 0);
});

test('blk reset storm: a driver that re-initialises without waiting starts nothing; outstanding operations stay within maxInFlight', async () => {
  const backend = new DeferredBackend(image());
  const { h, mq } = blkRig(backend, 4);
  const heads = Array.from({ length: 12 }, (_, i) => mq.addChain({ readable: [blkHeader(T_IN, i)], writable: [512, 1] }));
  h.notify(0, 2, 0);
  assert.equal(backend.pending.length, 4);
  for (let i = 0; i < 50; i++) {
    initialize(h, mq);
    h.notify(0, 2, 0);
  }
  assert.equal(backend.pending.length, 4, 'no operation started while the reset waits');
  assert.equal(h.device.requestsInFlight, 4);
  assert.equal(h.status, NEEDS_RESET);

  backend.releaseAll();
  await tick();
  assert.equal(h.status, 0);
  // A driver that waited: the device works again, the 12 chains still on the ring are the new life's.
  initialize(h, mq);
  assert.equal(h.status, LIVE);
  h.notify(0, 2, 0);
  for (let i = 0; i < 10 && mq.usedIdx < heads.length; i++) {
    assert.ok(backend.pending.length <= 4);
    backend.releaseAll();
    await tick();
  }
  assert.deepEqual(
    mq
      .readUsed()
      .map((u) => u.id)
      .sort((a, b) => a - b),
    [...heads].sort((a, b) => a - b),
  );
});

test('blk device: reset() returns a promise while operations are outstanding; they hold their slots until they settle', async () => {
  const backend = new DeferredBackend(image());
  const device = new BlkDevice({ backend, maxInFlight: 4, queueSize: 32 });
  const features = bit(VIRTIO_F_VERSION_1);
  const first = activateDevice(device, features, { size: 32 });
  assert.equal(device.reset(), undefined, 'nothing outstanding: the reset completes at once');
  const old = activateDevice(device, features, { size: 32 });
  for (let i = 0; i < 6; i++) old.q(0).addChain({ readable: [blkHeader(T_IN, i)], writable: [512, 1] });
  device.queueNotify(0);
  assert.equal(backend.pending.length, 4);
  const completion = device.reset();
  assert.ok(completion instanceof Promise);
  let completed = false;
  void completion.then(() => (completed = true));

  const next = activateDevice(device, features, { size: 32 });
  for (let i = 0; i < 6; i++) next.q(0).addChain({ readable: [blkHeader(T_IN, i)], writable: [512, 1] });
  device.queueNotify(0);
  assert.equal(backend.pending.length, 4, 'the old life still holds every slot');
  for (const p of backend.pending.splice(0, 3)) p.release(true);
  await tick();
  assert.equal(backend.pending.length, 4, 'each slot an old operation frees goes to the new life, without a notify');
  assert.equal(device.requestsInFlight, 4);
  assert.equal(completed, false);
  backend.pending.shift()!.release(true);
  await tick();
  assert.equal(completed, true, 'the last old operation settled');
  assert.equal(old.q(0).usedIdx, 0, 'old completions are dropped');
  assert.equal(first.q(0).usedIdx, 0);
  while (backend.pending.length > 0) {
    backend.releaseAll();
    await tick();
  }
  assert.equal(next.q(0).usedIdx, 6, 'the new life completes all its requests');
});

test("queue reset: queue_reset reads 1 until the queue's old operations settled, and the queue cannot be set up before", async () => {
  const h = new ModernHarness({ queueReset: true, queueMaxSizes: [16] }).enableBar();
  const reset = h.device.resetQueue!;
  let settle = (): void => {};
  h.device.resetQueue = (index) => {
    void reset(index);
    return new Promise<void>((resolve) => (settle = resolve));
  };
  const q = new MockQueue({ size: 16, memory: h.memory, base: 0x1000 });
  h.negotiate(bit(VIRTIO_F_VERSION_1) | bit(F_RING_RESET));
  h.setupQueue(0, q);
  h.setStatus(LIVE);
  h.setCommon(Q_SELECT, 2, 0);
  h.setCommon(Q_RESET, 2, 1);
  assert.equal(h.common(Q_RESET, 2), 1, 'queue reset ongoing');
  h.setupQueue(0, q);
  assert.equal(h.common(Q_ENABLE, 2), 0, 'not enabled while the reset is ongoing');
  assert.equal(h.common(Q_DESC_LO, 4), 0, 'nor set up');
  settle();
  await tick();
  assert.equal(h.common(Q_RESET, 2), 0, 'complete');
  h.setupQueue(0, q);
  assert.equal(h.common(Q_ENABLE, 2), 1);
  assert.equal(h.status, LIVE);
});

test("blk queue reset: queue_reset reads 1 until that queue's reads settled, queue 0 answers meanwhile; a device reset then waits for the rest", async () => {
  const memory = new ArrayGuestMemory(4 << 20);
  const backend = new DeferredBackend(image());
  const h = new ModernHarness({ memory }, new BlkDevice({ backend, numQueues: 2, queueSize: 16 })).enableBar();
  const [q0, q1] = [0x1000, 0x2_0000].map((base) => new MockQueue({ size: 16, memory, base }));
  h.negotiate(bit(VIRTIO_F_VERSION_1) | bit(F_BLK_MQ) | bit(F_RING_RESET));
  h.setupQueue(0, q0!);
  h.setupQueue(1, q1!);
  h.setStatus(LIVE);
  const read = (mq: MockQueue, sector: number): number => mq.addChain({ readable: [blkHeader(T_IN, sector)], writable: [512, 1] });
  const heads0 = [0, 1].map((i) => read(q0!, i));
  const heads1 = [0, 1].map((i) => read(q1!, 100 + i));
  h.notify(0, 2, 0);
  h.notify(4, 2, 1);
  assert.equal(backend.pending.length, 4);
  h.setCommon(Q_SELECT, 2, 1);
  h.setCommon(Q_RESET, 2, 1);
  assert.equal(h.common(Q_RESET, 2), 1, 'two reads of queue 1 outstanding');
  assert.equal(h.common(Q_ENABLE, 2), 0);
  for (const p of backend.pending.filter((op) => op.offset < 100 * 512)) p.release(true);
  await tick();
  assert.deepEqual(
    q0!.readUsed().map((u) => u.id),
    heads0,
    'queue 0 answers while queue 1 is being reset',
  );
  h.setCommon(Q_SELECT, 2, 1);
  assert.equal(h.common(Q_RESET, 2), 1);
  backend.pending.find((op) => op.offset === 100 * 512)!.release(true);
  await tick();
  assert.equal(h.common(Q_RESET, 2), 1, 'one read of queue 1 still outstanding');
  h.setStatus(0);
  assert.equal(h.status, NEEDS_RESET, 'the device reset waits for it as well');
  backend.releaseAll();
  await tick();
  assert.equal(h.status, 0);
  h.setCommon(Q_SELECT, 2, 1);
  assert.equal(h.common(Q_RESET, 2), 0);
  assert.deepEqual(q1!.readUsed(), [], 'no used element for the reset queue');
  for (const head of heads1) assert.equal(memory.read8(q1!.buffers(head).writable[1]!.addr), WRITABLE_FILL, 'nor a status byte');
  assert.equal(h.device.requestsInFlight, 0);
});

for (const legacy of [false, true]) {
  const name = legacy ? 'the legacy interface of a transitional blk' : 'a modern blk';
  test(`our driver closing ${name} with a request in flight waits until the reset completed`, async () => {
    const m = new Machine({ ramSize: 16 << 20 });
    const backend = new DeferredBackend(image());
    const { bdf, fn } = m.plugVirtio(new BlkDevice({ backend }), { mode: legacy ? 'transitional' : 'modern' });
    const blk = await BlkDriver.open(m.bus, bdf, { forceLegacy: legacy, timeoutMs: 2000 });
    const status = (): number => (legacy ? fn.barRead(0, LEGACY_STATUS, 1) : fn.barRead(4, COMMON_STATUS, 1));
    const read = blk.read(0, 8).then(
      () => 'completed',
      (err: { code?: string }) => err.code,
    );
    for (let i = 0; i < 100 && backend.pending.length === 0; i++) await sleep(1);
    assert.equal(backend.pending.length, 1);
    let closed = false;
    const closing = blk.close().then(() => (closed = true));
    await sleep(20);
    assert.equal(status(), NEEDS_RESET);
    assert.equal(closed, false, 'the driver is still waiting for status 0');
    backend.releaseAll();
    await closing;
    assert.equal(status(), 0);
    assert.equal(await read, 'ERR_USAGE', 'the request failed: the driver closed');
  });
}

/** Every byte of the harness's queue regions, copied. */
function regions(h: { queues: readonly (MockQueue | undefined)[] }): Buffer {
  return Buffer.concat(h.queues.map((q) => (q ? snapshot(q.memory as ArrayGuestMemory) : Buffer.alloc(0))));
}

test('net: nothing asynchronous touches guest memory after a reset; frames handed to the backend are copies', () => {
  const own = mac(0x02, 0, 0, 0, 0, 0x01);
  const backend = new RecordingNetBackend();
  const device = new VirtioNetDevice({ backend, mac: own });
  const h = activateDevice(device, bit(VIRTIO_F_VERSION_1));
  const rx = h.q(0);
  const tx = h.q(1);
  for (let i = 0; i < 4; i++) rx.addChain({ writable: [2048] });
  const frame = ethFrame(own, mac(0x02, 0, 0, 0, 0, 0x02), 100);
  const head = tx.addChain({ readable: [new Uint8Array(12), frame] });
  device.queueNotify(1);
  assert.equal(backend.sent.length, 1);
  assert.equal(device.reset(), undefined, 'net has no backend operation to wait for');

  // The driver reuses its transmit buffer: the frame the backend holds does not change with it.
  tx.memory.view(tx.buffers(head).readable[1]!.addr, frame.byteLength).fill(0x5a);
  assert.deepEqual(backend.sent[0], frame);
  const before = regions(h);
  backend.inject(frame);
  assert.ok(regions(h).equals(before), 'a frame arriving after the reset is not written anywhere');
  assert.equal(device.stats.rxDropped, 1);
  assert.equal(rx.usedIdx, 0);
});

test('console: output waiting for a full stream and input arriving after a reset never touch guest memory', async () => {
  const callbacks: (() => void)[] = [];
  const written: Buffer[] = [];
  const output = new Writable({
    highWaterMark: 16,
    write(chunk: Buffer, _encoding, callback) {
      written.push(chunk);
      callbacks.push(callback);
    },
  });
  const input = new PassThrough();
  const device = new VirtioConsoleDevice({ ports: [{ console: true, host: streamBytePort({ input, output }) }] });
  const h = activateDevice(device, bit(VIRTIO_F_VERSION_1));
  const rx = h.q(0);
  const tx = h.q(1);
  for (let i = 0; i < 3; i++) tx.addChain({ readable: [new Uint8Array(64).fill(0x30 + i)] });
  device.queueNotify(1);
  assert.equal(written.length, 1, 'one batch written, then the stream is full');
  const txUsed = tx.usedIdx;
  assert.ok(txUsed < 3, 'chains wait in the transmitq');
  for (let i = 0; i < 2; i++) rx.addChain({ writable: [64] });
  assert.equal(device.reset(), undefined, 'console has no backend operation to wait for');

  const before = regions(h);
  for (const callback of callbacks.splice(0)) callback(); // the stream drains
  input.write('typed after the reset');
  await sleep(10);
  assert.ok(regions(h).equals(before), 'neither the drain nor the input wrote guest memory');
  assert.equal(tx.usedIdx, txUsed);
  assert.equal(rx.usedIdx, 0);
  assert.equal(written.length, 1, 'no guest byte left the device after the reset');
});
