/**
 * Family 'pci-notify' (spec 4.1.4.4, 4.1.5.2): the notification capability (offset alignment,
 * notify_off_multiplier, length against every queue's queue_notify_off), in its two variants: without
 * and with VIRTIO_F_NOTIFICATION_DATA offered; and the driver's notifications.
 */

import { openDevice } from '../bring-up.js';
import { VIRTIO_F_NOTIFICATION_DATA } from '../../spec/features.js';
import {
  VIRTIO_PCI_CAP_NOTIFY_CFG,
  VIRTIO_PCI_COMMON_NUMQ,
  VIRTIO_PCI_COMMON_Q_NOFF,
  VIRTIO_PCI_COMMON_Q_SELECT,
  VIRTIO_PCI_NOTIFY_CAP_SIZE,
} from '../../spec/virtio-pci.js';
import type { VirtioCap } from '../../transport/pci/probe.js';
import { capsOfType, commonCfg, configSnapshot, hex, modernOnly, offersFeature, virtioCaps } from '../pci-support.js';
import type { CheckContext, Statement } from '../statement.js';
import { auditedStatement } from '../audited-statement.js';
import { DRIVER_REQUIREMENTS as R } from '../../spec/driver-requirements.js';

/** Queues whose queue_notify_off a check reads at most. */
const QUEUE_WALK_LIMIT = 256;

const base = { family: 'pci-notify', side: 'device' } as const;

/** The two variants of 4.1.4.4.1: notification width (2 or 4 bytes), and whether the variant applies. */
interface Variant {
  readonly nd: boolean;
  readonly width: number;
  readonly suffix: string;
  readonly when: string;
}
const PLAIN: Variant = { nd: false, width: 2, suffix: '', when: 'Without VIRTIO_F_NOTIFICATION_DATA offered' };
const WITH_DATA: Variant = { nd: true, width: 4, suffix: '-notification-data', when: 'With VIRTIO_F_NOTIFICATION_DATA offered' };

function applies(v: Variant) {
  return async (ctx: CheckContext): Promise<string | undefined> => {
    const reason = await modernOnly(ctx);
    if (reason !== undefined) return reason;
    return (await offersFeature(ctx, VIRTIO_F_NOTIFICATION_DATA)) === v.nd
      ? undefined
      : `the device ${v.nd ? 'does not offer' : 'offers'} VIRTIO_F_NOTIFICATION_DATA`;
  };
}

/** The notify capabilities with their multiplier (undefined when cap_len leaves no room for it). */
async function notifyCaps(ctx: CheckContext): Promise<VirtioCap[]> {
  return capsOfType(ctx, VIRTIO_PCI_CAP_NOTIFY_CFG);
}

function multiplierOk(v: Variant, m: number): boolean {
  if (m === 0) return true;
  const power = (m & (m - 1)) === 0;
  return v.nd ? power && m % 4 === 0 : power && m >= 2;
}

function variantStatements(v: Variant): Statement[] {
  return [
    {
      ...base,
      id: `pci-notify/offset-aligned${v.suffix}`,
      section: '4.1.4.4.1',
      level: 'MUST',
      text: `${v.when}, the notification structure's cap.offset is ${v.width}-byte aligned.`,
      check: {
        applies: applies(v),
        async run(ctx: CheckContext) {
          const bad = (await notifyCaps(ctx)).filter((c) => c.offset % v.width !== 0);
          ctx.require(bad.length === 0, bad.map((c) => `notify cap at ${hex(c.capOffset)}: offset ${hex(c.offset)}`).join('; '));
        },
      },
    },
    {
      ...base,
      id: `pci-notify/multiplier${v.suffix}`,
      section: '4.1.4.4.1',
      level: 'MUST',
      text: `${v.when}, notify_off_multiplier is 0 or ${v.nd ? 'a power of 2 that is a multiple of 4' : 'an even power of 2'}.`,
      check: {
        applies: applies(v),
        async run(ctx: CheckContext) {
          for (const c of await notifyCaps(ctx)) {
            ctx.require(c.notifyOffMultiplier !== undefined, `notify cap at ${hex(c.capOffset)}: cap_len ${c.capLen} holds no multiplier`);
            ctx.require(
              multiplierOk(v, c.notifyOffMultiplier),
              `notify cap at ${hex(c.capOffset)}: notify_off_multiplier ${c.notifyOffMultiplier}`,
            );
          }
        },
      },
    },
    {
      ...base,
      id: `pci-notify/length-minimum${v.suffix}`,
      section: '4.1.4.4.1',
      level: 'MUST',
      text: `${v.when}, the notification structure's cap.length is at least ${v.width}.`,
      check: {
        applies: applies(v),
        async run(ctx: CheckContext) {
          const bad = (await notifyCaps(ctx)).filter((c) => c.length < v.width);
          ctx.require(bad.length === 0, bad.map((c) => `notify cap at ${hex(c.capOffset)}: length ${c.length}`).join('; '));
        },
      },
    },
    {
      ...base,
      id: `pci-notify/length-covers-queues${v.suffix}`,
      section: '4.1.4.4.1',
      level: 'MUST',
      text: `${v.when}, cap.length >= queue_notify_off * notify_off_multiplier + ${v.width} for every queue.`,
      check: {
        applies: applies(v),
        async run(ctx: CheckContext) {
          await openDevice(ctx);
          const common = await commonCfg(ctx);
          const n = Math.min(await common.read(VIRTIO_PCI_COMMON_NUMQ, 2), QUEUE_WALK_LIMIT);
          const caps = await notifyCaps(ctx);
          for (let q = 0; q < n; q++) {
            await common.write(VIRTIO_PCI_COMMON_Q_SELECT, 2, q);
            const off = await common.read(VIRTIO_PCI_COMMON_Q_NOFF, 2);
            for (const c of caps) {
              const need = off * (c.notifyOffMultiplier ?? 0) + v.width;
              ctx.require(
                c.length >= need,
                `queue ${q}: queue_notify_off ${off} x multiplier ${c.notifyOffMultiplier} + ${v.width} = ${need} > length ${c.length} (notify cap at ${hex(c.capOffset)})`,
              );
            }
          }
        },
      },
    },
  ];
}

export const pciNotifyStatements: readonly Statement[] = [
  {
    ...base,
    id: 'pci-notify/notify-cfg-present',
    section: '4.1.4.4.1',
    level: 'MUST',
    text: 'The device has at least one VIRTIO_PCI_CAP_NOTIFY_CFG capability (with room for notify_off_multiplier).',
    check: {
      applies: modernOnly,
      async run(ctx: CheckContext) {
        const caps = virtioCaps(await configSnapshot(ctx)).filter((c) => c.cfgType === VIRTIO_PCI_CAP_NOTIFY_CFG);
        ctx.require(caps.length > 0, 'no notify-cfg capability');
        ctx.require(
          caps.some((c) => c.capLen >= VIRTIO_PCI_NOTIFY_CAP_SIZE),
          `notify caps with cap_len ${caps.map((c) => c.capLen).join(', ')}`,
        );
      },
    },
  },
  ...variantStatements(PLAIN),
  ...variantStatements(WITH_DATA),
  // Driver side (4.1.5.2.1): the audit sees the width and the value of every notification, with and
  // without NOTIFICATION_DATA and NOTIF_CONFIG_DATA (our devices offer both).
  auditedStatement('pci-notify', R.notifyWidth),
  auditedStatement('pci-notify', R.notifyValue),
];
