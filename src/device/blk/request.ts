/**
 * A virtio-blk request parsed from its descriptor chain before any I/O (spec 5.2.6). Message framing
 * is free (2.6.4): the header, data and status byte may be split across descriptors in any way, so
 * the parser works on byte ranges of the chain's readable and writable halves, and data stays in
 * guest memory, named by address and length.
 */

import { RequestShapeError } from '../../errors.js';
import { joinU64, type GuestMemory } from '../../memory/guest-memory.js';
import {
  VIRTIO_BLK_DWZ_FLAGS,
  VIRTIO_BLK_DWZ_NUM_SECTORS,
  VIRTIO_BLK_DWZ_SECTOR,
  VIRTIO_BLK_DWZ_SIZE,
  VIRTIO_BLK_REQ_HDR_SIZE,
  VIRTIO_BLK_REQ_SECTOR,
  VIRTIO_BLK_REQ_TYPE,
  VIRTIO_BLK_S_IOERR,
  VIRTIO_BLK_S_UNSUPP,
  VIRTIO_BLK_SECTOR_SIZE,
  VIRTIO_BLK_T_DISCARD,
  VIRTIO_BLK_T_FLUSH,
  VIRTIO_BLK_T_GET_ID,
  VIRTIO_BLK_T_IN,
  VIRTIO_BLK_T_OUT,
  VIRTIO_BLK_T_WRITE_ZEROES,
  VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP,
} from '../../spec/blk.js';
import type { DescriptorChain } from '../../queue/types.js';
import { readChain } from '../chain-bytes.js';
import type { GuestIo, GuestSpan } from './backend.js';

/** A byte range of the disk: offset and length are multiples of 512 and inside the disk. */
export interface BlkRange {
  readonly offset: number;
  readonly length: number;
}

/** One request, checked against the disk and ready to execute. */
export type BlkRequest =
  | { readonly type: typeof VIRTIO_BLK_T_IN; readonly offset: number; readonly data: GuestIo }
  | { readonly type: typeof VIRTIO_BLK_T_OUT; readonly offset: number; readonly data: GuestIo }
  | { readonly type: typeof VIRTIO_BLK_T_FLUSH }
  | { readonly type: typeof VIRTIO_BLK_T_GET_ID; readonly data: GuestIo }
  | { readonly type: typeof VIRTIO_BLK_T_DISCARD; readonly ranges: readonly BlkRange[] }
  | { readonly type: typeof VIRTIO_BLK_T_WRITE_ZEROES; readonly ranges: readonly BlkRange[] }
  /** A type this parser does not know (answered VIRTIO_BLK_S_UNSUPP). */
  | { readonly type: 'unsupported'; readonly requestType: number };

/** Why a request was refused before any I/O; each maps to the status the device answers. */
export type BlkRequestFault =
  | 'header-short' // fewer than 16 device-readable bytes for the header
  | 'unexpected-readable' // device-readable bytes after the header of a request that carries none
  | 'unexpected-writable' // device-writable bytes before the status of a request that returns none
  | 'data-not-sector-multiple' // IN/OUT data length not a multiple of 512
  | 'past-capacity' // sector + length beyond the disk (or overflowing)
  | 'segments-malformed' // DISCARD/WRITE_ZEROES data empty or not a multiple of 16 bytes
  | 'too-many-segments' // more segments than max_discard_seg / max_write_zeroes_seg
  | 'too-many-sectors' // a segment longer than max_discard_sectors / max_write_zeroes_sectors
  | 'segment-flags'; // unknown flag bits, or unmap on DISCARD (5.2.6.4: UNSUPP)

/** A request refused before any I/O, with the status byte to answer (IOERR or UNSUPP). */
export class BlkRequestError extends RequestShapeError {
  constructor(
    readonly fault: BlkRequestFault,
    message: string,
  ) {
    super(`virtio-blk request: ${message}`);
  }

  /** VIRTIO_BLK_S_UNSUPP for flags the device does not support (5.2.6.4), IOERR otherwise. */
  get status(): number {
    return this.fault === 'segment-flags' ? VIRTIO_BLK_S_UNSUPP : VIRTIO_BLK_S_IOERR;
  }
}

/** The disk as the parser checks requests against it. */
export interface BlkLimits {
  /** Disk size in 512-byte sectors. */
  readonly capacity: number;
  readonly maxDiscardSectors: number;
  readonly maxDiscardSeg: number;
  readonly maxWriteZeroesSectors: number;
  readonly maxWriteZeroesSeg: number;
}

/**
 * Guest address of the status byte: the last byte of the last non-empty device-writable buffer, or
 * undefined when the chain has no writable byte (nothing to answer in: a fatal guest fault).
 */
export function statusAddress(chain: DescriptorChain): number | undefined {
  for (let i = chain.count - 1; i >= chain.readable; i--) {
    const len = chain.len(i);
    if (len > 0) return chain.addr(i) + len - 1;
  }
  return undefined;
}

const header = new Uint8Array(VIRTIO_BLK_REQ_HDR_SIZE);
const headerView = new DataView(header.buffer);

/** The header's le64 sector at `at` in `dv`: exact below 2^53, and anything larger still fails the capacity check. */
function sectorAt(dv: DataView, at: number): number {
  return joinU64(dv.getUint32(at + VIRTIO_BLK_REQ_SECTOR, true), dv.getUint32(at + VIRTIO_BLK_REQ_SECTOR + 4, true));
}

/**
 * Parse the chain as a virtio-blk request. Throws BlkRequestError when the shape or range is wrong;
 * the caller has already found the status byte ({@link statusAddress}). With `reuse`, an IN or OUT
 * request and data in one buffer are described in it, refilled (see {@link RequestStorage}).
 */
export function parseBlkRequest(chain: DescriptorChain, limits: BlkLimits, memory: GuestMemory, reuse?: RequestStorage): BlkRequest {
  if (chain.readableBytes < VIRTIO_BLK_REQ_HDR_SIZE) {
    throw new BlkRequestError('header-short', `${chain.readableBytes} readable bytes, the header needs ${VIRTIO_BLK_REQ_HDR_SIZE}`);
  }
  // The header in one buffer: its fields read in place, through its region (one range check); else gathered first.
  let dv: DataView = headerView;
  let at = 0;
  if (chain.len(0) >= VIRTIO_BLK_REQ_HDR_SIZE) {
    const addr = chain.addr(0);
    const r = memory.region(addr, VIRTIO_BLK_REQ_HDR_SIZE);
    dv = r.dv;
    at = addr - r.base;
  } else readChain(chain, 0, header);
  const type = dv.getUint32(at + VIRTIO_BLK_REQ_TYPE, true);
  const sector = sectorAt(dv, at);
  const dataOut = chain.readableBytes - VIRTIO_BLK_REQ_HDR_SIZE;
  const dataIn = chain.writableBytes - 1;

  switch (type) {
    case VIRTIO_BLK_T_IN: {
      noDataOut(dataOut);
      const offset = sectorRange(sector, dataIn, limits);
      if (reuse !== undefined) return reuse.fill(type, offset, chainSpans(memory, chain, chain.readable, chain.count, 0, dataIn, reuse.io));
      return { type, offset, data: chainSpans(memory, chain, chain.readable, chain.count, 0, dataIn) };
    }
    case VIRTIO_BLK_T_OUT: {
      noDataIn(dataIn);
      const offset = sectorRange(sector, dataOut, limits);
      const data = chainSpans(memory, chain, 0, chain.readable, VIRTIO_BLK_REQ_HDR_SIZE, dataOut, reuse?.io);
      return reuse === undefined ? { type, offset, data } : reuse.fill(type, offset, data);
    }
    case VIRTIO_BLK_T_FLUSH:
      noDataOut(dataOut);
      noDataIn(dataIn);
      return { type };
    case VIRTIO_BLK_T_GET_ID:
      noDataOut(dataOut);
      return { type, data: chainSpans(memory, chain, chain.readable, chain.count, 0, dataIn, reuse?.io) };
    case VIRTIO_BLK_T_DISCARD:
      noDataIn(dataIn);
      return { type, ranges: segments(chain, dataOut, limits.maxDiscardSeg, limits.maxDiscardSectors, 0, limits.capacity) };
    case VIRTIO_BLK_T_WRITE_ZEROES:
      noDataIn(dataIn);
      return {
        type,
        ranges: segments(
          chain,
          dataOut,
          limits.maxWriteZeroesSeg,
          limits.maxWriteZeroesSectors,
          VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP,
          limits.capacity,
        ),
      };
    default:
      return { type: 'unsupported', requestType: type };
  }
}

/**
 * The usual layout of an IN or OUT request (Linux's for one data segment), parsed in one pass:
 * three buffers, the 16-byte header alone in the first, the data in the second, the status byte
 * alone in the third. Returns what {@link parseBlkRequest} returns with `reuse`, or undefined when
 * the chain is laid out otherwise or is not a valid IN or OUT request: parseBlkRequest then takes it,
 * with its faults.
 */
export function usualRequest(
  chain: DescriptorChain,
  limits: BlkLimits,
  memory: GuestMemory,
  reuse: RequestStorage,
): BlkRequest | undefined {
  if (chain.count !== 3 || chain.len(0) !== VIRTIO_BLK_REQ_HDR_SIZE || chain.len(2) !== 1) return undefined;
  // The header's region: one range check for its three words.
  const addr = chain.addr(0);
  const r = memory.region(addr, VIRTIO_BLK_REQ_HDR_SIZE);
  const at = addr - r.base;
  const type = r.dv.getUint32(at + VIRTIO_BLK_REQ_TYPE, true);
  // IN: the data is device-writable (one readable buffer); OUT: device-readable (two).
  let kind: typeof VIRTIO_BLK_T_IN | typeof VIRTIO_BLK_T_OUT;
  if (type === VIRTIO_BLK_T_IN && chain.readable === 1) kind = VIRTIO_BLK_T_IN;
  else if (type === VIRTIO_BLK_T_OUT && chain.readable === 2) kind = VIRTIO_BLK_T_OUT;
  else return undefined;
  const bytes = chain.len(1);
  if (bytes === 0 || bytes % VIRTIO_BLK_SECTOR_SIZE !== 0) return undefined;
  const sector = sectorAt(r.dv, at);
  if (!inCapacity(sector, bytes / VIRTIO_BLK_SECTOR_SIZE, limits)) return undefined;
  return reuse.fill(kind, sector * VIRTIO_BLK_SECTOR_SIZE, reuse.io.refill(memory, chain.addr(1), bytes));
}

function noDataOut(bytes: number): void {
  if (bytes !== 0) throw new BlkRequestError('unexpected-readable', `${bytes} readable bytes after the header`);
}

function noDataIn(bytes: number): void {
  if (bytes !== 0) throw new BlkRequestError('unexpected-writable', `${bytes} writable bytes before the status byte`);
}

/** Byte offset of `bytes` at `sector`, checked: a whole number of sectors, all inside the disk. */
function sectorRange(sector: number, bytes: number, limits: BlkLimits): number {
  if (bytes % VIRTIO_BLK_SECTOR_SIZE !== 0) {
    throw new BlkRequestError('data-not-sector-multiple', `data length ${bytes} is not a multiple of ${VIRTIO_BLK_SECTOR_SIZE}`);
  }
  const count = bytes / VIRTIO_BLK_SECTOR_SIZE;
  if (!inCapacity(sector, count, limits)) {
    throw new BlkRequestError('past-capacity', `sectors [${sector}, +${count}) past capacity ${limits.capacity}`);
  }
  return sector * VIRTIO_BLK_SECTOR_SIZE;
}

/** Whether `count` sectors at `sector` lie inside the disk. */
function inCapacity(sector: number, count: number, limits: BlkLimits): boolean {
  // capacity < 2^53 / 512, so once sector <= capacity every product the callers make is exact.
  return sector <= limits.capacity && count <= limits.capacity - sector;
}

/**
 * The guest buffer of a request whose data lies in one buffer, refilled request after request. A
 * device hands the same one to its backend again only once the backend is done with it (its
 * operation completed synchronously, see backend.ts), so that a synchronous backend costs no
 * allocation per request; one given to an asynchronous operation is that operation's from then on.
 */
export class OneSpanIo implements GuestIo {
  memory: GuestMemory;
  readonly spans: [{ addr: number; len: number }] = [{ addr: 0, len: 0 }];
  length = 0;

  constructor(memory: GuestMemory) {
    this.memory = memory;
  }

  /** This, now describing `len` bytes at `addr` of `memory`. */
  refill(memory: GuestMemory, addr: number, len: number): this {
    const span = this.spans[0];
    this.memory = memory;
    span.addr = addr;
    span.len = len;
    this.length = len;
    return this;
  }
}

/**
 * What {@link parseBlkRequest} refills instead of allocating, request after request: the IN or OUT
 * request it returns (its caller is done with it before it parses the next one) and `io`, the
 * GuestIo of data in one buffer, which a device replaces once it hands it to an asynchronous
 * operation (see {@link OneSpanIo}).
 */
export class RequestStorage {
  io: OneSpanIo;
  private readonly inOut: { type: typeof VIRTIO_BLK_T_IN | typeof VIRTIO_BLK_T_OUT; offset: number; data: GuestIo };

  constructor(memory: GuestMemory) {
    this.io = new OneSpanIo(memory);
    this.inOut = { type: VIRTIO_BLK_T_IN, offset: 0, data: this.io };
  }

  /** The IN or OUT request, refilled. */
  fill(type: typeof VIRTIO_BLK_T_IN | typeof VIRTIO_BLK_T_OUT, offset: number, data: GuestIo): BlkRequest {
    const r = this.inOut;
    r.type = type;
    r.offset = offset;
    r.data = data;
    return r;
  }
}

/**
 * Bytes [skip, skip + length) of buffers first..end-1 taken as one byte string, as guest spans,
 * leaving out empty pieces. The range is inside those buffers (the caller derived it from their sizes).
 * When it lies in one buffer and `reuse` is given, `reuse` is refilled and returned.
 */
export function chainSpans(
  memory: GuestMemory,
  chain: DescriptorChain,
  first: number,
  end: number,
  skip: number,
  length: number,
  reuse?: OneSpanIo,
): GuestIo {
  if (length === 0) return { memory, spans: [], length };
  let i = first;
  let toSkip = skip;
  // The buffers wholly before the range (and empty ones).
  while (i < end && toSkip >= chain.len(i)) toSkip -= chain.len(i++);
  // The usual layout, the data in one buffer of its own: no array to grow.
  if (i < end && chain.len(i) - toSkip >= length) {
    const addr = chain.addr(i) + toSkip;
    return reuse === undefined ? { memory, spans: [{ addr, len: length }], length } : reuse.refill(memory, addr, length);
  }
  const spans: GuestSpan[] = [];
  let left = length;
  for (; i < end && left > 0; i++) {
    const len = chain.len(i);
    if (toSkip >= len) {
      toSkip -= len;
      continue;
    }
    const n = Math.min(len - toSkip, left);
    spans.push({ addr: chain.addr(i) + toSkip, len: n });
    toSkip = 0;
    left -= n;
  }
  return { memory, spans, length };
}

/** The DISCARD / WRITE_ZEROES segments (struct virtio_blk_discard_write_zeroes) after the header. */
function segments(
  chain: DescriptorChain,
  bytes: number,
  maxSeg: number,
  maxSectors: number,
  allowedFlags: number,
  capacity: number,
): BlkRange[] {
  if (bytes === 0 || bytes % VIRTIO_BLK_DWZ_SIZE !== 0) {
    throw new BlkRequestError('segments-malformed', `${bytes} bytes of segments, not a positive multiple of ${VIRTIO_BLK_DWZ_SIZE}`);
  }
  const n = bytes / VIRTIO_BLK_DWZ_SIZE;
  if (n > maxSeg) throw new BlkRequestError('too-many-segments', `${n} segments, at most ${maxSeg}`);
  // Bounded by maxSeg, checked above, before any copy.
  const raw = new Uint8Array(bytes);
  readChain(chain, VIRTIO_BLK_REQ_HDR_SIZE, raw);
  const dv = new DataView(raw.buffer);
  const ranges: BlkRange[] = [];
  for (let s = 0; s < n; s++) {
    const base = s * VIRTIO_BLK_DWZ_SIZE;
    const sector = joinU64(dv.getUint32(base + VIRTIO_BLK_DWZ_SECTOR, true), dv.getUint32(base + VIRTIO_BLK_DWZ_SECTOR + 4, true));
    const count = dv.getUint32(base + VIRTIO_BLK_DWZ_NUM_SECTORS, true);
    const flags = dv.getUint32(base + VIRTIO_BLK_DWZ_FLAGS, true);
    if ((flags & ~allowedFlags) !== 0)
      throw new BlkRequestError('segment-flags', `segment ${s}: flags 0x${flags.toString(16)} not supported`);
    if (count > maxSectors) throw new BlkRequestError('too-many-sectors', `segment ${s}: ${count} sectors, at most ${maxSectors}`);
    if (!(sector <= capacity && count <= capacity - sector)) {
      throw new BlkRequestError('past-capacity', `segment ${s}: sectors [${sector}, +${count}) past capacity ${capacity}`);
    }
    ranges.push({ offset: sector * VIRTIO_BLK_SECTOR_SIZE, length: count * VIRTIO_BLK_SECTOR_SIZE });
  }
  return ranges;
}
