/**
 * virtio-blk requests built by hand for the blk checks (5.2.6): a live device with the features a
 * check wants, and one request at a time through request queue 0, with its status byte and the data
 * the device wrote.
 */

import { featureSet } from '../../spec/features.js';
import {
  VIRTIO_BLK_CONFIG_CAPACITY,
  VIRTIO_BLK_DWZ_FLAGS,
  VIRTIO_BLK_DWZ_NUM_SECTORS,
  VIRTIO_BLK_DWZ_SECTOR,
  VIRTIO_BLK_DWZ_SIZE,
  VIRTIO_BLK_F_BLK_SIZE,
  VIRTIO_BLK_F_CONFIG_WCE,
  VIRTIO_BLK_F_DISCARD,
  VIRTIO_BLK_F_FLUSH,
  VIRTIO_BLK_F_RO,
  VIRTIO_BLK_F_SEG_MAX,
  VIRTIO_BLK_F_SIZE_MAX,
  VIRTIO_BLK_F_WRITE_ZEROES,
  VIRTIO_BLK_REQ_HDR_SIZE,
  VIRTIO_BLK_REQ_SECTOR,
  VIRTIO_BLK_REQ_TYPE,
  VIRTIO_BLK_S_IOERR,
  VIRTIO_BLK_S_OK,
  VIRTIO_BLK_S_UNSUPP,
  VIRTIO_BLK_SECTOR_SIZE,
  VIRTIO_BLK_T_IN,
  VIRTIO_BLK_T_OUT,
} from '../../spec/blk.js';
import type { Check, CheckContext } from '../statement.js';
import { exchange, liveDevice, need, needsOffered, type LiveDevice } from '../exchange.js';

/** Every blk feature a check may negotiate (not MQ, ZONED, LIFETIME or SECURE_ERASE: no check needs their extra rules). */
export const BLK_CHECK_FEATURES = featureSet(
  VIRTIO_BLK_F_SIZE_MAX,
  VIRTIO_BLK_F_SEG_MAX,
  VIRTIO_BLK_F_RO,
  VIRTIO_BLK_F_BLK_SIZE,
  VIRTIO_BLK_F_FLUSH,
  VIRTIO_BLK_F_CONFIG_WCE,
  VIRTIO_BLK_F_DISCARD,
  VIRTIO_BLK_F_WRITE_ZEROES,
);

/** The status byte before the device writes it: none of OK, IOERR, UNSUPP. */
const UNWRITTEN = 0xa5;

const STATUS_NAMES: Readonly<Record<number, string>> = {
  [VIRTIO_BLK_S_OK]: 'OK',
  [VIRTIO_BLK_S_IOERR]: 'IOERR',
  [VIRTIO_BLK_S_UNSUPP]: 'UNSUPP',
  [UNWRITTEN]: 'not written',
};

/** A status byte in words, for evidence. */
export function statusName(status: number): string {
  return `${status} (${STATUS_NAMES[status] ?? 'not a status value'})`;
}

/** What the device answered to one request. */
export interface BlkAnswer {
  readonly status: number;
  /** The device-writable data bytes (before the status byte). */
  readonly data: Uint8Array;
  readonly usedLen: number;
}

/** A live blk device: request queue 0, and its capacity in sectors. */
export interface BlkTarget extends LiveDevice {
  readonly capacity: number;
}

/** Bring the blk device at `ctx` to DRIVER_OK with the offered features among `wanted`, queue 0 set up. */
export async function blkTarget(ctx: CheckContext, wanted = BLK_CHECK_FEATURES): Promise<BlkTarget> {
  const live = await liveDevice(ctx, wanted, [0]);
  const capacity = Number(await live.driver.readConfig64(VIRTIO_BLK_CONFIG_CAPACITY));
  return { ...live, capacity };
}

/** The request header: type, reserved 0, sector. */
export function blkHeader(type: number, sector: number): Uint8Array {
  const header = new Uint8Array(VIRTIO_BLK_REQ_HDR_SIZE);
  const view = new DataView(header.buffer);
  view.setUint32(VIRTIO_BLK_REQ_TYPE, type, true);
  view.setBigUint64(VIRTIO_BLK_REQ_SECTOR, BigInt(sector), true);
  return header;
}

/** One discard / write-zeroes segment. */
export function blkSegment(sector: number, count: number, flags: number): Uint8Array {
  const segment = new Uint8Array(VIRTIO_BLK_DWZ_SIZE);
  const view = new DataView(segment.buffer);
  view.setBigUint64(VIRTIO_BLK_DWZ_SECTOR, BigInt(sector), true);
  view.setUint32(VIRTIO_BLK_DWZ_NUM_SECTORS, count, true);
  view.setUint32(VIRTIO_BLK_DWZ_FLAGS, flags, true);
  return segment;
}

/**
 * Send request `type` at `sector` with `out` after the header (device-readable) and `dataIn`
 * device-writable data bytes before the status byte, in separate buffers.
 */
export async function blkRequest(
  target: BlkTarget,
  type: number,
  sector: number,
  out: readonly Uint8Array[] = [],
  dataIn = 0,
): Promise<BlkAnswer> {
  const inLens = dataIn > 0 ? [dataIn, 1] : [1];
  const done = await exchange(target.driver, target.queues.get(0)!, [blkHeader(type, sector), ...out], inLens, { fill: UNWRITTEN });
  const status = done.written[done.written.length - 1]![0]!;
  return { status, data: dataIn > 0 ? done.written[0]! : new Uint8Array(0), usedLen: done.usedLen };
}

/** Read `count` sectors at `sector`. */
export function blkRead(target: BlkTarget, sector: number, count = 1): Promise<BlkAnswer> {
  return blkRequest(target, VIRTIO_BLK_T_IN, sector, [], count * VIRTIO_BLK_SECTOR_SIZE);
}

/** Write `data` (whole sectors) at `sector`. */
export function blkWrite(target: BlkTarget, sector: number, data: Uint8Array): Promise<BlkAnswer> {
  return blkRequest(target, VIRTIO_BLK_T_OUT, sector, [data]);
}

/** `count` sectors of a pattern no disk starts with: (i * 13 + seed) mod 251, never all zero. */
export function sectorPattern(count: number, seed: number): Uint8Array {
  return Uint8Array.from({ length: count * VIRTIO_BLK_SECTOR_SIZE }, (_, i) => ((i * 13 + seed) % 251) + 1);
}
/** A check on a live device (every offered blk feature negotiated) that applies when `bit` is offered (and, with `writable`, RO is not). */
export function withDevice(run: (ctx: CheckContext, t: BlkTarget) => Promise<void>, bit?: [number, string], writable = false): Check {
  return {
    async applies(ctx) {
      if (writable && (await needsOffered(ctx, VIRTIO_BLK_F_RO, 'RO')) === undefined) return 'the device is read-only (VIRTIO_BLK_F_RO)';
      return bit === undefined ? undefined : needsOffered(ctx, bit[0], bit[1]);
    },
    run: async (ctx) => run(ctx, await blkTarget(ctx)),
  };
}

/** Request `type` must be answered with `want`. */
export function expectStatus(ctx: CheckContext, what: string, got: number, want: number): void {
  need(ctx, got === want, `${what}: status ${statusName(got)}, expected ${statusName(want)}`);
}
