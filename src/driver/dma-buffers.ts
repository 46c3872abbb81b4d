/**
 * All-or-nothing DMA allocation: a driver that needs several buffers (rings, a queue's receive
 * buffers) gets all of them or none, so a failure partway leaves nothing allocated.
 */

import { UsageError } from '../errors.js';
import type { DmaBuffer, DmaMemory } from '../memory/dma.js';

/** One buffer per `[size, align]` request, or none: on a failure the ones taken are freed and the error rethrown. */
export function allocAll(dma: DmaMemory, requests: readonly (readonly [size: number, align: number])[]): DmaBuffer[] {
  const taken: DmaBuffer[] = [];
  try {
    for (const [size, align] of requests) taken.push(dma.alloc(size, align));
  } catch (err) {
    freeAll(dma, taken);
    throw err;
  }
  return taken;
}

/** `count` buffers of `size` bytes aligned to `align`, or none (see {@link allocAll}). */
export function allocBuffers(dma: DmaMemory, count: number, size: number, align: number): DmaBuffer[] {
  return allocAll(
    dma,
    Array.from({ length: count }, () => [size, align] as const),
  );
}

/** Free every buffer of `buffers` and empty the array. */
export function freeAll(dma: DmaMemory, buffers: DmaBuffer[]): void {
  for (const b of buffers.splice(0)) dma.free(b);
}

/**
 * DMA buffers a driver lends a device (transmit data, control messages): each is freed when the
 * device gives it back, and whatever it still holds is freed at once after the device is reset, so
 * that neither a closed driver nor a device that never answers keeps memory allocated.
 */
export class LentBuffers {
  private readonly lent = new Set<DmaBuffer>();
  private closed = false;

  constructor(private readonly dma: DmaMemory) {}

  /** A buffer to lend; UsageError once {@link close} ran (work queued before close() may run after it). */
  alloc(size: number, align: number): DmaBuffer {
    if (this.closed) throw new UsageError('driver closed');
    const buffer = this.dma.alloc(size, align);
    this.lent.add(buffer);
    return buffer;
  }

  /** The device gave `buffer` back. */
  free(buffer: DmaBuffer): void {
    if (this.lent.delete(buffer)) this.dma.free(buffer);
  }

  /** At close, after the device reset: frees what is lent, and lends nothing more. */
  close(): void {
    this.closed = true;
    for (const buffer of this.lent) this.dma.free(buffer);
    this.lent.clear();
  }
}
