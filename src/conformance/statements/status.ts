import type { CheckContext, Statement } from '../statement.js';
import { ACK_DRIVER, goLive, openDevice, pollFor, provokeError } from '../bring-up.js';
import { promptRequestUnsupported } from '../prompt-request.js';
import {
  VIRTIO_CONFIG_S_ACKNOWLEDGE,
  VIRTIO_CONFIG_S_DEVICE_NEEDS_RESET,
  VIRTIO_CONFIG_S_DRIVER,
  VIRTIO_CONFIG_S_DRIVER_OK,
  VIRTIO_CONFIG_S_FAILED,
  decodeStatus,
} from '../../spec/status.js';
import { VIRTIO_PCI_ISR_CONFIG } from '../../spec/virtio-pci.js';
import { auditedStatement } from '../audited-statement.js';
import { DRIVER_REQUIREMENTS as R } from '../../spec/driver-requirements.js';
import { deviceSuspendStatements } from './device-suspend.js';

const family = 'status';

/** A device-side statement that the device shows a status bit the driver set once it is in the table's order. */
function keepsBit(slug: string, bit: number, name: string, reach: (ctx: CheckContext) => Promise<number>): Statement {
  return {
    id: `${family}/${slug}`,
    section: '2.1',
    level: 'MUST',
    side: 'device',
    family,
    text: `device status shows ${name} once the driver set it in its step of initialisation, until reset.`,
    check: {
      via: ['modern', 'legacy'],
      async run(ctx: CheckContext) {
        const status = await reach(ctx);
        ctx.require((status & bit) !== 0, `device status ${decodeStatus(status)} after the driver set ${name}`);
      },
    },
  };
}

/**
 * After a guest fault on a live device (modern: the legacy interface has no DEVICE_NEEDS_RESET):
 * whether DEVICE_NEEDS_RESET showed, and the ISR bits collected meanwhile (reading clears them).
 */
async function afterError(ctx: CheckContext): Promise<{ readonly status: number; readonly isr: number }> {
  const live = await goLive(ctx);
  await live.transport.readIsr();
  const status = await provokeError(ctx, live);
  let isr = 0;
  await pollFor(
    ctx,
    async () => (isr |= await live.transport.readIsr()),
    (bits) => (bits & VIRTIO_PCI_ISR_CONFIG) !== 0 || (status & VIRTIO_CONFIG_S_DEVICE_NEEDS_RESET) === 0,
  );
  return { status, isr };
}

/** Family 'status' (see Family in ../statement.ts): 2.1, the device status field, and its SUSPEND bit (3.4). */
export const statusStatements: readonly Statement[] = [
  keepsBit('keeps-acknowledge', VIRTIO_CONFIG_S_ACKNOWLEDGE, 'ACKNOWLEDGE', async (ctx) => {
    const transport = await ctx.transport();
    await transport.reset();
    await transport.setStatus(VIRTIO_CONFIG_S_ACKNOWLEDGE);
    return transport.getStatus();
  }),
  keepsBit('keeps-driver', VIRTIO_CONFIG_S_DRIVER, 'DRIVER', async (ctx) => (await openDevice(ctx)).transport.getStatus()),
  keepsBit('keeps-driver-ok', VIRTIO_CONFIG_S_DRIVER_OK, 'DRIVER_OK', async (ctx) => (await goLive(ctx)).transport.getStatus()),
  keepsBit('keeps-failed', VIRTIO_CONFIG_S_FAILED, 'FAILED', async (ctx) => {
    const { transport } = await openDevice(ctx);
    await transport.setStatus(ACK_DRIVER | VIRTIO_CONFIG_S_FAILED);
    return transport.getStatus();
  }),
  {
    id: `${family}/needs-reset-on-error`,
    section: '2.1.2',
    level: 'SHOULD',
    side: 'device',
    family,
    text: 'A device that enters an error state a reset must clear sets DEVICE_NEEDS_RESET (a descriptor chain pointing past the table).',
    check: {
      via: ['modern'],
      applies: async (ctx) => promptRequestUnsupported(ctx.deviceType),
      async run(ctx: CheckContext) {
        const { status } = await afterError(ctx);
        ctx.require(
          (status & VIRTIO_CONFIG_S_DEVICE_NEEDS_RESET) !== 0,
          `device status ${decodeStatus(status)} ${ctx.timeoutMs} ms after a chain pointing past the descriptor table`,
        );
      },
    },
  },
  {
    id: `${family}/needs-reset-notifies-config`,
    section: '2.1.2',
    level: 'MUST',
    side: 'device',
    family,
    text: 'A live device that sets DEVICE_NEEDS_RESET sends a configuration change notification.',
    check: {
      via: ['modern'],
      applies: async (ctx) => promptRequestUnsupported(ctx.deviceType),
      async run(ctx: CheckContext) {
        const { status, isr } = await afterError(ctx);
        if ((status & VIRTIO_CONFIG_S_DEVICE_NEEDS_RESET) === 0) {
          ctx.note('the device did not set DEVICE_NEEDS_RESET on the fault: nothing to notify');
          return;
        }
        ctx.require(
          (isr & VIRTIO_PCI_ISR_CONFIG) !== 0,
          `ISR bits 0x${isr.toString(16)} within ${ctx.timeoutMs} ms of DEVICE_NEEDS_RESET: no configuration change`,
        );
      },
    },
  },
  {
    id: `${family}/driver-sets-steps`,
    section: '2.1.1',
    level: 'MUST',
    side: 'driver',
    family,
    text: 'The driver sets a status bit for each initialisation step it completed.',
    uncheckable:
      "whether a step is complete is the driver's own state; the audit sees the order of the bits (initialization/status-order), not what they stand for",
  },
  auditedStatement(family, R.statusNoClear),
  auditedStatement(family, R.statusResetAfterFailed),
  {
    id: `${family}/driver-no-reliance-after-needs-reset`,
    section: '2.1.1',
    level: 'SHOULD NOT',
    side: 'driver',
    family,
    text: 'A driver does not count on requests completing (or not) once DEVICE_NEEDS_RESET is set.',
    uncheckable: 'what a driver counts on is its own state: no access to the device shows it',
  },
  ...deviceSuspendStatements,
];
