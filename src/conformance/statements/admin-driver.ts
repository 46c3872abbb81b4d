/** Family 'admin', the driver's side (spec 2.12.1.6, 2.13.2, 2.12.1.1.7): audited where our devices see it. */

import { DRIVER_REQUIREMENTS as R } from '../../spec/driver-requirements.js';
import { auditedStatement, DRIVER_OWN_STATE, NO_DEADLINE, NOT_AUDITED_YET } from '../audited-statement.js';
import type { Statement } from '../statement.js';
import { driverStatements } from './define.js';

const driver = driverStatements('admin');

export const adminDriverStatements: readonly Statement[] = [
  // 2.12.1.6 and 2.13.2, 2.12.1.1.7: the driver's side.
  auditedStatement('admin', R.adminListUseFirst),
  auditedStatement('admin', R.adminListUseAlone),
  auditedStatement('admin', R.adminListUseQueried),
  auditedStatement('admin', R.adminSriovMember),
  driver(
    'no-unfamiliar-opcodes',
    '2.12.1.6',
    'SHOULD NOT',
    'The driver names in LIST_USE only commands it knows how to use.',
    DRIVER_OWN_STATE,
  ),
  driver('reserved-status', '2.12.1.6', 'MUST', 'The driver treats a reserved status as EINVAL.', DRIVER_OWN_STATE),
  driver('reserved-qualifier', '2.12.1.6', 'MUST', 'The driver treats a reserved status_qualifier as Q_INVALID_COMMAND.', DRIVER_OWN_STATE),
  driver(
    'sriov-vf-enable',
    '2.12.1.6',
    'MUST',
    'While an SR-IOV command is outstanding, VF Enable is set and VF Migration Capable clear.',
    'the SR-IOV Extended Capability is in PCI Express extended configuration space, which our devices do not model',
  ),
  driver(
    'parts-multiple-of-8',
    '2.13.2',
    'MUST',
    'The driver supplies readable and writable parts that are multiples of 64 bits.',
    'not audited on purpose: the legacy interface commands take the data length from the part length (2.12.1.1), which this rule would break; Linux sends them unpadded too',
  ),
  driver(
    'readable-whole-structure',
    '2.13.2',
    'SHOULD',
    'The driver supplies a readable part at least as long as the structure.',
    NOT_AUDITED_YET,
  ),
  driver('missing-fields-zero', '2.13.2', 'MUST', 'The driver takes what lies past the used length as zero.', DRIVER_OWN_STATE),
  driver(
    'order-across-queues',
    '2.13.2',
    'MUST',
    'With several administration queues, the driver orders commands across them itself.',
    'our devices have one administration queue: ordering across several never arises',
  ),
  driver('retry-eagain', '2.13.2', 'SHOULD', 'The driver retries a command answered EAGAIN.', NO_DEADLINE),
  driver(
    'legacy-little-endian',
    '2.12.1.1.7',
    'MUST',
    'The driver encodes and decodes legacy access data little-endian.',
    "a device sees only bytes: another byte order shows as wrong values, which it cannot tell from the driver's intent",
  ),
  driver('legacy-single-field', '2.12.1.1.7', 'SHOULD', 'A legacy access names one field inside its structure.', NOT_AUDITED_YET),
  driver(
    'legacy-notify-info-entries',
    '2.12.1.1.7',
    'MUST',
    'The driver ignores LEGACY_NOTIFY_INFO entries after an end entry, and invalid ones.',
    DRIVER_OWN_STATE,
  ),
  driver(
    'legacy-notify-info-use-address',
    '2.12.1.1.7',
    'SHOULD',
    'With LEGACY_NOTIFY_INFO supported, the driver sends driver notifications through the address it returned.',
    NOT_AUDITED_YET,
  ),
];
