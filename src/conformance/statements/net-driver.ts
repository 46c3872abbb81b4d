/**
 * The driver-side statements of spec 5.1 (1.4 numbering): the ones the driver audit records come
 * from DRIVER_REQUIREMENTS (auditedStatement); the others say why the audit cannot see them.
 */

import type { Statement } from '../statement.js';
import { driverStatements } from './define.js';
import { auditedStatement, DRIVER_OWN_STATE, NO_DEADLINE, NOT_AUDITED_YET, notOffered } from '../audited-statement.js';
import { DRIVER_REQUIREMENTS as R } from '../../spec/driver-requirements.js';

const driver = driverStatements('net');

export const netDriverStatements: readonly Statement[] = [
  driver(
    'feature-dependencies',
    '5.1.3.1',
    'MUST NOT',
    'The driver accepts no feature without the features 5.1.3.1 says it requires (e.g. CTRL_RX, CTRL_RX_EXTRA, GUEST_ANNOUNCE, CTRL_MAC_ADDR, MQ without CTRL_VQ).',
    'the audit records it as features/dependencies (2.2.1), whose table holds the net dependencies of 5.1.3.1 (src/spec/net.ts)',
  ),
  auditedStatement('net', R.netNoConfigWrite),
  driver('negotiate-mac', '5.1.4.2', 'SHOULD', 'The driver negotiates VIRTIO_NET_F_MAC when offered.', NOT_AUDITED_YET),
  driver('negotiate-mtu', '5.1.4.2', 'SHOULD', 'The driver negotiates VIRTIO_NET_F_MTU when offered.', notOffered('VIRTIO_NET_F_MTU')),
  driver(
    'mtu-rx-buffers',
    '5.1.4.2',
    'MUST',
    'With VIRTIO_NET_F_MTU negotiated, the driver supplies receive buffers for one packet of mtu plus the Ethernet header.',
    notOffered('VIRTIO_NET_F_MTU'),
  ),
  driver(
    'mtu-tx-limit',
    '5.1.4.2',
    'MUST NOT',
    'With VIRTIO_NET_F_MTU negotiated, the driver transmits no packet without GSO larger than mtu plus the Ethernet header.',
    notOffered('VIRTIO_NET_F_MTU'),
  ),
  driver(
    'negotiate-standby',
    '5.1.4.2',
    'SHOULD',
    'The driver negotiates VIRTIO_NET_F_STANDBY when offered.',
    notOffered('VIRTIO_NET_F_STANDBY'),
  ),
  driver(
    'hash-report-needs-ctrl-vq',
    '5.1.4.2',
    'SHOULD NOT',
    'The driver does not negotiate VIRTIO_NET_F_HASH_REPORT without VIRTIO_NET_F_CTRL_VQ.',
    notOffered('VIRTIO_NET_F_HASH_REPORT'),
  ),
  driver(
    'ctrl-rx-extra-needs-ctrl-vq',
    '5.1.4.2',
    'SHOULD NOT',
    'The driver does not negotiate VIRTIO_NET_F_CTRL_RX_EXTRA without VIRTIO_NET_F_CTRL_VQ.',
    'the audit records it as features/dependencies (2.2.1), whose table holds the net dependencies of 5.1.3.1 (src/spec/net.ts)',
  ),
  driver(
    'tx-header-zeroed-fields',
    '5.1.9.2.1',
    'MUST',
    'Transmitted headers have the fields the negotiated features do not define set to 0 (flags, gso_type NONE without offloads).',
    NOT_AUDITED_YET,
  ),
  driver(
    'tx-gso-needs-feature',
    '5.1.9.2.1',
    'MUST NOT',
    'The driver sets a gso_type only for a negotiated HOST_* offload, and NEEDS_CSUM only with CSUM.',
    NOT_AUDITED_YET,
  ),
  driver('tx-num-buffers-zero', '5.1.9.2.1', 'MUST', 'num_buffers of transmitted headers is 0.', NOT_AUDITED_YET),
  driver(
    'rx-buffers-size',
    '5.1.9.3.1',
    'MUST',
    'Without MRG_RXBUF and without GUEST_* offloads, each receive buffer holds at least 1526 bytes (the header plus a full frame).',
    NOT_AUDITED_YET,
  ),
  driver(
    'rx-buffers-mrg-size',
    '5.1.9.3.1',
    'SHOULD',
    'With MRG_RXBUF, each receive buffer is at least the size of the header.',
    NOT_AUDITED_YET,
  ),
  driver(
    'rx-ignore-unknown-flags',
    '5.1.9.4.2',
    'MUST',
    'The driver ignores flag bits of received headers it does not know.',
    DRIVER_OWN_STATE,
  ),
  auditedStatement('net', R.netCtrlRx),
  auditedStatement('net', R.netCtrlRxExtra),
  auditedStatement('net', R.netCtrlMac),
  driver(
    'mac-addr-set-when-different',
    '5.1.9.5.2.2',
    'SHOULD',
    'With CTRL_RX, the driver sets its default MAC with MAC_ADDR_SET when it differs from mac.',
    "the driver's default MAC address is its own: the device cannot know that it differs from mac",
  ),
  driver(
    'mac-table-format',
    '5.1.9.5.2.2',
    'MUST',
    'MAC_TABLE_SET data is a le32 count and unicast addresses, then a le32 count and multicast addresses.',
    NOT_AUDITED_YET,
  ),
  driver(
    'announce-ack',
    '5.1.9.5.4.1',
    'MUST',
    'With GUEST_ANNOUNCE, after seeing VIRTIO_NET_S_ANNOUNCE the driver sends ANNOUNCE_ACK.',
    NO_DEADLINE,
  ),
  driver(
    'mq-configure-before-pairs-set',
    '5.1.9.5.6.1',
    'MUST',
    'The driver sets the virtqueues up before enabling them with VQ_PAIRS_SET.',
    NOT_AUDITED_YET,
  ),
  driver('mq-pairs-range', '5.1.9.5.6.1', 'MUST NOT', 'VQ_PAIRS_SET asks for between 1 and max_virtqueue_pairs pairs.', NOT_AUDITED_YET),
  driver(
    'mq-transmitq1-before-pairs-set',
    '5.1.9.5.6.1',
    'MUST',
    'Before VQ_PAIRS_SET the driver transmits only on transmitq1.',
    NOT_AUDITED_YET,
  ),
  driver(
    'mq-transmit-within-pairs',
    '5.1.9.5.6.1',
    'MUST NOT',
    'After VQ_PAIRS_SET the driver transmits on no queue beyond virtqueue_pairs.',
    NOT_AUDITED_YET,
  ),
  driver(
    'legacy-framing',
    '5.1.9.8',
    'MUST',
    'Without VIRTIO_F_ANY_LAYOUT through the legacy interface, the header is a descriptor of its own on both queues, and control commands split class/command, data and ack into separate descriptors.',
    NOT_AUDITED_YET,
  ),
];
