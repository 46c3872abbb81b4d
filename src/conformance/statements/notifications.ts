import type { CheckContext, Statement } from '../statement.js';
import type { InterruptEvent } from '../../bus/pci-bus.js';
import { promptRequest, promptRequestUnsupported } from '../prompt-request.js';
import { pollFor } from '../bring-up.js';

const family = 'notifications';

/** Family 'notifications' (see Family in ../statement.ts): 2.3, and the configuration change notification of 3.2.1. */
export const notificationsStatements: readonly Statement[] = [
  {
    id: `${family}/used-notification-names-its-queue`,
    section: '2.3',
    level: 'MUST',
    side: 'device',
    family,
    text: "A used buffer notification designates the virtqueue that has used buffers (with MSI-X: that queue's vector).",
    check: {
      async applies(ctx: CheckContext) {
        const probed = await ctx.probe();
        return probed.msix === undefined
          ? 'the function has no MSI-X: an INTx notification designates no queue'
          : promptRequestUnsupported(ctx.deviceType);
      },
      async run(ctx: CheckContext) {
        const events: InterruptEvent[] = [];
        const stop = ctx.bus.onInterrupt(ctx.fn, (event) => events.push(event));
        try {
          const driver = await ctx.openDriver({ interrupts: 'msix', ring: 'split' });
          const features = await driver.negotiate(0n);
          const request = (await promptRequest(ctx.bus.dma, ctx.deviceType, features))!;
          const queue = await driver.setupQueue(request.queue, { maxSize: 16 });
          await driver.driverOk();
          const plan = driver.interrupts!;
          events.length = 0;
          queue.submit(request.out, request.inn, 1);
          await queue.kick();
          await queue.waitUsed();
          // Over a remote bus the message may reach the listeners after the used ring was seen.
          await pollFor(
            ctx,
            async () => events.length,
            (n) => n > 0,
          );
          const routes = events.filter((e) => e.kind === 'msi').map((e) => (e.kind === 'msi' ? plan.route(e.address, e.data) : undefined));
          ctx.require(routes.length > 0, `no MSI-X message for a request used on queue ${request.queue} (${plan.description})`);
          for (const route of routes)
            ctx.require(
              route !== undefined && !route.config && (route.queues === 'all' || route.queues.includes(request.queue)),
              `an MSI-X message for queue ${request.queue}'s used buffer ${route === undefined ? 'matches no vector the driver set' : `went to ${route.config ? 'the configuration vector' : `queues ${String(route.queues)}`}`} (${plan.description})`,
            );
        } finally {
          stop();
        }
      },
    },
  },
  {
    id: `${family}/config-change-notified`,
    section: '3.2.1',
    level: 'MUST',
    side: 'device',
    family,
    text: 'A device whose device-specific configuration changes sends a configuration change notification.',
    uncheckable:
      "the driver side cannot make a device change its own configuration in general (a link, a capacity, a console size change is the host's); DEVICE_NEEDS_RESET's notification is checked in status",
  },
];
