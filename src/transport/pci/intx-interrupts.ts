/**
 * Interrupts over the INTx pin (4.1.4.5): any event raises the pin, reading the ISR lowers it.
 * On its own, MSI-X vectors cannot be mapped, so every vector register reads back
 * VIRTIO_MSI_NO_VECTOR; MsixInterrupts (msix-interrupts.ts) wraps it for functions with MSI-X.
 */

import type { PciEndpoint } from '../../pci/endpoint.js';
import { VIRTIO_MSI_NO_VECTOR } from '../../spec/virtio-pci.js';

/**
 * How a PCI function raises an interrupt for a notification (PciNotifications, pci-notifications.ts, decides the
 * ISR bit and the vector).
 */
export interface InterruptSink {
  /** Something happened on MSI-X vector `vector` (VIRTIO_MSI_NO_VECTOR if none); the ISR is already set. */
  notify(vector: number): void;
  /** The driver read (and so cleared) the ISR, or the device was reset: a level-triggered line drops. */
  isrCleared(): void;
  /** Whether `vector` can be mapped (VIRTIO_MSI_NO_VECTOR always can); otherwise the register reads back NO_VECTOR. */
  vectorUsable(vector: number): boolean;
}

export class IntxInterrupts implements InterruptSink {
  constructor(private readonly endpoint: PciEndpoint) {}

  notify(): void {
    this.endpoint.setIntx(true);
  }
  isrCleared(): void {
    this.endpoint.setIntx(false);
  }
  vectorUsable(vector: number): boolean {
    return vector === VIRTIO_MSI_NO_VECTOR;
  }
}
