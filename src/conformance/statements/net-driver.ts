/**
 * The driver-side statements of spec 5.1 (1.4 numbering), for the driver audit to cite by ID: no
 * check here (our devices record them when a driver breaks them).
 */

import type { Statement } from '../statement.js';
import { driverStatements } from './define.js';

const driver = driverStatements('net');

export const netDriverStatements: readonly Statement[] = [
  driver(
    'feature-dependencies',
    '5.1.3.1',
    'MUST NOT',
    'The driver accepts no feature without the features 5.1.3.1 says it requires (e.g. CTRL_RX, CTRL_RX_EXTRA, GUEST_ANNOUNCE, CTRL_MAC_ADDR, MQ without CTRL_VQ).',
  ),
  driver('no-config-writes', '5.1.4.2', 'MUST NOT', 'The driver writes no device configuration field.'),
  driver('negotiate-mac', '5.1.4.2', 'SHOULD', 'The driver negotiates VIRTIO_NET_F_MAC when offered.'),
  driver('negotiate-mtu', '5.1.4.2', 'SHOULD', 'The driver negotiates VIRTIO_NET_F_MTU when offered.'),
  driver(
    'mtu-rx-buffers',
    '5.1.4.2',
    'MUST',
    'With VIRTIO_NET_F_MTU negotiated, the driver supplies receive buffers for one packet of mtu plus the Ethernet header.',
  ),
  driver(
    'mtu-tx-limit',
    '5.1.4.2',
    'MUST NOT',
    'With VIRTIO_NET_F_MTU negotiated, the driver transmits no packet without GSO larger than mtu plus the Ethernet header.',
  ),
  driver('negotiate-standby', '5.1.4.2', 'SHOULD', 'The driver negotiates VIRTIO_NET_F_STANDBY when offered.'),
  driver(
    'hash-report-needs-ctrl-vq',
    '5.1.4.2',
    'SHOULD NOT',
    'The driver does not negotiate VIRTIO_NET_F_HASH_REPORT without VIRTIO_NET_F_CTRL_VQ.',
  ),
  driver(
    'ctrl-rx-extra-needs-ctrl-vq',
    '5.1.4.2',
    'SHOULD NOT',
    'The driver does not negotiate VIRTIO_NET_F_CTRL_RX_EXTRA without VIRTIO_NET_F_CTRL_VQ.',
  ),
  driver(
    'tx-header-zeroed-fields',
    '5.1.9.2.1',
    'MUST',
    'Transmitted headers have the fields the negotiated features do not define set to 0 (flags, gso_type NONE without offloads).',
  ),
  driver(
    'tx-gso-needs-feature',
    '5.1.9.2.1',
    'MUST NOT',
    'The driver sets a gso_type only for a negotiated HOST_* offload, and NEEDS_CSUM only with CSUM.',
  ),
  driver('tx-num-buffers-zero', '5.1.9.2.1', 'MUST', 'num_buffers of transmitted headers is 0.'),
  driver(
    'rx-buffers-size',
    '5.1.9.3.1',
    'MUST',
    'Without MRG_RXBUF and without GUEST_* offloads, each receive buffer holds at least 1526 bytes (the header plus a full frame).',
  ),
  driver('rx-buffers-mrg-size', '5.1.9.3.1', 'SHOULD', 'With MRG_RXBUF, each receive buffer is at least the size of the header.'),
  driver('rx-ignore-unknown-flags', '5.1.9.4.2', 'MUST', 'The driver ignores flag bits of received headers it does not know.'),
  driver(
    'ctrl-rx-needs-feature',
    '5.1.9.5.1.2',
    'MUST NOT',
    'Without VIRTIO_NET_F_CTRL_RX the driver sends no PROMISC or ALLMULTI command.',
  ),
  driver(
    'ctrl-rx-extra-needs-feature',
    '5.1.9.5.1.2',
    'MUST NOT',
    'Without VIRTIO_NET_F_CTRL_RX_EXTRA the driver sends no ALLUNI, NOMULTI, NOUNI or NOBCAST command.',
  ),
  driver(
    'mac-class-needs-ctrl-rx',
    '5.1.9.5.2.2',
    'MUST NOT',
    'Without VIRTIO_NET_F_CTRL_RX the driver sends no VIRTIO_NET_CTRL_MAC command.',
  ),
  driver(
    'mac-addr-set-when-different',
    '5.1.9.5.2.2',
    'SHOULD',
    'With CTRL_RX, the driver sets its default MAC with MAC_ADDR_SET when it differs from mac.',
  ),
  driver(
    'mac-table-format',
    '5.1.9.5.2.2',
    'MUST',
    'MAC_TABLE_SET data is a le32 count and unicast addresses, then a le32 count and multicast addresses.',
  ),
  driver('announce-ack', '5.1.9.5.4.1', 'MUST', 'With GUEST_ANNOUNCE, after seeing VIRTIO_NET_S_ANNOUNCE the driver sends ANNOUNCE_ACK.'),
  driver(
    'mq-configure-before-pairs-set',
    '5.1.9.5.6.1',
    'MUST',
    'The driver sets the virtqueues up before enabling them with VQ_PAIRS_SET.',
  ),
  driver('mq-pairs-range', '5.1.9.5.6.1', 'MUST NOT', 'VQ_PAIRS_SET asks for between 1 and max_virtqueue_pairs pairs.'),
  driver('mq-transmitq1-before-pairs-set', '5.1.9.5.6.1', 'MUST', 'Before VQ_PAIRS_SET the driver transmits only on transmitq1.'),
  driver(
    'mq-transmit-within-pairs',
    '5.1.9.5.6.1',
    'MUST NOT',
    'After VQ_PAIRS_SET the driver transmits on no queue beyond virtqueue_pairs.',
  ),
  driver(
    'legacy-framing',
    '5.1.9.8',
    'MUST',
    'Without VIRTIO_F_ANY_LAYOUT through the legacy interface, the header is a descriptor of its own on both queues, and control commands split class/command, data and ack into separate descriptors.',
  ),
];
