/**
 * A split virtqueue the checks drive by hand (2.7): unlike the driver's rings it lets a check put
 * whatever it likes in the descriptor table (a chain the device must refuse), notify at any step of
 * initialisation, and read the used ring without taking anything from it. One DMA area in the
 * legacy layout (2.7.2: descriptors, available ring, the used ring on the next 4096-byte boundary)
 * serves both interfaces: the legacy one needs it, the modern one takes any three addresses.
 */

import type { DmaBuffer, DmaMemory, DmaSpan } from '../memory/dma.js';
import type { DriverTransport } from '../transport/pci/driver-transport.js';
import {
  VIRTQ_AVAIL_IDX,
  VIRTQ_AVAIL_RING,
  VIRTQ_DESC_ADDR,
  VIRTQ_DESC_F_NEXT,
  VIRTQ_DESC_F_WRITE,
  VIRTQ_DESC_FLAGS,
  VIRTQ_DESC_LEN,
  VIRTQ_DESC_NEXT,
  VIRTQ_DESC_SIZE,
  VIRTQ_USED_ELEM_SIZE,
  VIRTQ_USED_IDX,
  VIRTQ_USED_RING,
  descTableSize,
  legacyRingSize,
  legacyUsedOffset,
} from '../spec/ring.js';
import { VIRTIO_PCI_VRING_ALIGN } from '../spec/virtio-pci.js';

/** A used element as read from the ring. */
export interface UsedElement {
  readonly id: number;
  readonly len: number;
}

/** See the file comment. Descriptors are handed out in order from 0; the ring never wraps its descriptor table. */
export class ProbeRing {
  private readonly area: DmaBuffer;
  private readonly view: DataView;
  private nextDesc = 0;
  private availIdx = 0;

  private constructor(
    private readonly dma: DmaMemory,
    readonly index: number,
    readonly size: number,
  ) {
    this.area = dma.alloc(legacyRingSize(size, VIRTIO_PCI_VRING_ALIGN), VIRTIO_PCI_VRING_ALIGN);
    this.area.bytes.fill(0);
    this.view = new DataView(this.area.bytes.buffer, this.area.bytes.byteOffset, this.area.bytes.byteLength);
  }

  /**
   * Zeroed rings for queue `index` of `size` (the legacy interface's fixed size there), told to the
   * device and, on the modern interface, enabled.
   */
  static async create(transport: DriverTransport, dma: DmaMemory, index: number, size: number): Promise<ProbeRing> {
    const ring = new ProbeRing(dma, index, size);
    await ring.flushAll();
    await transport.setupQueue(index, {
      size,
      descAddr: ring.area.addr,
      driverAddr: ring.area.addr + descTableSize(size),
      deviceAddr: ring.area.addr + ring.usedOffset,
    });
    await transport.enableQueue(index);
    return ring;
  }

  private get usedOffset(): number {
    return legacyUsedOffset(this.size, VIRTIO_PCI_VRING_ALIGN);
  }

  /** Write one descriptor; returns its index. `next` defaults to the following descriptor. */
  private writeDesc(span: DmaSpan, flags: number, next?: number): number {
    const i = this.nextDesc++;
    if (i >= this.size) throw new RangeError(`probe ring of ${this.size} descriptors is full`);
    const at = i * VIRTQ_DESC_SIZE;
    this.view.setBigUint64(at + VIRTQ_DESC_ADDR, BigInt(span.addr), true);
    this.view.setUint32(at + VIRTQ_DESC_LEN, span.len, true);
    this.view.setUint16(at + VIRTQ_DESC_FLAGS, flags, true);
    this.view.setUint16(at + VIRTQ_DESC_NEXT, next ?? i + 1, true);
    return i;
  }

  /** Put a chain (device-readable `out`, then device-writable `inn`) in the descriptor table; returns its head. Not yet available. */
  addChain(out: readonly DmaSpan[], inn: readonly DmaSpan[]): number {
    const spans = [...out.map((s) => [s, 0] as const), ...inn.map((s) => [s, VIRTQ_DESC_F_WRITE] as const)];
    if (spans.length === 0) throw new RangeError('a chain needs at least one buffer');
    const head = this.nextDesc;
    spans.forEach(([span, flags], k) => this.writeDesc(span, flags | (k < spans.length - 1 ? VIRTQ_DESC_F_NEXT : 0)));
    return head;
  }

  /** A chain whose only descriptor says NEXT to a descriptor beyond the table: a guest fault (2.7.5). */
  addBrokenChain(span: DmaSpan, writable: boolean): number {
    return this.writeDesc(span, VIRTQ_DESC_F_NEXT | (writable ? VIRTQ_DESC_F_WRITE : 0), this.size);
  }

  /** Make `head` available (written to the ring and the index bumped), flushed to the device. */
  async makeAvailable(head: number): Promise<void> {
    const avail = descTableSize(this.size);
    this.view.setUint16(avail + VIRTQ_AVAIL_RING + 2 * (this.availIdx % this.size), head, true);
    this.availIdx = (this.availIdx + 1) & 0xffff;
    this.view.setUint16(avail + VIRTQ_AVAIL_IDX, this.availIdx, true);
    await this.flushAll();
  }

  /** Start handing out descriptors from `first` again (every chain before is used). */
  recycle(first = 0): void {
    this.nextDesc = first;
  }

  /** Notify the device of this queue through `transport` (with VIRTIO_F_NOTIFICATION_DATA, the published avail idx, 2.9). */
  notify(transport: DriverTransport): Promise<void> {
    return transport.notify(this.index, this.availIdx);
  }

  /** The device's used idx, as it is in memory now. */
  async usedIdx(): Promise<number> {
    await this.dma.refresh(this.area.addr + this.usedOffset, VIRTQ_USED_RING);
    return this.view.getUint16(this.usedOffset + VIRTQ_USED_IDX, true);
  }

  /** Used element `slot` (0-based, modulo the size), as it is in memory now. */
  async usedElement(slot: number): Promise<UsedElement> {
    const at = this.usedOffset + VIRTQ_USED_RING + VIRTQ_USED_ELEM_SIZE * (slot % this.size);
    await this.dma.refresh(this.area.addr + at, VIRTQ_USED_ELEM_SIZE);
    return { id: this.view.getUint32(at, true), len: this.view.getUint32(at + 4, true) };
  }

  private flushAll(): Promise<void> {
    return this.dma.flush(this.area.addr, this.area.bytes.length);
  }

  /** Give the memory back; only once the device cannot touch it any more (reset). */
  destroy(): void {
    this.dma.free(this.area);
  }
}
