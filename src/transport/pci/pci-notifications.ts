/**
 * The PCI transport's side of the core's notifications (2.3 mapped by 4.1.4.5 and 4.1.5.1.2): a used
 * buffer notification sets ISR bit 0 and goes to its queue's MSI-X vector, a configuration change
 * notification sets ISR bit 1 and goes to the config vector; the {@link InterruptSink} sends the
 * message or raises INTx. The ISR and the vectors are registers of the PCI interfaces (common
 * config, legacy header), so they live here, not in the transport-neutral core.
 */

import type { DriverNotification, NotificationSink } from '../../core/device-core.js';
import { VIRTIO_MSI_NO_VECTOR, VIRTIO_PCI_ISR_CONFIG, VIRTIO_PCI_ISR_QUEUE } from '../../spec/virtio-pci.js';
import { DRIVER_REQUIREMENTS as R, type DriverAuditSink } from '../../spec/driver-requirements.js';
import type { InterruptSink } from './intx-interrupts.js';
import type { SnapshotReader } from '../../snapshot/snapshot-reader.js';
import { list, struct, u16, u8, type SnapshotStruct } from '../../snapshot/snapshot-value.js';

export class PciNotifications implements NotificationSink {
  private isr = 0;
  private configVectorValue = VIRTIO_MSI_NO_VECTOR;
  private readonly queueVectorValues: number[];
  /** Audit: the vector field written and not read back yet ('config', a queue index, or none). */
  private unverified: 'config' | number | undefined;

  /**
   * @param queueCount the device's num_queues
   * @param resetPending whether a device reset is still completing (vector writes are ignored then,
   *   as every driver write but a reset is)
   */
  constructor(
    queueCount: number,
    private readonly interrupts: InterruptSink,
    private readonly resetPending: () => boolean,
    /** Where broken driver statements go (the driver audit), when auditing. */
    private readonly audit?: DriverAuditSink,
  ) {
    this.queueVectorValues = new Array<number>(queueCount).fill(VIRTIO_MSI_NO_VECTOR);
  }

  notify(notification: DriverNotification): void {
    if (notification.kind === 'used-buffer') {
      this.isr |= VIRTIO_PCI_ISR_QUEUE;
      this.interrupts.notify(this.queueVectorValues[notification.queue]!);
    } else {
      this.isr |= VIRTIO_PCI_ISR_CONFIG;
      this.interrupts.notify(this.configVectorValue);
    }
  }

  /** Device reset: ISR 0 (INTx drops), every vector NO_VECTOR. A queue reset keeps the queue's vector. */
  reset(): void {
    this.unverified = undefined;
    this.configVectorValue = VIRTIO_MSI_NO_VECTOR;
    this.queueVectorValues.fill(VIRTIO_MSI_NO_VECTOR);
    this.isr = 0;
    this.interrupts.isrCleared();
  }

  /** Reading the ISR clears it and deasserts INTx. */
  readIsr(): number {
    const value = this.isr;
    this.isr = 0;
    this.interrupts.isrCleared();
    return value;
  }
  /** The ISR without the read side effect (for diagnostics). */
  peekIsr(): number {
    return this.isr;
  }

  /** config_msix_vector (VIRTIO_MSI_CONFIG_VECTOR on the legacy interface). */
  get configVector(): number {
    return this.configVectorValue;
  }
  /** queue_msix_vector of queue `index`; a queue that does not exist has none (NO_VECTOR, as QEMU). */
  queueVector(index: number): number {
    return this.queueVectorValues[index] ?? VIRTIO_MSI_NO_VECTOR;
  }
  /** The driver read config_msix_vector (audit: the mapping is verified). */
  readConfigVector(): number {
    if (this.unverified === 'config') this.unverified = undefined;
    return this.configVectorValue;
  }
  /** The driver read queue_msix_vector of queue `index` (audit: the mapping is verified). */
  readQueueVector(index: number): number {
    if (this.unverified === index) this.unverified = undefined;
    return this.queueVector(index);
  }
  /**
   * Audit: the driver moved on (another vector write, a status write) without reading back the
   * vector it wrote (4.1.5.1.2.2).
   */
  checkVectorVerified(): void {
    if (this.unverified === undefined) return;
    const field = this.unverified === 'config' ? 'config_msix_vector' : `queue_msix_vector of queue ${this.unverified}`;
    this.unverified = undefined;
    this.audit?.(R.msixVerifyVector, `${field} written and never read back`);
  }
  private auditVectorWrite(field: 'config' | number, vector: number): void {
    this.checkVectorVerified();
    this.unverified = field;
    if (!this.interrupts.vectorUsable(vector))
      this.audit!(
        R.msixVectorInTable,
        `${field === 'config' ? 'config_msix_vector' : `queue_msix_vector of queue ${field}`} written ${vector}, outside the MSI-X table`,
      );
  }
  /** Every queue's vector, by queue index. */
  get queueVectors(): readonly number[] {
    return this.queueVectorValues;
  }

  /**
   * A vector that cannot be mapped reads back as NO_VECTOR (4.1.5.1.2). As in QEMU, a vector can be
   * changed in any state (a legacy driver such as Linux's writes it after the queue PFN).
   */
  setQueueVector(index: number, vector: number): void {
    if (this.audit !== undefined) this.auditVectorWrite(index, vector);
    if (index >= 0 && index < this.queueVectorValues.length && !this.resetPending()) this.queueVectorValues[index] = this.usable(vector);
  }
  setConfigVector(vector: number): void {
    if (this.audit !== undefined) this.auditVectorWrite('config', vector);
    if (!this.resetPending()) this.configVectorValue = this.usable(vector);
  }
  /** The ISR and the vectors (docs/snapshots.md). */
  snapshot(): SnapshotStruct {
    return struct({ isr: u8(this.isr), configVector: u16(this.configVectorValue), queueVectors: list(this.queueVectorValues.map(u16)) });
  }

  /** Check `r` (SnapshotError otherwise: a vector outside the MSI-X table, another queue count) and return what applies it. */
  prepareRestore(r: SnapshotReader): () => void {
    const isr = r.int('isr', 'u8', 0, VIRTIO_PCI_ISR_QUEUE | VIRTIO_PCI_ISR_CONFIG);
    const vector = (v: number, what: string): number => {
      if (this.usable(v) !== v) throw r.rangeError(what, `vector ${v} is not in the MSI-X table`);
      return v;
    };
    const configVector = vector(r.u16('configVector'), 'configVector');
    const queueVectors = r.ints('queueVectors', 'u16', this.queueVectorValues.length).map((v, i) => vector(v, `queueVectors[${i}]`));
    if (queueVectors.length !== this.queueVectorValues.length)
      throw r.error(
        'ERR_SNAPSHOT_QUEUE_COUNT',
        `${queueVectors.length} queue vectors, the device has ${this.queueVectorValues.length} queues`,
      );
    return () => {
      this.isr = isr;
      this.configVectorValue = configVector;
      queueVectors.forEach((v, i) => (this.queueVectorValues[i] = v));
    };
  }

  private usable(vector: number): number {
    return this.interrupts.vectorUsable(vector) ? vector : VIRTIO_MSI_NO_VECTOR;
  }
}
