import { settle, commonCfg, readQueueField, writeQueueField } from '../pci-support.js';
import type { CheckContext, Statement } from '../statement.js';
import { checkedStatements } from './define.js';
import {
  ACK_DRIVER,
  clearTrailingIsr,
  goLive,
  minimalFeatures,
  negotiateMinimal,
  openDevice,
  pollFor,
  provokeError,
  serveOne,
  settleMs,
  type Live,
} from '../bring-up.js';
import { ProbeRing } from '../probe-ring.js';
import { promptRequestUnsupported } from '../prompt-request.js';
import { VIRTIO_CONFIG_S_DEVICE_NEEDS_RESET, VIRTIO_CONFIG_S_FAILED, decodeStatus } from '../../spec/status.js';
import { VIRTIO_F_RING_RESET, bit, hasFeature } from '../../spec/features.js';
import { VIRTIO_PCI_COMMON_Q_ENABLE, VIRTIO_PCI_COMMON_Q_RESET, VIRTIO_PCI_ISR_QUEUE } from '../../spec/virtio-pci.js';

const family = 'reset';

/** Write 0 to device status and poll until it reads 0 or the budget runs out; the last value read. */
async function resetAndRead(ctx: CheckContext, live: { readonly transport: Live['transport'] }): Promise<number> {
  await live.transport.setStatus(0);
  return pollFor(
    ctx,
    () => live.transport.getStatus(),
    (s) => s === 0,
  );
}

/** A statement of 2.4.1's first rule, checked from one state of the device. */
function zeroFrom(
  slug: string,
  from: string,
  via: readonly ('modern' | 'legacy')[],
  reach: (ctx: CheckContext) => Promise<void>,
): Statement {
  return {
    id: `${family}/${slug}`,
    section: '2.4.1',
    level: 'MUST',
    side: 'device',
    family,
    text: `After a reset written ${from}, device status reads 0 (the reset completes).`,
    check: {
      via,
      applies: async (ctx) =>
        slug === 'status-zero-when-live' || slug === 'status-zero-after-error' ? promptRequestUnsupported(ctx.deviceType) : undefined,
      async run(ctx: CheckContext) {
        await reach(ctx);
        const status = await resetAndRead(ctx, { transport: await ctx.transport() });
        ctx.require(status === 0, `device status ${decodeStatus(status)} ${ctx.timeoutMs} ms after 0 was written ${from}`);
      },
    },
  };
}

/** A live device with RING_RESET negotiated that served one request on its prompt queue. */
async function liveWithRingReset(ctx: CheckContext): Promise<Live> {
  const opened = await openDevice(ctx);
  const live = await goLive(ctx, minimalFeatures(opened) | bit(VIRTIO_F_RING_RESET));
  const { usedIdx } = await serveOne(ctx, live);
  ctx.require(usedIdx === 1, `used idx ${usedIdx}: the request before the queue reset was not served`);
  return live;
}

/** Write queue_reset = 1 for `live`'s queue and poll until it reads 0; the last value read. */
async function resetQueue(ctx: CheckContext, live: Live): Promise<number> {
  const cfg = await commonCfg(ctx);
  await writeQueueField(cfg, live.ring.index, VIRTIO_PCI_COMMON_Q_RESET, 1);
  return pollFor(
    ctx,
    () => readQueueField(cfg, live.ring.index, VIRTIO_PCI_COMMON_Q_RESET),
    (v) => v === 0,
  );
}

const ringReset = {
  via: ['modern'] as const,
  async applies(ctx: CheckContext): Promise<string | undefined> {
    const unsupported = promptRequestUnsupported(ctx.deviceType);
    if (unsupported !== undefined) return unsupported;
    const opened = await openDevice(ctx);
    return hasFeature(opened.offered, VIRTIO_F_RING_RESET) ? undefined : 'the device does not offer VIRTIO_F_RING_RESET';
  },
};

/** A virtqueue reset statement (2.6.1, and the PCI form of it, 4.1.4.3.2). */
const ringResetStatement = checkedStatements(family, ringReset);

/** Family 'reset' (see Family in ../statement.ts): 2.4 device reset, 3.4 cleanup, 2.6.1 virtqueue reset. */
export const resetStatements: readonly Statement[] = [
  zeroFrom('status-zero-when-live', 'to a live device', ['modern', 'legacy'], async (ctx: CheckContext) => {
    const live = await goLive(ctx);
    await serveOne(ctx, live);
  }),
  zeroFrom('status-zero-when-failed', 'after the driver set FAILED', ['modern', 'legacy'], async (ctx: CheckContext) => {
    const { transport } = await openDevice(ctx);
    await transport.setStatus(ACK_DRIVER | VIRTIO_CONFIG_S_FAILED);
  }),
  zeroFrom('status-zero-after-features-ok', 'after FEATURES_OK', ['modern'], async (ctx: CheckContext) => {
    await negotiateMinimal(ctx);
  }),
  zeroFrom('status-zero-after-error', 'to a device that set DEVICE_NEEDS_RESET', ['modern'], async (ctx: CheckContext) => {
    const status = await provokeError(ctx, await goLive(ctx));
    if ((status & VIRTIO_CONFIG_S_DEVICE_NEEDS_RESET) === 0) ctx.note('the device did not set DEVICE_NEEDS_RESET on the fault');
  }),
  {
    id: `${family}/no-queue-use-after-reset`,
    section: '2.4.1',
    level: 'MUST NOT',
    side: 'device',
    family,
    text: 'Once device status reads 0 after a reset, the device writes nothing more to the rings of its old life.',
    check: {
      via: ['modern', 'legacy'],
      applies: async (ctx) => promptRequestUnsupported(ctx.deviceType),
      async run(ctx: CheckContext) {
        const live = await goLive(ctx);
        const head = live.ring.addChain(live.request.out, live.request.inn);
        await live.ring.makeAvailable(head);
        await live.ring.notify(live.transport);
        // The reset comes at once: a request may be in flight.
        const status = await resetAndRead(ctx, live);
        ctx.require(status === 0, `device status ${decodeStatus(status)} after the reset`);
        const atReset = await live.ring.usedIdx();
        await settle(settleMs(ctx));
        const later = await live.ring.usedIdx();
        ctx.require(later === atReset, `used idx ${atReset} when the reset completed, ${later} ${settleMs(ctx)} ms later`);
        live.ring.destroy();
      },
    },
  },
  {
    id: `${family}/no-notification-after-reset`,
    section: '2.4.1',
    level: 'MUST NOT',
    side: 'device',
    family,
    text: 'Once device status reads 0 after a reset, the device has no notification pending and sends none.',
    check: {
      via: ['modern', 'legacy'],
      applies: async (ctx) => promptRequestUnsupported(ctx.deviceType),
      async run(ctx: CheckContext) {
        const live = await goLive(ctx);
        await serveOne(ctx, live);
        const status = await resetAndRead(ctx, live);
        ctx.require(status === 0, `device status ${decodeStatus(status)} after the reset`);
        const atReset = await live.transport.readIsr();
        ctx.require(atReset === 0, `ISR 0x${atReset.toString(16)} when the reset completed`);
        await settle(settleMs(ctx));
        const later = await live.transport.readIsr();
        ctx.require(later === 0, `ISR 0x${later.toString(16)} ${settleMs(ctx)} ms after the reset`);
      },
    },
  },
  {
    id: `${family}/queues-disabled-after-reset`,
    section: '3.4',
    level: 'MUST',
    side: 'device',
    family,
    text: 'After a reset no virtqueue is live: every queue the driver had enabled reads queue_enable 0.',
    check: {
      via: ['modern'],
      applies: async (ctx) => promptRequestUnsupported(ctx.deviceType),
      async run(ctx: CheckContext) {
        const live = await goLive(ctx);
        const cfg = await commonCfg(ctx);
        const before = await readQueueField(cfg, live.ring.index, VIRTIO_PCI_COMMON_Q_ENABLE);
        await resetAndRead(ctx, live);
        const after = await readQueueField(cfg, live.ring.index, VIRTIO_PCI_COMMON_Q_ENABLE);
        ctx.require(after === 0, `queue ${live.ring.index}: queue_enable ${after} after the reset (${before} before)`);
      },
    },
  },
  ringResetStatement(
    'queue-reset-completes',
    '4.1.4.3.2',
    'MUST',
    'A queue reset completes: queue_reset reads 0 again.',
    async (ctx: CheckContext) => {
      const live = await liveWithRingReset(ctx);
      const value = await resetQueue(ctx, live);
      ctx.require(value === 0, `queue_reset reads ${value} ${ctx.timeoutMs} ms after 1 was written`);
    },
  ),
  ringResetStatement(
    'queue-reset-disables',
    '4.1.4.3.2',
    'MUST',
    'A completed queue reset leaves the queue disabled (queue_enable 0).',
    async (ctx: CheckContext) => {
      const live = await liveWithRingReset(ctx);
      await resetQueue(ctx, live);
      const enabled = await readQueueField(await commonCfg(ctx), live.ring.index, VIRTIO_PCI_COMMON_Q_ENABLE);
      ctx.require(enabled === 0, `queue_enable reads ${enabled} after the queue reset completed`);
    },
  ),
  ringResetStatement(
    'queue-reset-stops-requests',
    '2.6.1.1.1',
    'MUST NOT',
    'After a queue reset the device executes no request of that queue.',
    async (ctx: CheckContext) => {
      const live = await liveWithRingReset(ctx);
      await resetQueue(ctx, live);
      const before = await live.ring.usedIdx();
      const head = live.ring.addChain(live.request.out, live.request.inn);
      await live.ring.makeAvailable(head);
      await live.ring.notify(live.transport);
      await settle(settleMs(ctx));
      const after = await live.ring.usedIdx();
      ctx.require(
        after === before,
        `used idx ${before} at the queue reset, ${after} after a request was made available on the reset queue`,
      );
    },
  ),
  ringResetStatement(
    'queue-reset-no-notification',
    '2.6.1.1.1',
    'MUST NOT',
    'After a queue reset the device sends no notification for that queue.',
    async (ctx: CheckContext) => {
      const live = await liveWithRingReset(ctx);
      await clearTrailingIsr(ctx, live.transport);
      await resetQueue(ctx, live);
      await settle(settleMs(ctx));
      const isr = await live.transport.readIsr();
      ctx.require((isr & VIRTIO_PCI_ISR_QUEUE) === 0, `ISR 0x${isr.toString(16)} after queue ${live.ring.index} was reset`);
    },
  ),
  ringResetStatement(
    'queue-reset-default-state',
    '2.6.1.1.1',
    'MUST',
    'A queue reset returns the queue to its default state: re-enabled on new rings it starts from available index 0.',
    async (ctx: CheckContext) => {
      const live = await liveWithRingReset(ctx);
      await resetQueue(ctx, live);
      const ring = await ProbeRing.create(live.transport, ctx.bus.dma, live.ring.index, live.ring.size);
      const { head, usedIdx } = await serveOne(ctx, { ...live, ring });
      ctx.require(usedIdx === 1, `used idx ${usedIdx} on the new rings after one request (the old life had used 1)`);
      const element = await ring.usedElement(0);
      ctx.require(element.id === head, `used element id ${element.id}, the request's head is ${head}`);
    },
  ),
  ringResetStatement(
    'queue-reenable-uses-new-size',
    '2.6.1.2.1',
    'MUST',
    'A queue re-enabled after its reset with a smaller size is used with that size.',
    async (ctx: CheckContext) => {
      const live = await liveWithRingReset(ctx);
      const size = live.ring.size / 2;
      if (size < 8) {
        ctx.note(`queue ${live.ring.index} of size ${live.ring.size} is too small to halve and wrap: not checked`);
        return;
      }
      await resetQueue(ctx, live);
      const ring = await ProbeRing.create(live.transport, ctx.bus.dma, live.ring.index, size);
      // One request more than the new size, one at a time: the last wraps the new ring.
      for (let k = 0; k <= size; k++) {
        // Heads differ between the first request and the wrapping one, so a device on the old size shows.
        const { head, usedIdx } = await serveOne(ctx, { ...live, ring }, k === size ? 2 : k % 2);
        ctx.require(usedIdx === k + 1, `used idx ${usedIdx} after request ${k + 1} on the ring of size ${size}`);
        const element = await ring.usedElement(k);
        ctx.require(element.id === head, `request ${k + 1}: used element ${k % size} has id ${element.id}, the request's head is ${head}`);
      }
    },
  ),
  ringResetStatement(
    'queue-reset-zero-when-enabled',
    '4.1.4.3.2',
    'MUST',
    'queue_reset reads 0 for an enabled queue, and again once it is re-enabled after a queue reset.',
    async (ctx: CheckContext) => {
      const live = await liveWithRingReset(ctx);
      const cfg = await commonCfg(ctx);
      const first = await readQueueField(cfg, live.ring.index, VIRTIO_PCI_COMMON_Q_RESET);
      ctx.require(first === 0, `queue_reset reads ${first} on the enabled queue`);
      await resetQueue(ctx, live);
      await ProbeRing.create(live.transport, ctx.bus.dma, live.ring.index, live.ring.size);
      const again = await readQueueField(cfg, live.ring.index, VIRTIO_PCI_COMMON_Q_RESET);
      ctx.require(again === 0, `queue_reset reads ${again} on the re-enabled queue`);
    },
  ),
  ringResetStatement(
    'queue-reset-zero-after-device-reset',
    '4.1.4.3.2',
    'MUST',
    'A device reset leaves queue_reset reading 0, a queue reset in progress included.',
    async (ctx: CheckContext) => {
      const live = await liveWithRingReset(ctx);
      const cfg = await commonCfg(ctx);
      await writeQueueField(cfg, live.ring.index, VIRTIO_PCI_COMMON_Q_RESET, 1);
      await resetAndRead(ctx, live);
      const value = await readQueueField(cfg, live.ring.index, VIRTIO_PCI_COMMON_Q_RESET);
      ctx.require(value === 0, `queue_reset reads ${value} after the device reset`);
    },
  ),
  {
    id: `${family}/driver-reset-done-at-zero`,
    section: '2.4.2',
    level: 'SHOULD',
    side: 'driver',
    family,
    text: 'The driver takes a reset it started as complete once device status reads 0.',
    uncheckable:
      'the audit records it in its PCI form, pci-common-cfg/reset-wait (4.1.4.3.2): the device sees device_status reads through its transport',
  },
  {
    id: `${family}/driver-verifies-queue-reset`,
    section: '2.6.1.1.2',
    level: 'MUST',
    side: 'driver',
    family,
    text: 'After asking for a queue reset the driver checks that it happened before reusing the queue.',
    uncheckable:
      'the audit records it in its PCI form, pci-common-cfg/queue-reset-wait (4.1.4.3.2): the device sees queue_reset reads through its transport',
  },
  {
    id: `${family}/driver-reenable-as-initial`,
    section: '2.6.1.2.2',
    level: 'MUST',
    side: 'driver',
    family,
    text: 'The driver sets a re-enabled queue up as at first discovery (other parameters allowed).',
    uncheckable:
      'the audit records its parts the device sees in their PCI form: pci-common-cfg/configure-before-enable and the queue size rules, which hold after a queue reset as at first set-up',
  },
];
