/**
 * A disk image in a host file, accessed asynchronously with positioned readv/writev straight into
 * and out of guest memory (no copy). FLUSH is fsync. The device bounds how many requests are in
 * flight; this class only turns each one into positioned system calls.
 */

import { open, type FileHandle } from 'node:fs/promises';
import { HostFileError } from '../../errors.js';
import { VIRTIO_BLK_SECTOR_SIZE } from '../../spec/blk.js';
import { guestViews, type BlockBackend, type GuestIo } from './backend.js';

export interface FileBackendOptions {
  /** Open the file read-only and offer VIRTIO_BLK_F_RO. */
  readonly readOnly?: boolean;
}

/** Bytes written per call when zeroing a range: one shared, never-modified zero buffer. */
const ZERO_CHUNK = new Uint8Array(64 * 1024);

/** A {@link BlockBackend} over a host file (asynchronous); open it with {@link FileBlockBackend.open}. */
export class FileBlockBackend implements BlockBackend {
  /** Completed fsync calls, for observing that FLUSH reached the disk. */
  fsyncs = 0;

  private constructor(
    private readonly handle: FileHandle,
    readonly size: number,
    readonly readOnly: boolean,
    /** The image's path, for messages. */
    readonly path: string,
  ) {}

  /**
   * Open an existing image; its current length is the disk size, a whole number of sectors (a
   * partial last sector would silently not be part of the disk). Fails with a {@link HostFileError}
   * when the path is missing, not a regular file, not permitted, or of such a length.
   */
  static async open(path: string, options: FileBackendOptions = {}): Promise<FileBlockBackend> {
    const readOnly = options.readOnly ?? false;
    const handle = await open(path, readOnly ? 'r' : 'r+').catch((err: unknown) => {
      throw HostFileError.fromSystem(path, err);
    });
    try {
      const stat = await handle.stat();
      if (stat.isDirectory()) throw new HostFileError('ERR_HOST_FILE_IS_DIRECTORY', path, 'is a directory');
      if (!stat.isFile()) throw new HostFileError('ERR_HOST_FILE_NOT_REGULAR', path, 'not a regular file');
      if (stat.size % VIRTIO_BLK_SECTOR_SIZE !== 0) {
        throw new HostFileError(
          'ERR_HOST_FILE_SIZE',
          path,
          `${stat.size} bytes is not a whole number of ${VIRTIO_BLK_SECTOR_SIZE}-byte sectors`,
        );
      }
      return new FileBlockBackend(handle, stat.size, readOnly, path);
    } catch (err) {
      await handle.close();
      throw err instanceof HostFileError ? err : HostFileError.fromSystem(path, err);
    }
  }

  async read(offset: number, dst: GuestIo): Promise<void> {
    let pos = offset;
    let rest: Uint8Array[] = guestViews(dst);
    // Bounded: each pass transfers at least one byte or throws.
    while (rest.length > 0) {
      const { bytesRead } = await this.handle.readv(rest, pos);
      if (bytesRead === 0) throw new Error(`${this.path}: unexpected end of file at ${pos}`);
      pos += bytesRead;
      rest = advance(rest, bytesRead);
    }
  }

  async write(offset: number, src: GuestIo): Promise<void> {
    let pos = offset;
    let rest: Uint8Array[] = guestViews(src);
    while (rest.length > 0) {
      const { bytesWritten } = await this.handle.writev(rest, pos);
      if (bytesWritten === 0) throw new Error(`${this.path}: write made no progress at ${pos}`);
      pos += bytesWritten;
      rest = advance(rest, bytesWritten);
    }
  }

  async flush(): Promise<void> {
    await this.handle.sync();
    this.fsyncs++;
  }

  async writeZeroes(offset: number, length: number): Promise<void> {
    let pos = offset;
    const end = offset + length;
    while (pos < end) {
      const n = Math.min(ZERO_CHUNK.byteLength, end - pos);
      const { bytesWritten } = await this.handle.write(ZERO_CHUNK, 0, n, pos);
      if (bytesWritten === 0) throw new Error(`${this.path}: write made no progress at ${pos}`);
      pos += bytesWritten;
    }
  }

  /** Node cannot punch holes, so discarded sectors are zeroed (a valid outcome of DISCARD). */
  discard(offset: number, length: number): Promise<void> {
    return this.writeZeroes(offset, length);
  }

  async close(): Promise<void> {
    await this.handle.close();
  }
}

/** The scatter list without its first `n` bytes (after a short transfer). */
function advance(iov: readonly Uint8Array[], n: number): Uint8Array[] {
  let i = 0;
  let skip = n;
  while (i < iov.length && skip >= iov[i]!.byteLength) skip -= iov[i++]!.byteLength;
  if (i === iov.length) return [];
  return [iov[i]!.subarray(skip), ...iov.slice(i + 1)];
}
