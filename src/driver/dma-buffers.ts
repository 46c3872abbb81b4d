/**
 * All-or-nothing DMA allocation: a driver that needs several buffers (rings, a queue's receive
 * buffers) gets all of them or none, so a failure partway leaves nothing allocated.
 */

import type { DmaBuffer, DmaMemory } from './pci-bus.js';

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
  return allocAll(dma, Array.from({ length: count }, () => [size, align] as const));
}

/** Free every buffer of `buffers` and empty the array. */
export function freeAll(dma: DmaMemory, buffers: DmaBuffer[]): void {
  for (const b of buffers.splice(0)) dma.free(b);
}
