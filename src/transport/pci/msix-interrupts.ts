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

  /** Use `msix` from now on (the table is built after the core that reports to this sink). */
  attach(msix: MsixTable): void {
    this.msix = msix;
    // Enabling MSI-X takes the function off its INTx pin.
    msix.onEnableChange((enabled) => {
      if (enabled) this.intx.isrCleared();
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
