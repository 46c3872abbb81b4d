import { settle } from '../pci-support.js';
import type { Statement } from '../statement.js';
import { driverStatements } from './define.js';
import { ALL_OK, goLive, negotiateMinimal, openDevice, pollFor, promptOnRing, serveOne, settleMs, writeFeatures } from '../bring-up.js';
import { promptRequestUnsupported } from '../prompt-request.js';
import { VIRTIO_CONFIG_S_FEATURES_OK, decodeStatus } from '../../spec/status.js';
import { VIRTIO_PCI_ISR_QUEUE } from '../../spec/virtio-pci.js';
import { VIRTIO_ID_BLOCK } from '../../spec/ids.js';
import { VIRTIO_BLK_CONFIG_WRITEBACK, VIRTIO_BLK_F_CONFIG_WCE } from '../../spec/blk.js';
import { hasFeature } from '../../spec/features.js';
import type { CheckContext } from '../statement.js';
import { auditedStatement, NOT_AUDITED_YET, notOffered } from '../audited-statement.js';
import { DRIVER_REQUIREMENTS as R } from '../../spec/driver-requirements.js';

const family = 'initialization';
const driver = driverStatements(family);

/** Why the audit cannot see a driver's verdict on its own initialisation. */
const DRIVER_JUDGES =
  "whether initialisation went wrong is the driver's judgement: the audit sees FAILED or the next access, not the error behind them";
const NO_SUSPEND = notOffered('VIRTIO_F_SUSPEND');

async function promptApplies(ctx: CheckContext): Promise<string | undefined> {
  return promptRequestUnsupported(ctx.deviceType);
}

/**
 * A request made available and notified after FEATURES_OK, before DRIVER_OK; resolves once the
 * device had the time to act, with the used idx and ISR read then.
 */
async function notifyBeforeDriverOk(ctx: CheckContext): Promise<{ readonly usedIdx: number; readonly isr: number }> {
  const opened = await negotiateMinimal(ctx);
  const { ring, head } = await promptOnRing(ctx, opened.features);
  await opened.transport.readIsr();
  await ring.makeAvailable(head);
  await ring.notify(opened.transport);
  await settle(settleMs(ctx));
  return { usedIdx: await ring.usedIdx(), isr: await opened.transport.readIsr() };
}

/** Family 'initialization' (see Family in ../statement.ts): 3.1-3.5, and 2.1.2's rule on DRIVER_OK. */
export const initializationStatements: readonly Statement[] = [
  {
    id: 'initialization/no-consume-before-driver-ok',
    section: '2.1.2',
    level: 'MUST NOT',
    side: 'device',
    family,
    text: 'A device does not take buffers from a queue before the driver sets DRIVER_OK.',
    check: {
      // Through the legacy interface a device must serve a driver before DRIVER_OK (3.1.2).
      via: ['modern'],
      applies: promptApplies,
      async run(ctx: CheckContext) {
        const { usedIdx } = await notifyBeforeDriverOk(ctx);
        ctx.require(usedIdx === 0, `used idx ${usedIdx} after a request was made available and notified before DRIVER_OK`);
      },
    },
  },
  {
    id: 'initialization/no-used-notification-before-driver-ok',
    section: '2.1.2',
    level: 'MUST NOT',
    side: 'device',
    family,
    text: 'A device sends no used buffer notification before the driver sets DRIVER_OK.',
    check: {
      via: ['modern'],
      applies: promptApplies,
      async run(ctx: CheckContext) {
        const { isr } = await notifyBeforeDriverOk(ctx);
        ctx.require((isr & VIRTIO_PCI_ISR_QUEUE) === 0, `ISR 0x${isr.toString(16)} (queue bit set) before DRIVER_OK`);
      },
    },
  },
  {
    id: 'initialization/live-after-driver-ok',
    section: '3.1.1',
    level: 'MUST',
    side: 'device',
    family,
    text: 'Once DRIVER_OK is set the device is live: it serves a request made available on a configured queue.',
    check: {
      via: ['modern', 'legacy'],
      applies: promptApplies,
      async run(ctx: CheckContext) {
        const live = await goLive(ctx);
        const { head, usedIdx } = await serveOne(ctx, live);
        ctx.require(usedIdx === 1, `used idx ${usedIdx} within ${ctx.timeoutMs} ms of a request on queue ${live.ring.index}`);
        const element = await live.ring.usedElement(0);
        ctx.require(element.id === head, `used element id ${element.id}, the request's head is ${head}`);
      },
    },
  },
  {
    id: 'initialization/features-ok-stays-set',
    section: '3.1.1',
    level: 'MUST',
    side: 'device',
    family,
    text: 'A device that kept FEATURES_OK when the driver set it still shows it on later reads and after DRIVER_OK.',
    check: {
      via: ['modern'],
      async run(ctx: CheckContext) {
        const opened = await negotiateMinimal(ctx);
        const again = await opened.transport.getStatus();
        ctx.require((again & VIRTIO_CONFIG_S_FEATURES_OK) !== 0, `status ${decodeStatus(again)} on the second read`);
        await opened.transport.setStatus(ALL_OK);
        const live = await opened.transport.getStatus();
        ctx.require((live & VIRTIO_CONFIG_S_FEATURES_OK) !== 0, `status ${decodeStatus(live)} after DRIVER_OK`);
      },
    },
  },
  {
    id: 'initialization/legacy-config-write-before-features',
    section: '3.1.2',
    level: 'MUST',
    side: 'device',
    family,
    text: 'Through the legacy interface a device takes writes of its configuration before the driver writes features (blk writeback).',
    check: {
      via: ['legacy'],
      async applies(ctx: CheckContext) {
        if (ctx.deviceType !== VIRTIO_ID_BLOCK) return 'the writable field checked is blk writeback';
        const opened = await openDevice(ctx);
        return hasFeature(opened.offered, VIRTIO_BLK_F_CONFIG_WCE) ? undefined : 'the device does not offer VIRTIO_BLK_F_CONFIG_WCE';
      },
      async run(ctx: CheckContext) {
        const { transport } = await openDevice(ctx);
        const before = await transport.readConfig(VIRTIO_BLK_CONFIG_WRITEBACK, 1);
        const wanted = before === 0 ? 1 : 0;
        await transport.writeConfig(VIRTIO_BLK_CONFIG_WRITEBACK, 1, wanted);
        const after = await transport.readConfig(VIRTIO_BLK_CONFIG_WRITEBACK, 1);
        ctx.require(after === wanted, `writeback reads ${after} after ${wanted} was written before the features (it read ${before})`);
      },
    },
  },
  {
    id: 'initialization/legacy-use-before-driver-ok',
    section: '3.1.2',
    level: 'MUST',
    side: 'device',
    family,
    text: 'Through the legacy interface a device serves a queue the driver set up before it set DRIVER_OK.',
    check: {
      via: ['legacy'],
      applies: promptApplies,
      async run(ctx: CheckContext) {
        const opened = await openDevice(ctx);
        await writeFeatures(opened, 0n);
        const { ring, head } = await promptOnRing(ctx, 0n);
        await ring.makeAvailable(head);
        await ring.notify(opened.transport);
        const usedIdx = await pollFor(
          ctx,
          () => ring.usedIdx(),
          (idx) => idx !== 0,
        );
        const status = await opened.transport.getStatus();
        ctx.require(
          usedIdx === 1,
          `used idx ${usedIdx} within ${ctx.timeoutMs} ms of a request notified at status ${decodeStatus(status)}`,
        );
      },
    },
  },
  // Driver side. The audit splits the 3.1.1 sequence into its reset, the order of the status bits and
  // the queue set-up; the re-read of FEATURES_OK is the one step it does not record.
  auditedStatement(family, R.initResetFirst),
  auditedStatement(family, R.initStatusOrder),
  auditedStatement(family, R.initNoConfigWrite),
  auditedStatement(family, R.initNoNewFeatures),
  auditedStatement(family, R.initQueueSetupState),
  auditedStatement(family, R.initNoNotifyBeforeDriverOk),
  auditedStatement(family, R.cleanupExposedBuffers),
  ...(
    [
      [
        'rereads-features-ok',
        '3.1.1',
        'MUST',
        'After setting FEATURES_OK the driver reads device status back to see that FEATURES_OK stayed set.',
        NOT_AUDITED_YET,
      ],
      ['sets-failed-on-error', '3.1.1', 'SHOULD', 'A driver that gives up on initialisation sets FAILED.', DRIVER_JUDGES],
      [
        'stops-after-failure',
        '3.1.1',
        'MUST NOT',
        'A driver whose initialisation went irrecoverably wrong does not go on with it.',
        DRIVER_JUDGES,
      ],
      [
        'legacy-sequence',
        '3.1.2',
        'MUST',
        'A transitional driver on the legacy interface initialises in the same order without the FEATURES_OK steps.',
        'the audit records it as initialization/reset-first and initialization/status-order, whose order on the legacy interface leaves FEATURES_OK out',
      ],
      [
        'reset-before-removing-buffers',
        '3.3.1',
        'MUST',
        'The driver resets the device before it takes back buffers it exposed.',
        'taking a buffer back is the driver reusing its own memory, which the device does not see; reused ring entries are audited as initialization/exposed-buffers-unchanged',
      ],
      [
        'suspend-only-when-live',
        '3.4.1',
        'SHOULD NOT',
        'The driver does not set SUSPEND without DRIVER_OK set and VIRTIO_F_SUSPEND negotiated.',
        NO_SUSPEND,
      ],
      [
        'suspend-verifies',
        '3.4.1',
        'MUST',
        'After setting SUSPEND the driver checks that SUSPEND reads 1 and DRIVER_OK reads 0.',
        NO_SUSPEND,
      ],
      ['suspend-no-buffers', '3.4.1', 'MUST NOT', 'A driver that set SUSPEND makes no more buffers available.', NO_SUSPEND],
      ['suspend-no-notifications', '3.4.1', 'MUST NOT', 'A driver that set SUSPEND sends no notifications.', NO_SUSPEND],
      [
        'suspend-no-config-changes',
        '3.4.1',
        'MUST NOT',
        'A driver that set SUSPEND changes no device configuration but device status.',
        NO_SUSPEND,
      ],
      [
        'resume-waits',
        '3.4.1',
        'MUST',
        'A resuming driver waits for SUSPEND to read 0 and DRIVER_OK 1 before normal operation.',
        NO_SUSPEND,
      ],
    ] as const
  ).map(([slug, section, level, text, uncheckable]) => driver(slug, section, level, text, uncheckable)),
  ...(
    [
      ['suspend-ignored-before-init', 'MUST', 'A device ignores SUSPEND writes until it is completely initialised.'],
      ['suspend-ignores-config-writes', 'SHOULD', 'A suspended device ignores configuration writes other than device status.'],
      ['suspend-quiet', 'MUST NOT', 'A suspended device sends no notifications, touches no virtqueue and changes no configuration field.'],
      ['suspend-defers-config-notification', 'MUST', 'Configuration changes while suspended are notified at resume, not before.'],
      ['suspend-or-needs-reset', 'MUST', 'On SUSPEND the device suspends, or sets DEVICE_NEEDS_RESET when it cannot.'],
      ['resume-or-needs-reset', 'MUST', 'On DRIVER_OK after a suspend the device resumes, or sets DEVICE_NEEDS_RESET when it cannot.'],
      ['suspend-drains', 'SHOULD', 'Before showing SUSPEND the device stops taking buffers, uses those in progress and notifies.'],
    ] as const
  ).map(([slug, level, text]): Statement => ({
    id: `${family}/${slug}`,
    section: '3.5.2',
    level,
    side: 'device',
    family,
    text,
    uncheckable:
      'needs VIRTIO_F_SUSPEND (43), which no device virtio-ts reaches offers (ours, QEMU 7.2 and 10.0, v86): a check could neither run nor be shown failing',
  })),
];
