import type { GuestMemory } from '../../memory/guest-memory.js';

/**
 * What a virtio-blk device stores its sectors in. The device checks every range against `size`
 * before calling, so a backend only sees in-bounds, sector-aligned requests.
 *
 * Operations may complete synchronously (return undefined) or asynchronously (return a promise); the
 * device keeps a bounded number of asynchronous requests in flight and completes each one on its own,
 * in whatever order they finish. A thrown error or a rejected promise becomes VIRTIO_BLK_S_IOERR.
 * A promise must settle only once the operation is over: no later access to the guest buffers or to
 * the disk. A device reset waits for exactly that before it reports itself done. The {@link GuestIo}
 * of an operation is the backend's until then only: the device may refill the same object for a
 * later request once an operation has completed synchronously, so keep its spans, not the object.
 */
export type BlockResult = void | Promise<void>;

/** A byte range of guest memory. */
export interface GuestSpan {
  readonly addr: number;
  readonly len: number;
}

/**
 * The guest buffers of one request, in order, with the memory they live in; the device has checked
 * every range against guest memory. A backend copies through `memory.read`/`memory.write` (no view
 * per request: views are the costliest thing on a 4 KiB request) or takes views with
 * {@link guestViews} where a system call wants them (readv/writev).
 */
export interface GuestIo {
  readonly memory: GuestMemory;
  readonly spans: readonly GuestSpan[];
  /** Total bytes of `spans`. */
  readonly length: number;
}

/** Zero-copy views of `io`'s buffers (valid until guest memory is remapped, e.g. a wasm memory grows). */
export function guestViews(io: GuestIo): Uint8Array[] {
  return io.spans.map((s) => io.memory.view(s.addr, s.len));
}

export interface BlockBackend {
  /** Size in bytes; the device exposes floor(size / 512) sectors. */
  readonly size: number;
  /** The device offers VIRTIO_BLK_F_RO and refuses every write. */
  readonly readOnly: boolean;
  /** Copy the bytes at `offset` into the guest buffers of `dst`; `offset + dst.length <= size`. */
  read(offset: number, dst: GuestIo): BlockResult;
  /** Store the guest buffers of `src` at `offset`. Never called on a read-only backend. */
  write(offset: number, src: GuestIo): BlockResult;
  /** Make every completed write stable (fsync for a file). */
  flush(): BlockResult;
  /** Make [offset, offset + length) read back as zeroes. Present: the device offers WRITE_ZEROES. */
  writeZeroes?(offset: number, length: number): BlockResult;
  /** The driver no longer needs [offset, offset + length). Present: the device offers DISCARD. */
  discard?(offset: number, length: number): BlockResult;
}
