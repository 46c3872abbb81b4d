/**
 * v86 saved states with our devices in them (issue 16; src/platform/v86/device-state.ts): a Linux
 * guest writes an 8 MiB pattern to our virtio-blk with dd (its blkwrite command); the machine is
 * saved mid-write, with requests in flight, and restored in a FRESH Node process over the same disk
 * file, where the guest finishes the write; the host then checks every byte of the file. Console and
 * network work after the restore. A state whose device part is corrupt is refused before anything is
 * restored. Split and packed rings.
 */

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { V86StateError } from '../../../src/errors.js';
import { V86_DEVICE_STATE_INDEX } from '../../../src/platform/v86/device-state.js';
import { DISK_BYTES, PATTERN_BYTES, PATTERN_WORD, pattern, savedMachine } from '../../helpers/saved-machine.js';
import { RING_FORMATS } from '../../helpers/ring-formats.js';

const run = promisify(execFile);
const CHILD = new URL('./save-restore-child.js', import.meta.url).pathname;

/** `state` (v86's save_state format: header, JSON info block, buffers) with the blk function's snapshot magic zeroed. */
function corruptDevicePart(state: ArrayBuffer): ArrayBuffer {
  const copy = state.slice(0);
  const header = new Int32Array(copy, 0, 4);
  const infoLen = header[3]!;
  const info = JSON.parse(new TextDecoder().decode(new Uint8Array(copy, 16, infoLen))) as {
    buffer_infos: { offset: number; length: number }[];
    state: unknown[];
  };
  const part = info.state[V86_DEVICE_STATE_INDEX] as [string, number, [number, string, { buffer_id: number }][]];
  const blk = part[2].find(([, name]) => name === 'blk')!;
  const buffer = info.buffer_infos[blk[2].buffer_id]!;
  const start = ((16 + infoLen + 3) & ~3) + buffer.offset;
  new Uint8Array(copy, start, 4).fill(0);
  return copy;
}

for (const ring of RING_FORMATS) {
  describe(`${ring} ring`, () => {
    let dir: string;
    before(async () => {
      dir = await mkdtemp(join(tmpdir(), 'virtio-ts-save-'));
    });
    after(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    test('saved mid-dd, restored in a fresh process: the write completes, every byte on the host; console and net work', async (t) => {
      const disk = join(dir, 'disk.img');
      await writeFile(disk, Buffer.alloc(DISK_BYTES));
      const saving = await savedMachine(disk, ring);
      let state: ArrayBuffer;
      try {
        const { guest } = saving.m;
        const loaded = await guest.command('load');
        assert.equal(loaded.rc, 0);
        guest.sendSerial(`blkwrite vda 0 ${PATTERN_BYTES} ${PATTERN_WORD}\n`);
        // Save once the write is well under way, and not done.
        const deadline = Date.now() + 120_000;
        while (saving.disk.written < 1 << 20 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
        state = await guest.saveState(true);
        t.diagnostic(`saved after ${saving.disk.written} of ${PATTERN_BYTES} bytes written; state ${state.byteLength} bytes`);
        assert.ok(saving.disk.written > 0 && saving.disk.written < PATTERN_BYTES, 'saved mid-write');
      } finally {
        await saving.close();
      }
      const statePath = join(dir, 'state.bin');
      await writeFile(statePath, new Uint8Array(state));

      const { stdout } = await run(process.execPath, [CHILD, statePath, disk, ring], { timeout: 600_000, maxBuffer: 1 << 20 });
      const child = JSON.parse(stdout.trim().split('\n').at(-1)!) as {
        blkwrite: string;
        hvcRc: number;
        console: string;
        netupRc: number;
        received: number;
        written: number;
      };
      t.diagnostic(`restored process wrote ${child.written} bytes; ${child.blkwrite.trim()}`);
      assert.match(child.blkwrite, /VT-DONE blkwrite rc=0/, 'the guest finished its write after the restore');
      assert.ok(child.written > 0, 'the rest of the write went through the restored device');
      const bytes = await readFile(disk);
      const expected = pattern();
      const diff = bytes.subarray(0, PATTERN_BYTES).findIndex((b, i) => b !== expected[i]);
      assert.equal(diff, -1, `the disk file differs from the pattern at byte ${diff}`);
      assert.equal(
        bytes.subarray(PATTERN_BYTES).findIndex((b) => b !== 0),
        -1,
        'nothing written past the pattern',
      );
      assert.equal(child.hvcRc, 0);
      assert.match(child.console, /restored-console-works\n/, 'the console carries bytes after the restore');
      assert.equal(child.netupRc, 0);
      assert.equal(child.received, 3, 'the guest pings the host end after the restore');

      // The same state with its device part corrupted: refused before anything is restored.
      const fresh = join(dir, 'fresh.img');
      await writeFile(fresh, Buffer.alloc(DISK_BYTES));
      await assert.rejects(
        savedMachine(fresh, ring, corruptDevicePart(state)),
        (e: unknown) => e instanceof V86StateError && e.code === 'ERR_V86_STATE' && /function blk .*snapshot magic/.test(e.message),
      );
    });
  });
}
