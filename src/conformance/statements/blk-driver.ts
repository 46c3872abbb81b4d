/**
 * The driver-side statements of spec 5.2 (1.4 numbering): the ones the driver audit records come
 * from DRIVER_REQUIREMENTS (auditedStatement); the others say why the audit cannot see them.
 */

import type { Statement } from '../statement.js';
import { driverStatements } from './define.js';
import {
  auditedStatement,
  DRIVER_OWN_STATE,
  LITTLE_ENDIAN_GUESTS,
  NO_DEADLINE,
  NOT_AUDITED_YET,
  notOffered,
} from '../audited-statement.js';
import { DRIVER_REQUIREMENTS as R } from '../../spec/driver-requirements.js';

const driver = driverStatements('blk');

export const blkDriverStatements: readonly Statement[] = [
  driver(
    'flush-only-if-capable',
    '5.2.5.1',
    'SHOULD NOT',
    'A driver that cannot send FLUSH does not negotiate VIRTIO_BLK_F_FLUSH.',
    DRIVER_OWN_STATE,
  ),
  driver(
    'writeback-after-features-ok',
    '5.2.5.1',
    'MUST NOT',
    'The driver does not read writeback before setting FEATURES_OK.',
    NOT_AUDITED_YET,
  ),
  driver(
    'zoned-only-if-capable',
    '5.2.5.1',
    'MUST NOT',
    'A driver that cannot handle the HM, HA and NONE zone models does not negotiate VIRTIO_BLK_F_ZONED.',
    notOffered('VIRTIO_BLK_F_ZONED'),
  ),
  driver(
    'no-discard-on-host-managed',
    '5.2.5.1',
    'MUST NOT',
    'With ZONED offered in the host-managed model, the driver does not accept VIRTIO_BLK_F_DISCARD.',
    notOffered('VIRTIO_BLK_F_ZONED'),
  ),
  driver(
    'host-managed-unsupported-fails',
    '5.2.5.1',
    'MUST NOT',
    'A driver that cannot drive a host-managed device that reads model HM sets FAILED instead of FEATURES_OK.',
    notOffered('VIRTIO_BLK_F_ZONED'),
  ),
  driver(
    'recheck-capacity-on-config-change',
    '5.2.6.1',
    'SHOULD',
    'On a configuration change notification the driver re-reads capacity.',
    NO_DEADLINE,
  ),
  auditedStatement('blk', R.blkWithinCapacity),
  driver('accept-ro', '5.2.6.1', 'SHOULD', 'The driver accepts VIRTIO_BLK_F_RO when it is offered.', NOT_AUDITED_YET),
  driver('flush-sector-zero', '5.2.6.1', 'MUST', 'A FLUSH request has sector 0.', NOT_AUDITED_YET),
  driver('flush-no-data', '5.2.6.1', 'SHOULD NOT', 'A FLUSH request carries no data.', NOT_AUDITED_YET),
  auditedStatement('blk', R.blkSectorMultiple),
  driver(
    'segments-whole',
    '5.2.6.1',
    'MUST',
    'DISCARD, SECURE_ERASE and WRITE_ZEROES data is a whole number of 16-byte segments.',
    NOT_AUDITED_YET,
  ),
  driver('get-id-20-bytes', '5.2.6.1', 'MUST', 'GET_ID data is exactly 20 bytes.', NOT_AUDITED_YET),
  driver('discard-max-seg', '5.2.6.1', 'MUST NOT', 'A DISCARD carries at most max_discard_seg segments.', NOT_AUDITED_YET),
  driver(
    'secure-erase-max-seg',
    '5.2.6.1',
    'MUST NOT',
    'A SECURE_ERASE carries at most max_secure_erase_seg segments.',
    notOffered('VIRTIO_BLK_F_SECURE_ERASE'),
  ),
  driver('write-zeroes-max-seg', '5.2.6.1', 'MUST NOT', 'A WRITE_ZEROES carries at most max_write_zeroes_seg segments.', NOT_AUDITED_YET),
  driver(
    'no-stability-after-writethrough-switch',
    '5.2.6.1',
    'MUST NOT',
    'After writing 0 to writeback the driver does not assume earlier volatile writes were committed.',
    DRIVER_OWN_STATE,
  ),
  driver('discard-unmap-zero', '5.2.6.1', 'MUST', 'The unmap bit of DISCARD segments is zero.', NOT_AUDITED_YET),
  driver(
    'no-assumption-after-discard',
    '5.2.6.1',
    'MUST NOT',
    'The driver assumes nothing about reads of discarded sectors.',
    DRIVER_OWN_STATE,
  ),
  driver(
    'no-assumption-on-segment-ioerr',
    '5.2.6.1',
    'MUST NOT',
    'After IOERR on a multi-segment DISCARD or WRITE_ZEROES the driver assumes nothing about each segment.',
    DRIVER_OWN_STATE,
  ),
  driver(
    'zone-sector-aligned',
    '5.2.6.1',
    'MUST',
    'With ZONED negotiated, zone sector addresses are multiples of 512 bytes.',
    notOffered('VIRTIO_BLK_F_ZONED'),
  ),
  driver(
    'zone-report-sector',
    '5.2.6.1',
    'MUST',
    'A ZONE_REPORT sector lies in the first zone to report.',
    notOffered('VIRTIO_BLK_F_ZONED'),
  ),
  driver(
    'zone-management-sector',
    '5.2.6.1',
    'MUST',
    'ZONE_OPEN, CLOSE, FINISH and RESET name the first sector of their zone.',
    notOffered('VIRTIO_BLK_F_ZONED'),
  ),
  driver('zone-reset-all-sector-zero', '5.2.6.1', 'MUST', 'ZONE_RESET_ALL has sector 0.', notOffered('VIRTIO_BLK_F_ZONED')),
  driver(
    'zone-append-limits',
    '5.2.6.1',
    'MUST',
    'ZONE_APPEND names the zone start, and its size is a multiple of write_granularity within max_append_sectors.',
    notOffered('VIRTIO_BLK_F_ZONED'),
  ),
  driver(
    'sequential-write-rules',
    '5.2.6.1',
    'MUST',
    'Writes and appends to sequential zones respect write_granularity and the zone capacity.',
    notOffered('VIRTIO_BLK_F_ZONED'),
  ),
  driver(
    'legacy-native-endian',
    '5.2.6.3',
    'MUST',
    'Through the legacy interface, request fields are in the guest native byte order.',
    LITTLE_ENDIAN_GUESTS,
  ),
  driver('legacy-ignore-used-len', '5.2.6.3', 'SHOULD', 'Through the legacy interface the driver ignores used lengths.', DRIVER_OWN_STATE),
  driver(
    'legacy-flush-out-is-flush',
    '5.2.6.3',
    'MUST',
    'A legacy driver treats VIRTIO_BLK_T_FLUSH_OUT as VIRTIO_BLK_T_FLUSH.',
    DRIVER_OWN_STATE,
  ),
  driver(
    'legacy-framing',
    '5.2.6.4',
    'MUST',
    'Without VIRTIO_F_ANY_LAYOUT through the legacy interface, the header is one descriptor, then the data, then a separate 1-byte status descriptor.',
    NOT_AUDITED_YET,
  ),
];
