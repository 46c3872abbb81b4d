/**
 * Family 'pci-isr' (spec 4.1.4.5): the ISR status capability, and what the device does with it
 * while MSI-X is off: the queue bit before a used buffer notification, the PCI status register's
 * interrupt bit as the OR of the ISR bits, INTx asserted (unless masked by the command register) and
 * deasserted by the read that clears the ISR. Each check runs through both interfaces.
 */

import { PCI_COMMAND, PCI_COMMAND_INTX_DISABLE, PCI_STATUS, PCI_STATUS_INTERRUPT } from '../../spec/pci.js';
import { VIRTIO_PCI_CAP_ISR_CFG, VIRTIO_PCI_ISR_QUEUE } from '../../spec/virtio-pci.js';
import type { InterruptEvent } from '../../bus/pci-bus.js';
import { capsOfType, enableMsix, hex, modernOnly, msixOf, settle } from '../pci-support.js';
import { usedBufferRig, usedBufferUnsupported, type UsedBufferRig } from '../used-buffer.js';
import type { Check, CheckContext, Statement } from '../statement.js';

const base = { family: 'pci-isr', side: 'device' } as const;

/** The facts of one used buffer with MSI-X off, for the checks to judge. */
interface Observed {
  /** PCI status register after the device used the buffer, before the ISR read. */
  readonly statusBefore: number;
  readonly isr: number;
  readonly isrAgain: number;
  /** PCI status register after the ISR read. */
  readonly statusAfter: number;
  /** INTx events before and after the ISR read. */
  readonly eventsBefore: readonly InterruptEvent[];
  readonly eventsAfter: readonly InterruptEvent[];
}

/** Use one buffer with MSI-X off (the function's reset state) and record the ISR, status and INTx around the ISR read. */
async function observe(ctx: CheckContext, options: { readonly intxDisable?: boolean } = {}): Promise<Observed> {
  const command = await ctx.bus.configRead(ctx.fn, PCI_COMMAND, 2);
  if (options.intxDisable === true) await ctx.bus.configWrite(ctx.fn, PCI_COMMAND, 2, command | PCI_COMMAND_INTX_DISABLE);
  let rig: UsedBufferRig | undefined;
  try {
    rig = await usedBufferRig(ctx);
    ctx.require(await rig.use(), `queue ${rig.queue}: the device did not use the buffer within ${ctx.timeoutMs} ms`);
    await settle();
    const statusBefore = await ctx.bus.configRead(ctx.fn, PCI_STATUS, 2);
    const eventsBefore = rig.events.filter((e) => e.kind === 'intx');
    const isr = await rig.transport.readIsr();
    const isrAgain = await rig.transport.readIsr();
    await settle();
    const statusAfter = await ctx.bus.configRead(ctx.fn, PCI_STATUS, 2);
    const eventsAfter = rig.events.filter((e) => e.kind === 'intx').slice(eventsBefore.length);
    ctx.note(`ISR ${hex(isr)} then ${hex(isrAgain)}; PCI status ${hex(statusBefore)} then ${hex(statusAfter)}`);
    return { statusBefore, isr, isrAgain, statusAfter, eventsBefore, eventsAfter };
  } finally {
    await rig?.close();
    if (options.intxDisable === true) await ctx.bus.configWrite(ctx.fn, PCI_COMMAND, 2, command);
  }
}

const lastLevel = (events: readonly InterruptEvent[]): boolean | undefined => {
  const last = events.at(-1);
  return last?.kind === 'intx' ? last.asserted : undefined;
};

/** A check of one used buffer with MSI-X off, through both interfaces. */
function observing(judge: (ctx: CheckContext, o: Observed) => void, options: { readonly intxDisable?: boolean } = {}): Check {
  return {
    via: ['modern', 'legacy'],
    async applies(ctx: CheckContext) {
      return usedBufferUnsupported(ctx);
    },
    async run(ctx: CheckContext) {
      judge(ctx, await observe(ctx, options));
    },
  };
}

export const pciIsrStatements: readonly Statement[] = [
  {
    ...base,
    id: 'pci-isr/isr-cfg-present',
    section: '4.1.4.5.1',
    level: 'MUST',
    text: 'The device has at least one VIRTIO_PCI_CAP_ISR_CFG capability.',
    check: {
      applies: modernOnly,
      async run(ctx: CheckContext) {
        ctx.require((await capsOfType(ctx, VIRTIO_PCI_CAP_ISR_CFG)).length > 0, 'no isr-cfg capability');
      },
    },
  },
  {
    ...base,
    id: 'pci-isr/config-bit-before-notification',
    section: '4.1.4.5.1',
    level: 'MUST',
    text: 'The device sets the Device Configuration Interrupt bit in the ISR before a configuration change notification.',
    uncheckable: 'a configuration change cannot be caused through the transport alone; it is device-type specific',
  },
  {
    ...base,
    id: 'pci-isr/queue-bit-before-notification',
    section: '4.1.4.5.1',
    level: 'MUST',
    text: 'With MSI-X disabled, the device sets the Queue Interrupt bit in the ISR before a used buffer notification.',
    check: observing((ctx: CheckContext, o) =>
      ctx.require((o.isr & VIRTIO_PCI_ISR_QUEUE) !== 0, `ISR read ${hex(o.isr)} after the device used a buffer`),
    ),
  },
  {
    ...base,
    id: 'pci-isr/read-clears',
    section: '4.1.4.5.1',
    level: 'MUST',
    text: 'Reading the ISR resets it to 0.',
    check: observing((ctx: CheckContext, o) =>
      ctx.require(o.isr !== 0 && o.isrAgain === 0, `ISR read ${hex(o.isr)}, then ${hex(o.isrAgain)}`),
    ),
  },
  {
    ...base,
    id: 'pci-isr/pci-status-interrupt-set',
    section: '4.1.4.5.1',
    level: 'MUST',
    text: "With MSI-X disabled, the PCI status register's Interrupt Status bit is set while an ISR bit is set.",
    check: observing((ctx: CheckContext, o) =>
      ctx.require(
        (o.statusBefore & PCI_STATUS_INTERRUPT) !== 0,
        `PCI status ${hex(o.statusBefore)} (interrupt bit clear) while the ISR held ${hex(o.isr)}`,
      ),
    ),
  },
  {
    ...base,
    id: 'pci-isr/pci-status-interrupt-clear',
    section: '4.1.4.5.1',
    level: 'MUST',
    text: "With MSI-X disabled, the PCI status register's Interrupt Status bit is clear once the ISR reads 0.",
    check: observing((ctx: CheckContext, o) =>
      ctx.require(
        (o.statusAfter & PCI_STATUS_INTERRUPT) === 0,
        `PCI status ${hex(o.statusAfter)} (interrupt bit set) after the ISR read ${hex(o.isr)} and then ${hex(o.isrAgain)}`,
      ),
    ),
  },
  {
    ...base,
    id: 'pci-isr/intx-asserted',
    section: '4.1.4.5.1',
    level: 'MUST',
    text: 'With MSI-X disabled and INTx not masked, the device asserts INTx while an ISR bit is set.',
    check: observing((ctx: CheckContext, o) =>
      ctx.require(lastLevel(o.eventsBefore) === true, `INTx events before the ISR read: ${JSON.stringify(o.eventsBefore)}`),
    ),
  },
  {
    ...base,
    id: 'pci-isr/intx-deasserted-on-read',
    section: '4.1.4.5.1',
    level: 'MUST',
    text: 'The ISR read that clears it deasserts INTx.',
    check: observing((ctx: CheckContext, o) =>
      ctx.require(
        lastLevel(o.eventsBefore) === true && lastLevel(o.eventsAfter) === false,
        `INTx events before the ISR read: ${JSON.stringify(o.eventsBefore)}; after: ${JSON.stringify(o.eventsAfter)}`,
      ),
    ),
  },
  {
    ...base,
    id: 'pci-isr/intx-masked-by-command',
    section: '4.1.4.5.1',
    level: 'MUST NOT',
    text: "With the command register's Interrupt Disable bit set, the device does not assert INTx (PCI rules), though the ISR bit is set.",
    check: observing(
      (ctx: CheckContext, o) =>
        ctx.require(
          (o.isr & VIRTIO_PCI_ISR_QUEUE) !== 0 && !o.eventsBefore.some((e) => e.kind === 'intx' && e.asserted),
          `with Interrupt Disable: ISR ${hex(o.isr)}, INTx events ${JSON.stringify(o.eventsBefore)}`,
        ),
      { intxDisable: true },
    ),
  },
  {
    ...base,
    id: 'pci-isr/pci-status-interrupt-set-masked',
    section: '4.1.4.5.1',
    level: 'MUST',
    text: "With MSI-X disabled, the PCI status register's Interrupt Status bit follows the ISR even while INTx is masked by Interrupt Disable.",
    check: observing(
      (ctx: CheckContext, o) =>
        ctx.require(
          (o.isr & VIRTIO_PCI_ISR_QUEUE) !== 0 && (o.statusBefore & PCI_STATUS_INTERRUPT) !== 0,
          `with Interrupt Disable: ISR ${hex(o.isr)}, PCI status ${hex(o.statusBefore)}`,
        ),
      { intxDisable: true },
    ),
  },
  {
    ...base,
    id: 'pci-isr/pci-status-after-msix-disabled',
    section: '4.1.4.5.1',
    level: 'MUST',
    text: "Once MSI-X is disabled, the PCI status register's Interrupt Status bit shows the ISR bits set while MSI-X was on.",
    check: {
      via: ['modern', 'legacy'],
      async applies(ctx: CheckContext) {
        const msix = await msixOf(ctx);
        return typeof msix === 'string' ? msix : usedBufferUnsupported(ctx);
      },
      async run(ctx: CheckContext) {
        const msix = await msixOf(ctx);
        if (typeof msix === 'string') return;
        // Function-masked: the device keeps the message pending rather than sending it.
        const disable = await enableMsix(ctx, msix);
        let disabled = false;
        const rig = await usedBufferRig(ctx, { beforeEnable: async (t, queue) => void (await t.setQueueVector(queue, 0)) });
        try {
          ctx.require(await rig.use(), `queue ${rig.queue}: the device did not use the buffer within ${ctx.timeoutMs} ms`);
          await disable();
          disabled = true;
          await settle();
          const status = await ctx.bus.configRead(ctx.fn, PCI_STATUS, 2);
          const isr = await rig.transport.readIsr();
          ctx.note(`MSI-X disabled after a used buffer: PCI status ${hex(status)}, ISR ${hex(isr)}`);
          ctx.require(
            isr === 0 || (status & PCI_STATUS_INTERRUPT) !== 0,
            `MSI-X disabled with ISR ${hex(isr)}: PCI status ${hex(status)} (interrupt bit clear)`,
          );
        } finally {
          await rig.close();
          if (!disabled) await disable();
        }
      },
    },
  },
  {
    ...base,
    side: 'driver',
    id: 'pci-isr/driver-no-isr-with-msix',
    section: '4.1.4.5.2',
    level: 'SHOULD NOT',
    text: 'With MSI-X enabled, the driver does not read the ISR on a queue interrupt.',
    uncheckable:
      'an ISR read does not say which interrupt it answers: the device cannot tell a read on a queue interrupt from one on a configuration change',
  },
];
