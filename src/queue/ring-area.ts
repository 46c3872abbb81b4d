/** A ring area the driver placed, checked once when the queue is enabled (both ring formats). */

import { QueueFaultError } from '../errors.js';
import type { GuestMemory } from '../memory/guest-memory.js';

/** A ring area resolved to a DataView over its backing buffer and the area's offset in it. */
export interface RingAreaView {
  readonly dv: DataView;
  readonly base: number;
}

/**
 * Check that the area `name` of queue `queueIndex`, [addr, +len), is `align`-byte aligned inside
 * guest memory, and resolve it to a zero-copy DataView. Throws QueueFaultError('ERR_QUEUE_RING_ADDRESS').
 */
export function ringArea(memory: GuestMemory, queueIndex: number, name: string, addr: number, align: number, len: number): RingAreaView {
  if (!(addr % align === 0 && memory.contains(addr, len))) {
    throw new QueueFaultError(
      'ERR_QUEUE_RING_ADDRESS',
      queueIndex,
      `${name} [0x${addr.toString(16)}, +0x${len.toString(16)}) is not ${align}-byte aligned inside guest memory`,
    );
  }
  const bytes = memory.view(addr, len);
  return { dv: new DataView(bytes.buffer), base: bytes.byteOffset };
}
