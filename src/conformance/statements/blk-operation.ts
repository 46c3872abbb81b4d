/**
 * The blk statements of spec 5.2.6 (Device Operation, 1.4 numbering): requests built by hand and the
 * status and data the device answers with.
 */

import { hasFeature } from '../../spec/features.js';
import {
  VIRTIO_BLK_F_DISCARD,
  VIRTIO_BLK_F_FLUSH,
  VIRTIO_BLK_F_RO,
  VIRTIO_BLK_F_WRITE_ZEROES,
  VIRTIO_BLK_F_ZONED,
  VIRTIO_BLK_ID_BYTES,
  VIRTIO_BLK_S_IOERR,
  VIRTIO_BLK_S_OK,
  VIRTIO_BLK_S_UNSUPP,
  VIRTIO_BLK_T_DISCARD,
  VIRTIO_BLK_T_FLUSH,
  VIRTIO_BLK_T_GET_ID,
  VIRTIO_BLK_T_WRITE_ZEROES,
  VIRTIO_BLK_T_ZONE_APPEND,
  VIRTIO_BLK_T_ZONE_OPEN,
  VIRTIO_BLK_T_ZONE_REPORT,
  VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP,
} from '../../spec/blk.js';
import type { Check, Statement } from '../statement.js';
import { deviceStatements } from './define.js';
import { hex, need } from '../exchange.js';
import { blkRead, blkRequest, blkSegment, blkWrite, expectStatus, sectorPattern, withDevice } from './blk-requests.js';

const device = deviceStatements('blk');

/** A check that sends one segment of `type` with `flags` and expects UNSUPP. */
function segmentFlagsUnsupp(type: number, flags: number, bit: [number, string]): Check {
  return withDevice(async (ctx, t) => {
    const answer = await blkRequest(t, type, 0, [blkSegment(0, 1, flags)]);
    expectStatus(ctx, `${bit[1]} request with segment flags 0x${flags.toString(16)}`, answer.status, VIRTIO_BLK_S_UNSUPP);
  }, bit);
}

/**
 * A zone request type sent without VIRTIO_BLK_F_ZONED negotiated must be answered UNSUPP. The request
 * is well formed otherwise (a report has room for its header and one zone descriptor, 128 bytes):
 * QEMU 10.0 checks the buffer sizes first and fails the device on a short one.
 */
function zoneUnsupp(type: number, name: string, dataIn: number): Check {
  return withDevice(async (ctx, t) => {
    need(ctx, !hasFeature(t.driver.features, VIRTIO_BLK_F_ZONED), 'ZONED was negotiated');
    const answer = await blkRequest(t, type, 0, [], dataIn);
    expectStatus(ctx, `${name} without ZONED`, answer.status, VIRTIO_BLK_S_UNSUPP);
  });
}

/** Spec 5.2.6 (requests and their answers), 1.4 numbering. */
export const blkOperationStatements: readonly Statement[] = [
  device(
    'status-values',
    '5.2.6',
    'MUST',
    'The device answers every request with status OK, IOERR or UNSUPP (here: a read inside the disk with OK).',
    {
      check: withDevice(async (ctx, t) => {
        const answer = await blkRead(t, 0);
        expectStatus(ctx, 'read of sector 0', answer.status, VIRTIO_BLK_S_OK);
      }),
    },
  ),
  device('unknown-type-unsupp', '5.2.6', 'MUST', 'A request of a type the device does not know is answered VIRTIO_BLK_S_UNSUPP.', {
    check: withDevice(async (ctx, t) => {
      const answer = await blkRequest(t, 0xff, 0);
      expectStatus(ctx, 'request type 0xff', answer.status, VIRTIO_BLK_S_UNSUPP);
    }),
  }),
  device('read-past-capacity-ioerr', '5.2.6', 'MUST', 'A read beyond capacity (a driver error) is answered VIRTIO_BLK_S_IOERR.', {
    check: withDevice(async (ctx, t) => {
      const answer = await blkRead(t, t.capacity);
      expectStatus(ctx, `read of sector ${t.capacity} (capacity ${t.capacity})`, answer.status, VIRTIO_BLK_S_IOERR);
    }),
  }),
  device('write-past-capacity-ioerr', '5.2.6', 'MUST', 'A write beyond capacity (a driver error) is answered VIRTIO_BLK_S_IOERR.', {
    check: withDevice(
      async (ctx, t) => {
        const answer = await blkWrite(t, t.capacity, sectorPattern(1, 3));
        expectStatus(ctx, `write of sector ${t.capacity} (capacity ${t.capacity})`, answer.status, VIRTIO_BLK_S_IOERR);
      },
      undefined,
      true,
    ),
  }),
  device('read-returns-written', '5.2.6', 'MUST', 'A read returns the contents a completed write put in the sectors.', {
    check: withDevice(
      async (ctx, t) => {
        const sector = t.capacity > 1 ? 1 : 0;
        const data = sectorPattern(1, 7);
        expectStatus(ctx, `write of sector ${sector}`, (await blkWrite(t, sector, data)).status, VIRTIO_BLK_S_OK);
        const back = await blkRead(t, sector);
        expectStatus(ctx, `read of sector ${sector}`, back.status, VIRTIO_BLK_S_OK);
        const at = back.data.findIndex((b, i) => b !== data[i]);
        need(ctx, at < 0, `sector ${sector} reads back ${hex(back.data.subarray(at))} at byte ${at}, wrote ${hex(data.subarray(at))}`);
      },
      undefined,
      true,
    ),
  }),
  device(
    'get-id-nul-padded',
    '5.2.6',
    'MUST',
    'GET_ID returns the device ID as up to 20 bytes, NUL-padded: nothing but NULs after the first NUL.',
    {
      check: withDevice(async (ctx, t) => {
        const answer = await blkRequest(t, VIRTIO_BLK_T_GET_ID, 0, [], VIRTIO_BLK_ID_BYTES);
        if (answer.status === VIRTIO_BLK_S_UNSUPP) return ctx.note('GET_ID is not supported (UNSUPP)');
        expectStatus(ctx, 'GET_ID', answer.status, VIRTIO_BLK_S_OK);
        const nul = answer.data.indexOf(0);
        need(ctx, nul < 0 || answer.data.subarray(nul).every((b) => b === 0), `GET_ID data ${hex(answer.data)}`);
      }),
    },
  ),
  device('get-id-ascii', '5.2.6', 'MUST', 'The GET_ID string (up to its first NUL) is printable ASCII.', {
    check: withDevice(async (ctx, t) => {
      const answer = await blkRequest(t, VIRTIO_BLK_T_GET_ID, 0, [], VIRTIO_BLK_ID_BYTES);
      if (answer.status === VIRTIO_BLK_S_UNSUPP) return ctx.note('GET_ID is not supported (UNSUPP)');
      expectStatus(ctx, 'GET_ID', answer.status, VIRTIO_BLK_S_OK);
      const nul = answer.data.indexOf(0);
      need(
        ctx,
        answer.data.subarray(0, nul < 0 ? answer.data.length : nul).every((b) => b >= 0x20 && b < 0x7f),
        `GET_ID data ${hex(answer.data)}`,
      );
    }),
  }),
  device(
    'flush-completes-ok',
    '5.2.6.2',
    'MUST',
    'With VIRTIO_BLK_F_FLUSH negotiated, a FLUSH after a completed write completes with OK (the write is then stable).',
    {
      check: withDevice(
        async (ctx, t) => {
          const answer = await blkRequest(t, VIRTIO_BLK_T_FLUSH, 0);
          expectStatus(ctx, 'FLUSH', answer.status, VIRTIO_BLK_S_OK);
        },
        [VIRTIO_BLK_F_FLUSH, 'FLUSH'],
      ),
    },
  ),
  device(
    'stable-writes-committed',
    '5.2.6.2',
    'MUST',
    "A device backed by persistent storage commits stable writes before it reports their (or the flush's) completion.",
    {
      uncheckable: "persistence is behind the device: the driver side cannot see whether completed writes reached the backend's storage",
    },
  ),
  device('capacity-change-notifies', '5.2.6.2', 'SHOULD', 'When capacity changes the device sends a configuration change notification.', {
    uncheckable: 'the driver side cannot make the disk change size',
  }),
  device('ro-write-ioerr', '5.2.6.2', 'MUST', 'When VIRTIO_BLK_F_RO is offered a write is answered VIRTIO_BLK_S_IOERR.', {
    check: withDevice(
      async (ctx, t) => {
        const answer = await blkWrite(t, 0, sectorPattern(1, 11));
        expectStatus(ctx, 'write to a read-only device', answer.status, VIRTIO_BLK_S_IOERR);
      },
      [VIRTIO_BLK_F_RO, 'RO'],
    ),
  }),
  device('ro-write-no-data', '5.2.6.2', 'MUST NOT', 'When VIRTIO_BLK_F_RO is offered a write changes no data.', {
    check: withDevice(
      async (ctx, t) => {
        const before = await blkRead(t, 0);
        const data = before.data.map((b) => b ^ 0xff);
        await blkWrite(t, 0, data);
        const after = await blkRead(t, 0);
        const at = after.data.findIndex((b, i) => b !== before.data[i]);
        need(ctx, at < 0, `sector 0 changed at byte ${at}: ${hex(after.data.subarray(at))} (was ${hex(before.data.subarray(at))})`);
      },
      [VIRTIO_BLK_F_RO, 'RO'],
    ),
  }),
  device('discard-unmap-unsupp', '5.2.6.2', 'MUST', 'A DISCARD with the unmap flag set is answered VIRTIO_BLK_S_UNSUPP.', {
    check: segmentFlagsUnsupp(VIRTIO_BLK_T_DISCARD, VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP, [VIRTIO_BLK_F_DISCARD, 'DISCARD']),
  }),
  device('discard-unknown-flag-unsupp', '5.2.6.2', 'MUST', 'A DISCARD segment with an unknown flag set is answered VIRTIO_BLK_S_UNSUPP.', {
    check: segmentFlagsUnsupp(VIRTIO_BLK_T_DISCARD, 0x8000_0000, [VIRTIO_BLK_F_DISCARD, 'DISCARD']),
  }),
  device(
    'write-zeroes-unknown-flag-unsupp',
    '5.2.6.2',
    'MUST',
    'A WRITE_ZEROES segment with an unknown flag set is answered VIRTIO_BLK_S_UNSUPP.',
    {
      check: segmentFlagsUnsupp(VIRTIO_BLK_T_WRITE_ZEROES, 0x8000_0000, [VIRTIO_BLK_F_WRITE_ZEROES, 'WRITE_ZEROES']),
    },
  ),
  device('write-zeroes-reads-zero', '5.2.6.2', 'MUST', 'After a WRITE_ZEROES completes, its sectors read as zeroes.', {
    check: writeZeroesCheck(0),
  }),
  device(
    'write-zeroes-unmap-reads-zero',
    '5.2.6.2',
    'MUST',
    'After a WRITE_ZEROES with unmap set completes, its sectors read as zeroes too.',
    {
      check: writeZeroesCheck(VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP),
    },
  ),
  device(
    'write-zeroes-may-unmap-accurate',
    '5.2.6.2',
    'SHOULD',
    'write_zeroes_may_unmap is clear exactly when a write zeroes request cannot deallocate sectors.',
    {
      uncheckable: 'deallocation in the backend storage is not visible from the driver side',
    },
  ),
  device(
    'lifetime-offered-when-meaningful',
    '5.2.6.2',
    'SHOULD',
    'A device on storage with lifetime metrics offers VIRTIO_BLK_F_LIFETIME, and only then.',
    {
      uncheckable: 'the kind of storage behind the device is not visible from the driver side',
    },
  ),
  device('lifetime-no-reserved-values', '5.2.6.2', 'MUST NOT', 'GET_LIFETIME answers contain no reserved values.', {
    uncheckable: 'no target offers VIRTIO_BLK_F_LIFETIME (none has eMMC/UFS storage behind it); left for a target that does',
  }),
  device(
    'zone-report-unsupp-without-zoned',
    '5.2.6.2',
    'MUST',
    'Without VIRTIO_BLK_F_ZONED negotiated, ZONE_REPORT is answered VIRTIO_BLK_S_UNSUPP.',
    {
      check: zoneUnsupp(VIRTIO_BLK_T_ZONE_REPORT, 'ZONE_REPORT', 128),
    },
  ),
  device(
    'zone-open-unsupp-without-zoned',
    '5.2.6.2',
    'MUST',
    'Without VIRTIO_BLK_F_ZONED negotiated, ZONE_OPEN (and the other zone management requests) is answered VIRTIO_BLK_S_UNSUPP.',
    {
      check: zoneUnsupp(VIRTIO_BLK_T_ZONE_OPEN, 'ZONE_OPEN', 0),
    },
  ),
  device(
    'zone-append-unsupp-without-zoned',
    '5.2.6.2',
    'MUST',
    'Without VIRTIO_BLK_F_ZONED negotiated, ZONE_APPEND is answered VIRTIO_BLK_S_UNSUPP.',
    {
      check: zoneUnsupp(VIRTIO_BLK_T_ZONE_APPEND, 'ZONE_APPEND', 8),
    },
  ),
  device(
    'zoned-operation',
    '5.2.6.2',
    'MUST',
    'With VIRTIO_BLK_F_ZONED negotiated the device follows the zone state machine and answers zone requests as the spec defines.',
    {
      uncheckable: 'needs a zoned device; none of the targets offers VIRTIO_BLK_F_ZONED',
    },
  ),
  device(
    'legacy-barrier-ordering',
    '5.2.6.3',
    'SHOULD',
    'With VIRTIO_BLK_F_BARRIER, a barrier request completes after every earlier request and before any later one starts.',
    {
      uncheckable: 'the order in which a device starts requests is not visible from the driver side',
    },
  ),
];

function writeZeroesCheck(flags: number): Check {
  return withDevice(
    async (ctx, t) => {
      const sector = t.capacity > 2 ? 2 : 0;
      expectStatus(ctx, `write of sector ${sector}`, (await blkWrite(t, sector, sectorPattern(1, 5))).status, VIRTIO_BLK_S_OK);
      const answer = await blkRequest(t, VIRTIO_BLK_T_WRITE_ZEROES, 0, [blkSegment(sector, 1, flags)]);
      expectStatus(ctx, `WRITE_ZEROES (flags ${flags}) of sector ${sector}`, answer.status, VIRTIO_BLK_S_OK);
      const back = await blkRead(t, sector);
      const at = back.data.findIndex((b) => b !== 0);
      need(ctx, at < 0, `sector ${sector} reads ${hex(back.data.subarray(at))} at byte ${at} after WRITE_ZEROES`);
    },
    [VIRTIO_BLK_F_WRITE_ZEROES, 'WRITE_ZEROES'],
    true,
  );
}
