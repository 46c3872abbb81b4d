/**
 * The descriptor table as the driver of a split virtqueue fills it (2.7.5, 2.7.13.1): which
 * descriptors are free, chains written into them linked by NEXT or behind one INDIRECT descriptor,
 * and which entries were written since the last publish (to flush them). Each descriptor's next is
 * kept here too, so a chain is freed without trusting ring memory the device could have changed.
 *
 * With VIRTIO_F_IN_ORDER the driver takes descriptors in ring order, from 0 and wrapping (2.7.5:
 * "driver uses descriptors in ring order"); chains come back in the order they were added, so
 * freeing one gives back the oldest descriptors taken.
 */

import type { DmaBuffer, DmaSpan } from '../../memory/dma.js';
import { hi32, lo32 } from '../../memory/guest-memory.js';
import {
  VIRTQ_DESC_ADDR,
  VIRTQ_DESC_F_INDIRECT,
  VIRTQ_DESC_F_NEXT,
  VIRTQ_DESC_F_WRITE,
  VIRTQ_DESC_FLAGS,
  VIRTQ_DESC_LEN,
  VIRTQ_DESC_NEXT,
  VIRTQ_DESC_SIZE,
} from '../../spec/ring.js';
import type { RingDma, RingPart } from '../ring-dma.js';

export class DriverDescriptorTable {
  private readonly size: number;
  private readonly mask: number;
  /** Free descriptor ids, a stack (without IN_ORDER). */
  private readonly freeIds: Uint16Array;
  private freeCount: number;
  /** With IN_ORDER: the next descriptor id to take; the free ones follow it, wrapping. */
  private nextFree = 0;
  /** JS-side copy of each descriptor's next, to free a chain without trusting ring memory. */
  private readonly nextId: Uint16Array;
  /** Entries written since the last publish, [lo, hi] (lo > hi: none). */
  private dirtyLo: number;
  private dirtyHi = -1;

  constructor(
    private readonly table: RingPart,
    size: number,
    private readonly inOrder: boolean,
  ) {
    this.size = size;
    this.mask = size - 1;
    this.freeIds = new Uint16Array(size);
    for (let i = 0; i < size; i++) this.freeIds[i] = size - 1 - i;
    this.freeCount = size;
    this.nextId = new Uint16Array(size);
    this.dirtyLo = size;
  }

  /** Descriptors free for new chains. */
  get free(): number {
    return this.freeCount;
  }

  /** Write `out` then `inn` into free descriptors linked by NEXT (as many as there are spans); returns the head. */
  writeChain(out: readonly DmaSpan[], inn: readonly DmaSpan[]): number {
    const nOut = out.length;
    const n = nOut + inn.length;
    const head = this.takeId();
    let id = head;
    for (let k = 0; k < n; k++) {
      const last = k === n - 1;
      const next = last ? 0 : this.takeId();
      const span = k < nOut ? out[k]! : inn[k - nOut]!;
      this.writeEntry(id, span.addr, span.len, chainFlags(k, nOut, last), next);
      this.nextId[id] = next;
      id = next;
    }
    return head;
  }

  /** Write `out` then `inn` into indirect table `table` (its own DMA allocation), behind one free descriptor; returns it. */
  writeIndirect(table: DmaBuffer, out: readonly DmaSpan[], inn: readonly DmaSpan[]): number {
    const nOut = out.length;
    const n = nOut + inn.length;
    const dv = new DataView(table.bytes.buffer, table.bytes.byteOffset, n * VIRTQ_DESC_SIZE);
    for (let k = 0; k < n; k++) {
      const last = k === n - 1;
      const span = k < nOut ? out[k]! : inn[k - nOut]!;
      writeDesc(dv, k * VIRTQ_DESC_SIZE, span.addr, span.len, chainFlags(k, nOut, last), last ? 0 : k + 1);
    }
    const head = this.takeId();
    this.writeEntry(head, table.addr, n * VIRTQ_DESC_SIZE, VIRTQ_DESC_F_INDIRECT, 0);
    return head;
  }

  /** Free the `count` descriptors of the chain at `head`. */
  release(head: number, count: number): void {
    if (this.inOrder) {
      // Chains come back in the order they were added, so theirs are the oldest descriptors taken.
      this.freeCount += count;
      return;
    }
    let id = head;
    for (let k = count; k > 0; k--) {
      this.freeIds[this.freeCount++] = id;
      id = this.nextId[id]!;
    }
  }

  /** Issue the flush of the entries written since the last publish. */
  flushWritten(dma: RingDma): void {
    if (this.dirtyLo <= this.dirtyHi) {
      dma.flush(this.table.addr + this.dirtyLo * VIRTQ_DESC_SIZE, (this.dirtyHi - this.dirtyLo + 1) * VIRTQ_DESC_SIZE);
    }
  }

  /** Publish: the entries written so far are the device's now. */
  published(): void {
    this.dirtyLo = this.size;
    this.dirtyHi = -1;
  }

  /** After a device reset (every chain released): in ring order, take descriptors "starting from offset 0" again (2.7.5). */
  restart(): void {
    this.nextFree = 0;
  }

  private takeId(): number {
    if (!this.inOrder) return this.freeIds[--this.freeCount]!;
    const id = this.nextFree;
    this.nextFree = (id + 1) & this.mask;
    this.freeCount--;
    return id;
  }

  private writeEntry(id: number, addr: number, len: number, flags: number, next: number): void {
    writeDesc(this.table.dv, id * VIRTQ_DESC_SIZE, addr, len, flags, next);
    if (id < this.dirtyLo) this.dirtyLo = id;
    if (id > this.dirtyHi) this.dirtyHi = id;
  }
}

/** The flags of buffer `k` of a chain whose first `nOut` buffers are device-readable. */
function chainFlags(k: number, nOut: number, last: boolean): number {
  return (k < nOut ? 0 : VIRTQ_DESC_F_WRITE) | (last ? 0 : VIRTQ_DESC_F_NEXT);
}

function writeDesc(dv: DataView, at: number, addr: number, len: number, flags: number, next: number): void {
  dv.setUint32(at + VIRTQ_DESC_ADDR, lo32(addr), true);
  dv.setUint32(at + VIRTQ_DESC_ADDR + 4, hi32(addr), true);
  dv.setUint32(at + VIRTQ_DESC_LEN, len, true);
  dv.setUint16(at + VIRTQ_DESC_FLAGS, flags, true);
  dv.setUint16(at + VIRTQ_DESC_NEXT, next, true);
}
