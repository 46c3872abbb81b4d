/**
 * The notifications a device sends its driver (2.3: used buffer, configuration change), as the
 * driver receives them from interrupts. With MSI-X, a message's vector names its queue (or every
 * queue, for the shared vector) or a configuration change, without the ISR; INTx is ignored then.
 * With INTx, the ISR is read (and so cleared, 4.1.4.5): its queue bit wakes the queues, its config
 * bit is a configuration change. The device's side is transport/pci/pci-notifications.ts.
 */

import { VIRTIO_PCI_ISR_CONFIG, VIRTIO_PCI_ISR_QUEUE } from '../spec/virtio-pci.js';
import type { InterruptPlan } from '../transport/pci/msix-driver.js';
import type { InterruptEvent } from '../bus/pci-bus.js';

/** What the driver core does with each notification. */
export interface DriverNotificationHandlers {
  /** Read (and so clear) the ISR status. */
  readIsr(): Promise<number>;
  /** A used buffer notification for queue `index`. */
  usedBuffer(index: number): void;
  /** A used buffer notification for every queue (the shared vector, the ISR queue bit). */
  usedBuffers(): void;
  configurationChange(): Promise<void>;
  /** The ISR could not be read: the driver's fault. */
  fault(error: Error): void;
}

/** See the file comment. */
export class DriverNotifications {
  private isrBusy = false;
  private isrPending = false;

  constructor(private readonly handlers: DriverNotificationHandlers) {}

  /** An interrupt `event` arrived, under the interrupt `plan` chosen (undefined before negotiation). */
  interrupt(event: InterruptEvent, plan: InterruptPlan | undefined): void {
    const msix = plan !== undefined && plan.kind !== 'intx';
    if (event.kind === 'msi') {
      const route = msix ? plan.route(event.address, event.data) : undefined;
      if (route === undefined) return;
      if (route.queues === 'all') this.handlers.usedBuffers();
      else for (const index of route.queues) this.handlers.usedBuffer(index);
      if (route.config) void this.handlers.configurationChange();
      return;
    }
    if (msix || !event.asserted) return;
    if (this.isrBusy) {
      this.isrPending = true; // one ISR read at a time; an interrupt during a read causes another
      return;
    }
    this.isrBusy = true;
    void this.serviceIsr().finally(() => (this.isrBusy = false));
  }

  private async serviceIsr(): Promise<void> {
    do {
      this.isrPending = false;
      let isr: number;
      try {
        isr = await this.handlers.readIsr();
      } catch (error) {
        this.handlers.fault(error as Error);
        isr = VIRTIO_PCI_ISR_QUEUE; // wake every waiter so it sees the fault
      }
      if ((isr & VIRTIO_PCI_ISR_QUEUE) !== 0) this.handlers.usedBuffers();
      if ((isr & VIRTIO_PCI_ISR_CONFIG) !== 0) await this.handlers.configurationChange();
    } while (this.isrPending);
  }
}
