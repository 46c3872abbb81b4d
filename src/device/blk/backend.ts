/**
 * What a virtio-blk device stores its sectors in. The device checks every range against `size`
 * before calling, so a backend only sees in-bounds, sector-aligned requests.
 *
 * Operations may complete synchronously (return undefined) or asynchronously (return a promise); the
 * device keeps a bounded number of asynchronous requests in flight and completes each one on its own,
 * in whatever order they finish. A thrown error or a rejected promise becomes VIRTIO_BLK_S_IOERR.
 */
export type BlockResult = void | Promise<void>;

/**
 * A scatter list: the guest buffers of one request, in order, as zero-copy views of guest memory.
 * A backend reads into or writes from them directly (e.g. with readv/writev).
 */
export type IoVec = readonly Uint8Array[];

export interface BlockBackend {
  /** Size in bytes; the device exposes floor(size / 512) sectors. */
  readonly size: number;
  /** The device offers VIRTIO_BLK_F_RO and refuses every write. */
  readonly readOnly: boolean;
  /** Fill `iov` with the bytes at `offset`, `offset + total length <= size`. */
  read(offset: number, iov: IoVec): BlockResult;
  /** Store `iov` at `offset`. Never called on a read-only backend. */
  write(offset: number, iov: IoVec): BlockResult;
  /** Make every completed write stable (fsync for a file). */
  flush(): BlockResult;
  /** Make [offset, offset + length) read back as zeroes. Present: the device offers WRITE_ZEROES. */
  writeZeroes?(offset: number, length: number): BlockResult;
  /** The driver no longer needs [offset, offset + length). Present: the device offers DISCARD. */
  discard?(offset: number, length: number): BlockResult;
}

/** Total bytes of a scatter list. */
export function iovLength(iov: IoVec): number {
  let n = 0;
  for (const b of iov) n += b.byteLength;
  return n;
}
