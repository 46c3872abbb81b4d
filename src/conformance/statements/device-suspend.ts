/**
 * 3.4 Device Suspend (VIRTIO_F_SUSPEND, 1.4): the SUSPEND bit of the device status field, in family
 * 'status'. The device-side checks negotiate VIRTIO_F_SUSPEND where it is offered (neither QEMU 7.2
 * nor 10.0 offers it: they do not apply there) and drive the bit through the common configuration.
 */

import type { CheckContext, Statement } from '../statement.js';
import { checkedStatements } from './define.js';
import { ALL_OK, goLive, minimalFeatures, openDevice, pollFor, serveOne, settleMs, type Live } from '../bring-up.js';
import { commonCfg, readQueueField, settle, writeQueueField } from '../pci-support.js';
import { promptRequestUnsupported } from '../prompt-request.js';
import { auditedStatement, NO_DEADLINE } from '../audited-statement.js';
import { DRIVER_REQUIREMENTS as R } from '../../spec/driver-requirements.js';
import { VIRTIO_F_SUSPEND, bit, hasFeature } from '../../spec/features.js';
import { VIRTIO_CONFIG_S_DEVICE_NEEDS_RESET, VIRTIO_CONFIG_S_DRIVER_OK, VIRTIO_CONFIG_S_SUSPEND, decodeStatus } from '../../spec/status.js';
import { VIRTIO_PCI_COMMON_Q_SIZE } from '../../spec/virtio-pci.js';

const family = 'status';

/** Applies to a device that offers VIRTIO_F_SUSPEND and has a prompt request (modern interface: bit 43). */
const suspendable = {
  via: ['modern'] as const,
  async applies(ctx: CheckContext): Promise<string | undefined> {
    const unsupported = promptRequestUnsupported(ctx.deviceType);
    if (unsupported !== undefined) return unsupported;
    const opened = await openDevice(ctx);
    return hasFeature(opened.offered, VIRTIO_F_SUSPEND) ? undefined : 'the device does not offer VIRTIO_F_SUSPEND';
  },
};

/** Whether `status` shows the device suspended (3.4: SUSPEND set, DRIVER_OK clear). */
const isSuspended = (status: number): boolean =>
  (status & (VIRTIO_CONFIG_S_SUSPEND | VIRTIO_CONFIG_S_DRIVER_OK)) === VIRTIO_CONFIG_S_SUSPEND;

/** A live device with VIRTIO_F_SUSPEND negotiated. */
async function liveSuspendable(ctx: CheckContext): Promise<Live> {
  const opened = await openDevice(ctx);
  return goLive(ctx, minimalFeatures(opened) | bit(VIRTIO_F_SUSPEND));
}

/** Set SUSPEND on `live` and poll until it shows suspended (or DEVICE_NEEDS_RESET, or the budget ends); the last status. */
async function suspend(ctx: CheckContext, live: Live): Promise<number> {
  await live.transport.setStatus(ALL_OK | VIRTIO_CONFIG_S_SUSPEND);
  return pollFor(
    ctx,
    () => live.transport.getStatus(),
    (s) => isSuspended(s) || (s & VIRTIO_CONFIG_S_DEVICE_NEEDS_RESET) !== 0,
  );
}

/** {@link suspend}, failing the check unless the device shows itself suspended. */
async function suspended(ctx: CheckContext, live: Live): Promise<void> {
  const status = await suspend(ctx, live);
  ctx.require(isSuspended(status), `device status ${decodeStatus(status)} ${ctx.timeoutMs} ms after SUSPEND was set`);
}

const suspendStatement = checkedStatements(family, suspendable);

/** The statements of 3.4 (family 'status'), device side then driver side. */
export const deviceSuspendStatements: readonly Statement[] = [
  suspendStatement(
    'suspend-shows-suspended',
    '3.4.2',
    'MUST',
    'A live device with VIRTIO_F_SUSPEND negotiated that the driver suspends shows SUSPEND set and DRIVER_OK clear (or sets DEVICE_NEEDS_RESET).',
    async (ctx: CheckContext) => {
      const status = await suspend(ctx, await liveSuspendable(ctx));
      ctx.require(
        isSuspended(status) || (status & VIRTIO_CONFIG_S_DEVICE_NEEDS_RESET) !== 0,
        `device status ${decodeStatus(status)} ${ctx.timeoutMs} ms after SUSPEND was set`,
      );
    },
  ),
  suspendStatement(
    'suspend-ignored-before-driver-ok',
    '3.4.2',
    'MUST',
    'A device not yet live (FEATURES_OK set, DRIVER_OK not) ignores a SUSPEND write.',
    async (ctx: CheckContext) => {
      const opened = await openDevice(ctx);
      const features = minimalFeatures(opened) | bit(VIRTIO_F_SUSPEND);
      await opened.transport.setDriverFeatures(features);
      const featuresOk = ALL_OK & ~VIRTIO_CONFIG_S_DRIVER_OK;
      await opened.transport.setStatus(featuresOk);
      await opened.transport.setStatus(featuresOk | VIRTIO_CONFIG_S_SUSPEND);
      await settle(settleMs(ctx));
      const status = await opened.transport.getStatus();
      ctx.require(
        (status & VIRTIO_CONFIG_S_SUSPEND) === 0,
        `device status ${decodeStatus(status)} after SUSPEND was written before DRIVER_OK`,
      );
    },
  ),
  suspendStatement(
    'suspended-uses-no-queue',
    '3.4.2',
    'MUST NOT',
    'A suspended device uses no buffer, even one made available and notified meanwhile.',
    async (ctx: CheckContext) => {
      const live = await liveSuspendable(ctx);
      await suspended(ctx, live);
      const head = live.ring.addChain(live.request.out, live.request.inn);
      await live.ring.makeAvailable(head);
      await live.ring.notify(live.transport);
      await settle(settleMs(ctx));
      const usedIdx = await live.ring.usedIdx();
      ctx.require(usedIdx === 0, `used idx ${usedIdx} while the device shows itself suspended`);
    },
  ),
  suspendStatement(
    'resume-runs',
    '3.4.2',
    'MUST',
    'A suspended device whose driver sets DRIVER_OK again runs (SUSPEND clear, DRIVER_OK set, requests served) or sets DEVICE_NEEDS_RESET.',
    async (ctx: CheckContext) => {
      const live = await liveSuspendable(ctx);
      await suspended(ctx, live);
      await live.transport.setStatus(ALL_OK);
      const status = await pollFor(
        ctx,
        () => live.transport.getStatus(),
        (s) =>
          (s & (VIRTIO_CONFIG_S_SUSPEND | VIRTIO_CONFIG_S_DRIVER_OK)) === VIRTIO_CONFIG_S_DRIVER_OK ||
          (s & VIRTIO_CONFIG_S_DEVICE_NEEDS_RESET) !== 0,
      );
      if ((status & VIRTIO_CONFIG_S_DEVICE_NEEDS_RESET) !== 0) return;
      ctx.require((status & VIRTIO_CONFIG_S_SUSPEND) === 0, `device status ${decodeStatus(status)} ${ctx.timeoutMs} ms after the resume`);
      const { usedIdx } = await serveOne(ctx, live);
      ctx.require(usedIdx === 1, `used idx ${usedIdx} ${ctx.timeoutMs} ms after a request following the resume`);
    },
  ),
  suspendStatement(
    'suspended-ignores-queue-writes',
    '3.4.2',
    'SHOULD',
    'A suspended device ignores writes to the configuration structures other than device status (queue_size of a queue not enabled).',
    async (ctx: CheckContext) => {
      const live = await liveSuspendable(ctx);
      const queues = await live.transport.numQueues();
      // A queue the check did not enable: one the device would let a driver set up before DRIVER_OK.
      const other = (live.ring.index + 1) % queues;
      if (other === live.ring.index) {
        ctx.note('the device has one queue, enabled by the check: nothing to write that a suspended device could take');
        return;
      }
      await suspended(ctx, live);
      const cfg = await commonCfg(ctx);
      const before = await readQueueField(cfg, other, VIRTIO_PCI_COMMON_Q_SIZE);
      const smaller = before > 1 ? before >> 1 : before;
      await writeQueueField(cfg, other, VIRTIO_PCI_COMMON_Q_SIZE, smaller);
      const after = await readQueueField(cfg, other, VIRTIO_PCI_COMMON_Q_SIZE);
      ctx.require(after === before, `queue ${other}'s queue_size ${before} written ${smaller} while suspended reads ${after}`);
    },
  ),
  {
    id: `${family}/suspended-holds-config-change`,
    section: '3.4.2',
    level: 'MUST',
    side: 'device',
    family,
    text: 'A configuration change while suspended sends no configuration change notification until the device resumes, then one.',
    uncheckable:
      'a driver cannot make a device change its configuration on cue (a link change, a resize come from the device side); the unit tests cause one on our devices',
  },
  auditedStatement(family, R.suspendWhenLive),
  auditedStatement(family, R.suspendNoNotify),
  auditedStatement(family, R.suspendNoConfigWrite),
  {
    id: `${family}/driver-suspend-verify`,
    section: '3.4.1',
    level: 'MUST',
    side: 'driver',
    family,
    text: 'After setting SUSPEND the driver reads device status until it shows SUSPEND set and DRIVER_OK clear.',
    uncheckable: NO_DEADLINE,
  },
  {
    id: `${family}/driver-suspend-no-new-buffers`,
    section: '3.4.1',
    level: 'MUST NOT',
    side: 'driver',
    family,
    text: 'Once SUSPEND is set the driver makes no more buffers available.',
    uncheckable:
      'a suspended device does not read its rings (3.4.2), so it cannot see buffers made available meanwhile; the notification that would follow is audited (status/suspend-no-notify)',
  },
  {
    id: `${family}/driver-resume-wait`,
    section: '3.4.1',
    level: 'MUST',
    side: 'driver',
    family,
    text: 'After setting DRIVER_OK to resume, the driver waits for SUSPEND clear and DRIVER_OK set before using the device.',
    uncheckable: 'our devices resume within the status write itself: there is no window in which a driver could act too early',
  },
];
