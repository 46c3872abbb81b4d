/**
 * The machine of the save/restore peer test (test/peer/linux/save-restore.test.ts), made the same way
 * in the saving process and in the restoring child (save-restore-child.ts): the test machine with
 * virtio-blk over a disk file (writes counted), virtio-console with its port's output collected,
 * virtio-net answering at 10.0.2.2.
 */

import { PassThrough } from 'node:stream';
import { BlkDevice } from '../../src/device/blk/blk-device.js';
import type { BlockBackend, BlockResult, GuestIo } from '../../src/device/blk/backend.js';
import { FileBlockBackend } from '../../src/device/blk/file-backend.js';
import { VirtioConsoleDevice } from '../../src/device/console/console-device.js';
import { streamBytePort } from '../../src/device/console/port-streams.js';
import { bootTestMachine, type TestMachine, type TestMachineOptions } from './linux-machine.js';
import type { RingName } from './ring-formats.js';

/** The disk: its size, and the pattern the guest's blkwrite writes ("virtio-ts WORD\n" repeated). */
export const DISK_BYTES = 32 << 20;
export const PATTERN_BYTES = 8 << 20;
export const PATTERN_WORD = 'saved';
export const HOST = '10.0.2.2';
export const GUEST = '10.0.2.15';

/** The pattern's bytes, as the guest writes them from offset 0. */
export function pattern(): Buffer {
  const unit = Buffer.from(`virtio-ts ${PATTERN_WORD}\n`);
  return Buffer.alloc(PATTERN_BYTES, unit);
}

/** A file backend that counts the bytes written. */
class CountingBackend implements BlockBackend {
  written = 0;
  constructor(readonly file: FileBlockBackend) {}
  get size(): number {
    return this.file.size;
  }
  get readOnly(): boolean {
    return this.file.readOnly;
  }
  read(offset: number, dst: GuestIo): BlockResult {
    return this.file.read(offset, dst);
  }
  write(offset: number, src: GuestIo): BlockResult {
    this.written += src.length;
    return this.file.write(offset, src);
  }
  flush(): BlockResult {
    return this.file.flush();
  }
  writeZeroes(offset: number, length: number): BlockResult {
    return this.file.writeZeroes(offset, length);
  }
  discard(offset: number, length: number): BlockResult {
    return this.file.discard(offset, length);
  }
}

export interface SavedMachine {
  readonly m: TestMachine;
  readonly disk: CountingBackend;
  /** What the guest wrote to the console port so far. */
  console(): string;
  close(): Promise<void>;
}

/** The machine over the disk file `path`; `state` resumes a saved one instead of booting. */
export async function savedMachine(path: string, ring: RingName, state?: ArrayBuffer): Promise<SavedMachine> {
  const disk = new CountingBackend(await FileBlockBackend.open(path));
  let out = '';
  const output = new PassThrough();
  output.on('data', (chunk: Buffer) => (out += chunk.toString('latin1')));
  const options: TestMachineOptions = { ring, ...(state === undefined ? {} : { state }) };
  let m: TestMachine;
  try {
    m = await bootTestMachine(
      {
        blk: new BlkDevice({ backend: disk }),
        console: new VirtioConsoleDevice({ ports: [{ console: true, host: streamBytePort({ input: new PassThrough(), output }) }] }),
      },
      options,
    );
  } catch (e) {
    await disk.file.close();
    throw e;
  }
  return {
    m,
    disk,
    console: () => out,
    close: async () => {
      await m.guest.destroy();
      await disk.file.close();
    },
  };
}
