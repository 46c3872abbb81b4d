import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryBlockBackend } from '../../../src/device/blk/memory-backend.js';
import { FileBlockBackend } from '../../../src/device/blk/file-backend.js';
import { HostFileError, UsageError } from '../../../src/errors.js';
import type { GuestIo } from '../../../src/device/blk/backend.js';
import { ArrayGuestMemory } from '../../../src/memory/guest-memory.js';

function pattern(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (i * 31 + seed) & 0xff;
  return out;
}

/**
 * Guest buffers of the given sizes at scattered addresses (a gap after each, so that nothing can
 * pass by assuming contiguous memory), filled with `fill`.
 */
function guestIo(memory: ArrayGuestMemory, sizes: readonly number[], fill = 0): GuestIo {
  let addr = 0x1000;
  const spans = sizes.map((len) => {
    const span = { addr, len };
    memory.view(addr, len).fill(fill);
    addr += len + 0x1000 + 0x37;
    return span;
  });
  return { memory, spans, length: sizes.reduce((a, b) => a + b, 0) };
}

/** The bytes of `io`'s buffers, in order. */
function bytesOf(io: GuestIo): Buffer {
  return Buffer.concat(io.spans.map((s) => io.memory.view(s.addr, s.len)));
}

/** A GuestIo holding `chunks` in scattered guest buffers. */
function guestWith(memory: ArrayGuestMemory, chunks: readonly Uint8Array[]): GuestIo {
  const io = guestIo(
    memory,
    chunks.map((c) => c.length),
  );
  io.spans.forEach((s, i) => memory.write(s.addr, chunks[i]!));
  return io;
}

function tempImage(bytes: Uint8Array): { path: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'virtio-blk-'));
  const path = join(dir, 'disk.img');
  writeFileSync(path, bytes);
  return { path, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

test('memory backend: scatter read and gather write at an offset, in place', () => {
  const disk = pattern(4096, 1);
  const b = new MemoryBlockBackend(disk);
  assert.equal(b.size, 4096);
  const memory = new ArrayGuestMemory(1 << 16);
  const dst = guestIo(memory, [100, 412], 0xee);
  b.read(512, dst);
  assert.deepEqual(memory.view(dst.spans[0]!.addr, 100), disk.slice(512, 612));
  assert.deepEqual(memory.view(dst.spans[1]!.addr, 412), disk.slice(612, 1024));
  assert.equal(memory.read8(dst.spans[0]!.addr + 100), 0, 'nothing written past a buffer');
  b.write(1024, guestWith(memory, [pattern(10, 7), pattern(502, 9)]));
  assert.deepEqual(disk.slice(1024, 1034), pattern(10, 7), 'the given bytes are the disk, not a copy');
  assert.deepEqual(disk.slice(1034, 1536), pattern(502, 9));
  assert.equal(disk[1536], pattern(4096, 1)[1536], 'nothing written past the request');
  b.writeZeroes(0, 512);
  assert.ok(disk.subarray(0, 512).every((x) => x === 0));
  b.flush();
  assert.equal(b.flushes, 1);
});

test('memory backend over a view of a larger buffer: a range past the disk is refused, nothing beyond it read or written', () => {
  const whole = pattern(8192, 5);
  const b = new MemoryBlockBackend(whole.subarray(1024, 5120));
  const memory = new ArrayGuestMemory(1 << 16);
  const dst = guestIo(memory, [512, 512], 0xee);
  b.read(3072, dst);
  assert.deepEqual(bytesOf(dst), Buffer.from(whole.slice(4096, 5120)), 'the last 1 KiB of the view, at the view offset');
  const past = guestIo(memory, [512, 1024], 0xee);
  assert.throws(() => b.read(3072, past), UsageError, 'the second buffer would reach past the disk into the larger buffer');
  assert.ok(
    memory.view(past.spans[1]!.addr, 1024).every((x) => x === 0xee),
    'nothing of the larger buffer read into the guest',
  );
  assert.throws(() => b.read(-512, guestIo(memory, [512], 0xee)), UsageError, 'a negative offset');
  assert.throws(() => b.write(3584, guestWith(memory, [pattern(1024, 1)])), RangeError, 'a write past the disk');
  assert.deepEqual(whole.subarray(5120), pattern(8192, 5).subarray(5120), 'nothing written past the view');
});

test('file backend: positioned scatter/gather I/O lands on the file; fsync counted', async (t) => {
  const original = pattern(64 * 1024, 3);
  const { path, cleanup } = tempImage(original);
  t.after(cleanup);
  const b = await FileBlockBackend.open(path);
  assert.equal(b.size, original.byteLength);
  assert.equal(b.readOnly, false);
  const memory = new ArrayGuestMemory(1 << 16);
  const parts = guestIo(memory, [1000, 24, 2048]);
  await b.read(4096, parts);
  assert.deepEqual(bytesOf(parts), Buffer.from(original.subarray(4096, 4096 + 3072)));

  await b.write(8192, guestWith(memory, [pattern(512, 11), pattern(1536, 12)]));
  await b.writeZeroes(512, 1024);
  await b.discard(60 * 1024, 512);
  await b.flush();
  assert.equal(b.fsyncs, 1);
  await b.close();

  const expected = Buffer.from(original);
  Buffer.from(pattern(512, 11)).copy(expected, 8192);
  Buffer.from(pattern(1536, 12)).copy(expected, 8704);
  expected.fill(0, 512, 1536);
  expected.fill(0, 60 * 1024, 60 * 1024 + 512);
  assert.deepEqual(readFileSync(path), expected);
});

test('file backend: a read-only image opens read-only and refuses writes at the OS level', async (t) => {
  const { path, cleanup } = tempImage(pattern(4096, 5));
  t.after(cleanup);
  const b = await FileBlockBackend.open(path, { readOnly: true });
  assert.equal(b.readOnly, true);
  await assert.rejects(b.write(0, guestIo(new ArrayGuestMemory(1 << 16), [512])));
  await b.close();
  assert.deepEqual(readFileSync(path), Buffer.from(pattern(4096, 5)));
});

test('file backend: reading past the end of a shrunk file fails instead of looping', async (t) => {
  const { path, cleanup } = tempImage(pattern(4096, 5));
  t.after(cleanup);
  const b = await FileBlockBackend.open(path);
  writeFileSync(path, new Uint8Array(1024)); // truncated behind the backend's back
  await assert.rejects(b.read(512, guestIo(new ArrayGuestMemory(1 << 16), [1024])), /end of file/);
  await b.close();
});

test('file backend: an image it cannot use is a HostFileError with a stable code', async (t) => {
  const { path, cleanup } = tempImage(new Uint8Array(1000));
  t.after(cleanup);
  const dir = join(path, '..');
  const refused = async (p: string, code: string, readOnly = false): Promise<void> => {
    await assert.rejects(
      FileBlockBackend.open(p, { readOnly }),
      (err: unknown) => err instanceof HostFileError && err.code === code && err.path === p && err.message.startsWith(`${p}: `),
      p,
    );
  };
  await refused(join(dir, 'missing.img'), 'ERR_HOST_FILE_NOT_FOUND');
  await refused(join(path, 'below-a-file.img'), 'ERR_HOST_FILE_NOT_FOUND');
  await refused(dir, 'ERR_HOST_FILE_IS_DIRECTORY');
  // Read-only, a directory opens; the stat after it must refuse it.
  await refused(dir, 'ERR_HOST_FILE_IS_DIRECTORY', true);
  await refused('/dev/null', 'ERR_HOST_FILE_NOT_REGULAR', true);
  // 1000 bytes would be one sector and 488 bytes no one can reach.
  await refused(path, 'ERR_HOST_FILE_SIZE');
});
