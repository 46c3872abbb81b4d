/**
 * One used buffer on demand, for the checks about what a device does when it uses a buffer (ISR,
 * INTx, MSI-X vectors): the device type's prompt request on a {@link ProbeRing} (not our driver,
 * which would read the ISR itself on INTx), and every interrupt event of the function recorded from
 * the moment the rig is set up.
 */

import type { InterruptEvent } from '../bus/pci-bus.js';
import { VIRTIO_F_VERSION_1, bit } from '../spec/features.js';
import { PCI_STATUS, PCI_STATUS_INTERRUPT } from '../spec/pci.js';
import { VIRTIO_CONFIG_S_DRIVER_OK } from '../spec/status.js';
import type { DriverTransport } from '../transport/pci/driver-transport.js';
import { featuresOk, pollFor, probeQueue, settleMs } from './bring-up.js';
import { settle, transportOf } from './pci-support.js';
import type { ProbeRing } from './probe-ring.js';
import { freePromptRequest, promptRequest, promptRequestUnsupported, type PromptRequest } from './prompt-request.js';
import type { CheckContext } from './statement.js';

/**
 * Wait, at most {@link settleMs}, until `sent()` holds or the PCI status register's interrupt bit
 * is set (a read that changes nothing, unlike the ISR's).
 */
async function interruptShown(ctx: CheckContext, sent: () => boolean): Promise<void> {
  const deadline = Date.now() + settleMs(ctx);
  for (let delay = 1; ; delay = Math.min(delay * 2, 20)) {
    if (sent() || ((await ctx.bus.configRead(ctx.fn, PCI_STATUS, 2)) & PCI_STATUS_INTERRUPT) !== 0 || Date.now() >= deadline) return;
    await settle(delay);
  }
}

/** Why the rig cannot make this device use a buffer, or undefined when it can. */
export function usedBufferUnsupported(ctx: CheckContext): string | undefined {
  return promptRequestUnsupported(ctx.deviceType);
}

export interface UsedBufferRig {
  readonly transport: DriverTransport;
  /** The queue the buffer goes to. */
  readonly queue: number;
  /** Interrupt events since the rig was set up. */
  readonly events: InterruptEvent[];
  /**
   * Make the buffer available and notify; resolves once the used index moved (false: not within the
   * timeout) and the device's interrupt for it shows (an event, or the PCI status interrupt bit), or
   * a settle time passed without one: the interrupt can trail the used index.
   */
  use(): Promise<boolean>;
  /** Stop recording, reset the device and free the memory. */
  close(): Promise<void>;
}

export interface RigOptions {
  /** Called after the queue's addresses are written and before it is enabled (e.g. to map its MSI-X vector). */
  readonly beforeEnable?: (transport: DriverTransport, queue: number) => Promise<void>;
}

/**
 * Reset, negotiate nothing but VERSION_1 (modern), set up the prompt request's queue and set
 * DRIVER_OK. Call {@link usedBufferUnsupported} first (in `applies`).
 */
export async function usedBufferRig(ctx: CheckContext, options: RigOptions = {}): Promise<UsedBufferRig> {
  const t = await transportOf(ctx);
  const events: InterruptEvent[] = [];
  const unsubscribe = ctx.bus.onInterrupt(ctx.fn, (e) => events.push(e));
  let ring: ProbeRing | undefined;
  let request: PromptRequest | undefined;
  const close = async (): Promise<void> => {
    unsubscribe();
    await t.reset().catch(() => undefined);
    ring?.destroy();
    if (request !== undefined) freePromptRequest(ctx.bus.dma, request);
  };
  try {
    ctx.require(await featuresOk(ctx), 'the device cleared FEATURES_OK for VERSION_1 alone');
    request = await promptRequest(ctx.bus.dma, ctx.deviceType, t.kind === 'modern' ? bit(VIRTIO_F_VERSION_1) : 0n);
    if (request === undefined) throw new RangeError(`no prompt request for device type ${ctx.deviceType}`);
    const queue = request.queue;
    const probe = await probeQueue(ctx, queue, false);
    ring = probe;
    await options.beforeEnable?.(t, queue);
    await t.enableQueue(queue);
    await t.setStatus((await t.getStatus()) | VIRTIO_CONFIG_S_DRIVER_OK);
    const head = probe.addChain(request.out, request.inn);
    return {
      transport: t,
      queue,
      events,
      close,
      async use(): Promise<boolean> {
        const before = events.length;
        await probe.makeAvailable(head);
        await probe.notify(t);
        const used =
          (await pollFor(
            ctx,
            () => probe.usedIdx(),
            (idx) => idx !== 0,
          )) !== 0;
        if (used) await interruptShown(ctx, () => events.length > before);
        return used;
      },
    };
  } catch (error) {
    await close();
    throw error;
  }
}
