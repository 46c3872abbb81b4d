/**
 * Family 'net' (spec 5.1, 1.4 numbering): the offer, the configuration and the control queue here,
 * received packets in net-receive.ts, the driver-side statements in net-driver.ts.
 */

import { featureSet, hasFeature } from '../../spec/features.js';
import {
  ETH_ALEN,
  VIRTIO_NET_CONFIG_DUPLEX,
  VIRTIO_NET_CONFIG_MAC,
  VIRTIO_NET_CONFIG_MAX_VIRTQUEUE_PAIRS,
  VIRTIO_NET_CONFIG_MTU,
  VIRTIO_NET_CONFIG_SPEED,
  VIRTIO_NET_CONFIG_STATUS,
  VIRTIO_NET_CTRL_ANNOUNCE,
  VIRTIO_NET_CTRL_ANNOUNCE_ACK,
  VIRTIO_NET_CTRL_MAC,
  VIRTIO_NET_CTRL_MAC_ADDR_SET,
  VIRTIO_NET_CTRL_RX,
  VIRTIO_NET_CTRL_RX_ALLMULTI,
  VIRTIO_NET_CTRL_RX_ALLUNI,
  VIRTIO_NET_CTRL_RX_NOBCAST,
  VIRTIO_NET_CTRL_RX_NOMULTI,
  VIRTIO_NET_CTRL_RX_NOUNI,
  VIRTIO_NET_CTRL_RX_PROMISC,
  VIRTIO_NET_ERR,
  VIRTIO_NET_F_CTRL_MAC_ADDR,
  VIRTIO_NET_F_CTRL_RX,
  VIRTIO_NET_F_CTRL_RX_EXTRA,
  VIRTIO_NET_F_CTRL_VQ,
  VIRTIO_NET_F_GUEST_ANNOUNCE,
  VIRTIO_NET_F_HASH_REPORT,
  VIRTIO_NET_F_MAC,
  VIRTIO_NET_F_MQ,
  VIRTIO_NET_F_MTU,
  VIRTIO_NET_F_SPEED_DUPLEX,
  VIRTIO_NET_OK,
  VIRTIO_NET_S_ANNOUNCE,
} from '../../spec/net.js';
import type { Check, CheckContext, Statement } from '../statement.js';
import { hexValue, need, needsOffered, offeredFeatures } from '../exchange.js';
import { ackName, netCommand, netControlTarget } from './net-control.js';
import { netReceiveStatements } from './net-receive.js';
import { deviceStatements } from './define.js';
import { netDriverStatements } from './net-driver.js';

const device = deviceStatements('net');

/** A configuration field check, when `bit` is offered (negotiated first when `negotiate`: the field is defined once it is). */
function configCheck(bit: number, name: string, offset: number, size: 1 | 2 | 4, ok: (value: number) => boolean, negotiate = false): Check {
  return {
    applies: (ctx) => needsOffered(ctx, bit, name),
    async run(ctx) {
      let value: number;
      if (negotiate) {
        const driver = await ctx.openDriver({ ring: 'split' });
        await driver.negotiate(featureSet(bit));
        value = await driver.readConfig(offset, size);
      } else value = await (await ctx.transport()).readConfig(offset, size);
      need(ctx, ok(value), `config offset ${offset} (${size} bytes) reads ${hexValue(value)}`);
    },
  };
}

/**
 * Features offered without one they should come with: [feature, any-of required] pairs (5.1.4.1; the
 * 5.1.3.1 requirements are the features family's no-offer-without-requirement check).
 */
function dependencyCheck(table: readonly (readonly [number, readonly number[]])[]): Check {
  return {
    async run(ctx) {
      const offered = await offeredFeatures(ctx);
      const broken = table.filter(([f, req]) => hasFeature(offered, f) && !req.some((r) => hasFeature(offered, r)));
      need(
        ctx,
        broken.length === 0,
        `offered ${hexValue(offered)}: ${broken.map(([f, req]) => `bit ${f} without any of ${req.join('/')}`).join(', ')}`,
      );
    },
  };
}

const CTRL_VQ = VIRTIO_NET_F_CTRL_VQ;
/** An RX-class command that must be supported (acked OK) once `bit` is negotiated. */
function rxCommand(cmd: number, bit: number, name: string): Check {
  return {
    applies: (ctx) => needsOffered(ctx, bit, name),
    async run(ctx) {
      const target = await netControlTarget(ctx);
      need(ctx, hasFeature(target.driver.features, bit), `${name} offered but not negotiated`);
      for (const on of [1, 0]) {
        const ack = await netCommand(target, VIRTIO_NET_CTRL_RX, cmd, Uint8Array.of(on));
        need(ctx, ack === VIRTIO_NET_OK, `VIRTIO_NET_CTRL_RX command ${cmd} (${on ? 'on' : 'off'}): ack ${ackName(ack)}`);
      }
    },
  };
}

/** A locally administered unicast address unlike `mac`. */
function otherMac(mac: Uint8Array): Uint8Array {
  const next = Uint8Array.from(mac);
  next[0] = 0x02;
  next[5] = (mac[5]! + 1) & 0xff;
  return next;
}

async function readMac(ctx: CheckContext, read: (offset: number) => Promise<number>): Promise<Uint8Array> {
  const mac = new Uint8Array(ETH_ALEN);
  for (let i = 0; i < ETH_ALEN; i++) mac[i] = await read(VIRTIO_NET_CONFIG_MAC + i);
  ctx.note(`mac ${[...mac].map((b) => b.toString(16).padStart(2, '0')).join(':')}`);
  return mac;
}

const macAddrSet: Check['applies'] = async (ctx) =>
  (await needsOffered(ctx, VIRTIO_NET_F_CTRL_MAC_ADDR, 'CTRL_MAC_ADDR')) ?? (await needsOffered(ctx, VIRTIO_NET_F_MAC, 'MAC'));

/** Family 'net' (see Family in ../statement.ts): spec 5.1, 1.4 numbering. */
export const netStatements: readonly Statement[] = [
  device('max-virtqueue-pairs-range', '5.1.4.1', 'MUST', 'With VIRTIO_NET_F_MQ offered, max_virtqueue_pairs is between 1 and 0x8000.', {
    check: configCheck(VIRTIO_NET_F_MQ, 'MQ', VIRTIO_NET_CONFIG_MAX_VIRTQUEUE_PAIRS, 2, (v) => v >= 1 && v <= 0x8000),
  }),
  device('mtu-range', '5.1.4.1', 'MUST', 'With VIRTIO_NET_F_MTU offered, mtu is between 68 and 65535.', {
    check: configCheck(VIRTIO_NET_F_MTU, 'MTU', VIRTIO_NET_CONFIG_MTU, 2, (v) => v >= 68 && v <= 65535),
  }),
  device('mtu-at-least-1280', '5.1.4.1', 'SHOULD', 'With VIRTIO_NET_F_MTU offered, mtu is at least 1280.', {
    check: configCheck(VIRTIO_NET_F_MTU, 'MTU', VIRTIO_NET_CONFIG_MTU, 2, (v) => v >= 1280),
  }),
  device('mtu-unchanged', '5.1.4.1', 'MUST NOT', 'The device does not change mtu once set.', {
    uncheckable: 'a change could come at any time; a bounded check cannot tell "never" from "not yet"',
  }),
  device(
    'mtu-rx-limit',
    '5.1.4.1',
    'MUST NOT',
    'With VIRTIO_NET_F_MTU negotiated, received packets without GSO are at most mtu plus the Ethernet header.',
    {
      uncheckable: 'needs frames of chosen sizes arriving from the network side, which a check cannot send',
    },
  ),
  device(
    'mtu-tx-forwarded',
    '5.1.4.1',
    'MUST',
    'With VIRTIO_NET_F_MTU negotiated, transmitted packets up to mtu are forwarded unfragmented.',
    {
      uncheckable: 'what leaves the device is visible only on the network side',
    },
  ),
  device('rss-key-size', '5.1.4.1', 'MUST', 'With VIRTIO_NET_F_RSS or HASH_REPORT offered, rss_max_key_size is at least 40.', {
    uncheckable: 'left for a later pass: no target offers RSS or HASH_REPORT (QEMU only with eBPF RSS)',
  }),
  device('speed-range', '5.1.4.1', 'MUST', 'With VIRTIO_NET_F_SPEED_DUPLEX negotiated, speed is 0..0x7fffffff or 0xffffffff (unknown).', {
    check: configCheck(
      VIRTIO_NET_F_SPEED_DUPLEX,
      'SPEED_DUPLEX',
      VIRTIO_NET_CONFIG_SPEED,
      4,
      (v) => v <= 0x7fff_ffff || v === 0xffff_ffff,
      true,
    ),
  }),
  device('duplex-values', '5.1.4.1', 'MUST', 'With VIRTIO_NET_F_SPEED_DUPLEX negotiated, duplex is 0 (full), 1 (half) or 0xff (unknown).', {
    check: configCheck(
      VIRTIO_NET_F_SPEED_DUPLEX,
      'SPEED_DUPLEX',
      VIRTIO_NET_CONFIG_DUPLEX,
      1,
      (v) => v === 0 || v === 1 || v === 0xff,
      true,
    ),
  }),
  device('speed-duplex-stable-while-up', '5.1.4.1', 'SHOULD NOT', 'While the link is up, speed and duplex do not change.', {
    uncheckable: 'a change could come at any time; a bounded check cannot tell "never" from "not yet"',
  }),
  device('hash-report-needs-ctrl-vq', '5.1.4.1', 'SHOULD NOT', 'VIRTIO_NET_F_HASH_REPORT is not offered without VIRTIO_NET_F_CTRL_VQ.', {
    check: dependencyCheck([[VIRTIO_NET_F_HASH_REPORT, [CTRL_VQ]]]),
  }),
  device(
    'ctrl-rx-extra-needs-ctrl-vq',
    '5.1.4.1',
    'SHOULD NOT',
    'VIRTIO_NET_F_CTRL_RX_EXTRA is not offered without VIRTIO_NET_F_CTRL_VQ.',
    {
      check: dependencyCheck([[VIRTIO_NET_F_CTRL_RX_EXTRA, [CTRL_VQ]]]),
    },
  ),
  device('ctrl-unknown-class-err', '5.1.9.5', 'MUST', 'A control command of a class the device does not know is answered VIRTIO_NET_ERR.', {
    check: {
      applies: (ctx) => needsOffered(ctx, CTRL_VQ, 'CTRL_VQ'),
      async run(ctx) {
        const ack = await netCommand(await netControlTarget(ctx), 0xee, 0, Uint8Array.of(0));
        need(ctx, ack === VIRTIO_NET_ERR, `class 0xee: ack ${ackName(ack)}`);
      },
    },
  }),
  device('ctrl-rx-promisc', '5.1.9.5.1.1', 'MUST', 'With VIRTIO_NET_F_CTRL_RX negotiated the device supports VIRTIO_NET_CTRL_RX_PROMISC.', {
    check: rxCommand(VIRTIO_NET_CTRL_RX_PROMISC, VIRTIO_NET_F_CTRL_RX, 'CTRL_RX'),
  }),
  device(
    'ctrl-rx-allmulti',
    '5.1.9.5.1.1',
    'MUST',
    'With VIRTIO_NET_F_CTRL_RX negotiated the device supports VIRTIO_NET_CTRL_RX_ALLMULTI.',
    {
      check: rxCommand(VIRTIO_NET_CTRL_RX_ALLMULTI, VIRTIO_NET_F_CTRL_RX, 'CTRL_RX'),
    },
  ),
  device(
    'ctrl-rx-alluni',
    '5.1.9.5.1.1',
    'MUST',
    'With VIRTIO_NET_F_CTRL_RX_EXTRA negotiated the device supports VIRTIO_NET_CTRL_RX_ALLUNI.',
    {
      check: rxCommand(VIRTIO_NET_CTRL_RX_ALLUNI, VIRTIO_NET_F_CTRL_RX_EXTRA, 'CTRL_RX_EXTRA'),
    },
  ),
  device(
    'ctrl-rx-nomulti',
    '5.1.9.5.1.1',
    'MUST',
    'With VIRTIO_NET_F_CTRL_RX_EXTRA negotiated the device supports VIRTIO_NET_CTRL_RX_NOMULTI.',
    {
      check: rxCommand(VIRTIO_NET_CTRL_RX_NOMULTI, VIRTIO_NET_F_CTRL_RX_EXTRA, 'CTRL_RX_EXTRA'),
    },
  ),
  device(
    'ctrl-rx-nouni',
    '5.1.9.5.1.1',
    'MUST',
    'With VIRTIO_NET_F_CTRL_RX_EXTRA negotiated the device supports VIRTIO_NET_CTRL_RX_NOUNI.',
    {
      check: rxCommand(VIRTIO_NET_CTRL_RX_NOUNI, VIRTIO_NET_F_CTRL_RX_EXTRA, 'CTRL_RX_EXTRA'),
    },
  ),
  device(
    'ctrl-rx-nobcast',
    '5.1.9.5.1.1',
    'MUST',
    'With VIRTIO_NET_F_CTRL_RX_EXTRA negotiated the device supports VIRTIO_NET_CTRL_RX_NOBCAST.',
    {
      check: rxCommand(VIRTIO_NET_CTRL_RX_NOBCAST, VIRTIO_NET_F_CTRL_RX_EXTRA, 'CTRL_RX_EXTRA'),
    },
  ),
  device(
    'rx-modes-take-effect',
    '5.1.9.5.1.1',
    'SHOULD',
    'The receive modes (promiscuous, all-multicast, no-broadcast, ...) filter incoming packets as described.',
    {
      uncheckable: 'needs packets of chosen destinations arriving from the network side, which a check cannot send',
    },
  ),
  device('mac-table-empty-on-reset', '5.1.9.5.2.1', 'MUST', 'The MAC filtering table is empty after reset.', {
    uncheckable: 'the table is visible only through which incoming packets pass, and a check cannot send packets from the network side',
  }),
  device(
    'mac-table-updated-before-use',
    '5.1.9.5.2.1',
    'MUST',
    'The MAC table is updated before the VIRTIO_NET_CTRL_MAC_TABLE_SET buffer is used.',
    {
      uncheckable: 'the table is visible only through which incoming packets pass',
    },
  ),
  device(
    'mac-addr-set-updates-mac',
    '5.1.9.5.2.1',
    'MUST',
    'With VIRTIO_NET_F_MAC negotiated, mac in the configuration holds the address of VIRTIO_NET_CTRL_MAC_ADDR_SET once the command is used.',
    {
      check: {
        applies: macAddrSet,
        async run(ctx) {
          const target = await netControlTarget(ctx);
          const read = (offset: number): Promise<number> => target.driver.readConfig(offset, 1);
          const want = otherMac(await readMac(ctx, read));
          const ack = await netCommand(target, VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_ADDR_SET, want);
          need(ctx, ack === VIRTIO_NET_OK, `MAC_ADDR_SET: ack ${ackName(ack)}`);
          const got = await readMac(ctx, read);
          need(
            ctx,
            got.every((b, i) => b === want[i]),
            `mac reads ${[...got].join(',')} after MAC_ADDR_SET ${[...want].join(',')}`,
          );
        },
      },
    },
  ),
  device(
    'mac-addr-set-bumps-generation',
    '4.1.4.3.1',
    'MUST',
    'After VIRTIO_NET_CTRL_MAC_ADDR_SET changed mac, config_generation differs from its value before mac was last read.',
    {
      check: {
        via: ['modern'],
        applies: macAddrSet,
        async run(ctx) {
          const target = await netControlTarget(ctx);
          const transport = target.driver.transport;
          const read = (offset: number): Promise<number> => target.driver.readConfig(offset, 1);
          const before = await transport.configGeneration();
          const want = otherMac(await readMac(ctx, read));
          await netCommand(target, VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_ADDR_SET, want);
          await readMac(ctx, read);
          const after = await transport.configGeneration();
          need(ctx, after !== before, `config_generation ${before} before and after mac changed by MAC_ADDR_SET`);
        },
      },
    },
  ),
  device('mac-filter-drops', '5.1.9.5.2.1', 'SHOULD', 'Incoming packets to neither mac nor the MAC table are dropped.', {
    uncheckable: 'needs packets of chosen destinations arriving from the network side',
  }),
  device(
    'vlan-filtering',
    '5.1.9.5.3.1',
    'MUST',
    'Without VIRTIO_NET_F_CTRL_VLAN all VLAN-tagged packets pass; with it, those whose VLAN is in the table.',
    {
      uncheckable: 'needs VLAN-tagged packets arriving from the network side',
    },
  ),
  device(
    'announce-ack-clears',
    '5.1.9.5.4.2',
    'MUST',
    'With VIRTIO_NET_F_GUEST_ANNOUNCE negotiated, VIRTIO_NET_S_ANNOUNCE is clear once an ANNOUNCE_ACK command is used.',
    {
      check: {
        applies: (ctx) => needsOffered(ctx, VIRTIO_NET_F_GUEST_ANNOUNCE, 'GUEST_ANNOUNCE'),
        async run(ctx) {
          const target = await netControlTarget(ctx);
          const ack = await netCommand(target, VIRTIO_NET_CTRL_ANNOUNCE, VIRTIO_NET_CTRL_ANNOUNCE_ACK, new Uint8Array(0));
          const status = await target.driver.readConfig(VIRTIO_NET_CONFIG_STATUS, 2);
          need(ctx, (status & VIRTIO_NET_S_ANNOUNCE) === 0, `status ${hexValue(status)} after ANNOUNCE_ACK (ack ${ackName(ack)})`);
        },
      },
    },
  ),
  device('tx-ignores-unknown-flags', '5.1.9.2.2', 'MUST', 'The device ignores header flag bits it does not know.', {
    uncheckable: 'left for a later pass: ignoring means the frame goes out unchanged, visible only on the network side',
  }),
  device(
    'tx-no-csum-fields-without-needs-csum',
    '5.1.9.2.2',
    'MUST NOT',
    'Without VIRTIO_NET_HDR_F_NEEDS_CSUM the device does not use csum_start and csum_offset.',
    {
      uncheckable: 'what the device did with the frame is visible only on the network side',
    },
  ),
  ...netReceiveStatements,
  device('mq-receiveq1-after-reset', '5.1.9.5.6.2', 'MUST', 'After reset, and until VQ_PAIRS_SET, packets arrive only on receiveq1.', {
    uncheckable: 'needs packets arriving from the network side',
  }),
  ...netDriverStatements,
];
