/**
 * A console port's transmitq (5.3.6): bytes out in buffers of at most one chunk each, as many as the
 * ring has room for per notification, each buffer lent until the device returns it.
 */

import type { DmaBuffer, DmaMemory } from '../../memory/dma.js';
import type { LentBuffers } from '../dma-buffers.js';
import type { Completion, DriverQueue } from '../driver-queue.js';

/**
 * Send `bytes` through `tx` in buffers of `chunk` bytes lent from `lent`. Resolves when the device
 * has taken all of them; rejects (ERR_DEVICE_TIMEOUT) once it has taken nothing for `timeoutMs`.
 */
export async function transmit(
  tx: DriverQueue<DmaBuffer>,
  lent: LentBuffers,
  dma: DmaMemory,
  chunk: number,
  bytes: Uint8Array,
  timeoutMs: number,
): Promise<void> {
  let inFlight = 0;
  const reclaim = (used: Completion<DmaBuffer>[]): void => {
    for (const u of used) lent.free(u.token);
    inFlight -= used.length;
  };
  const waitSome = async (): Promise<void> => reclaim(await tx.waitUsed(timeoutMs));
  let at = 0;
  while (at < bytes.byteLength) {
    while (tx.numFree < 1) await waitSome();
    // Every chunk the ring has room for, then one kick: the device takes them in one notification.
    for (; at < bytes.byteLength && tx.numFree >= 1; at += chunk) {
      const part = bytes.subarray(at, Math.min(bytes.byteLength, at + chunk));
      const buf = lent.alloc(part.byteLength, 16);
      buf.bytes.set(part);
      await dma.flush(buf.addr, part.byteLength);
      tx.submit([{ addr: buf.addr, len: part.byteLength }], [], buf);
      inFlight++;
    }
    await tx.kick();
  }
  while (inFlight > 0) await waitSome();
}
