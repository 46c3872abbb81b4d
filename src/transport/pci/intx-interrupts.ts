/**
 * Interrupts over the INTx pin (4.1.4.5): any event raises the pin, reading the ISR lowers it.
 * On its own, MSI-X vectors cannot be mapped, so every vector register reads back
 * VIRTIO_MSI_NO_VECTOR; MsixInterrupts (msix-interrupts.ts) wraps it for functions with MSI-X.
 */

import type { PciEndpoint } from '../../pci/endpoint.js';
import { VIRTIO_MSI_NO_VECTOR } from '../../spec/virtio-pci.js';
import type { InterruptSink } from '../device-core.js';

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
