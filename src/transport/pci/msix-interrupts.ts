/**
 * Interrupts of a virtio PCI function that may have MSI-X (4.1.4.5, 4.1.5.1.2): while MSI-X is
 * enabled an event sends the message of its vector (none for VIRTIO_MSI_NO_VECTOR) and INTx stays
 * silent; otherwise events raise INTx. The ISR is set either way (PciNotifications does), as QEMU does. A
 * vector can be assigned when it is an entry of the table; without a table, only NO_VECTOR.
 */

import type { MsixTable } from '../../pci/msix.js';
import { VIRTIO_MSI_NO_VECTOR } from '../../spec/virtio-pci.js';
import type { InterruptSink, IntxInterrupts } from './intx-interrupts.js';

export class MsixInterrupts implements InterruptSink {
  private msix: MsixTable | undefined;

  constructor(private readonly intx: IntxInterrupts) {}

  /**
   * Use `msix` from now on (the table is built after the core that reports to this sink).
   * `isrPending` says whether the ISR holds a bit: with MSI-X disabled the PCI status Interrupt
   * Status bit (and so INTx) is the OR of the ISR's bits (4.1.4.5.1), also for an event that came
   * while MSI-X was enabled.
   */
  attach(msix: MsixTable, isrPending: () => boolean): void {
    this.msix = msix;
    msix.onEnableChange((enabled) => {
      // Enabling MSI-X takes the function off its INTx pin; disabling it puts a pending ISR there.
      if (enabled) this.intx.isrCleared();
      else if (isrPending()) this.intx.notify();
    });
  }

  notify(vector: number): void {
    if (this.msix?.enabled === true) this.msix.notify(vector);
    else this.intx.notify();
  }
  isrCleared(): void {
    this.intx.isrCleared();
  }
  vectorUsable(vector: number): boolean {
    return vector === VIRTIO_MSI_NO_VECTOR || this.msix?.has(vector) === true;
  }
}
