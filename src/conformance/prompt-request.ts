/**
 * A request each device type serves at once, without a peer or any set-up beyond its queue: what
 * the checks use to see whether a device consumes buffers (and notifies) at a given moment. It is
 * the device type's request of ring-requests.ts ({@link anyRequest}: entropy, a blk read of sector 0,
 * a net frame on transmitq, console output on port 0), its buffers placed in DMA memory.
 */

import type { DmaBuffer, DmaMemory, DmaSpan } from '../memory/dma.js';
import { anyRequest } from './ring-requests.js';

/** Where a prompt request goes and its buffers (device-readable `out`, device-writable `inn`). */
export interface PromptRequest {
  readonly queue: number;
  readonly out: readonly DmaSpan[];
  readonly inn: readonly DmaSpan[];
  /** The DMA buffers behind `out` and `inn`, for {@link freePromptRequest}. */
  readonly buffers: readonly DmaBuffer[];
}

/** The device types {@link promptRequest} knows; a reason for the others. */
export function promptRequestUnsupported(deviceType: number): string | undefined {
  return anyRequest(deviceType) === undefined ? `no request is known that a device of type ${deviceType} serves on its own` : undefined;
}

/**
 * The request for `deviceType` with `features` negotiated (they decide the net header's size), its
 * buffers allocated in `dma` (the writable ones zeroed) and flushed. Undefined for a type
 * {@link promptRequestUnsupported} names.
 */
export async function promptRequest(dma: DmaMemory, deviceType: number, features: bigint): Promise<PromptRequest | undefined> {
  const request = anyRequest(deviceType, 0, features);
  if (request === undefined) return undefined;
  const buffers: DmaBuffer[] = [];
  const place = async (bytes: Uint8Array): Promise<DmaSpan> => {
    const buffer = dma.alloc(bytes.length, 16);
    buffers.push(buffer);
    buffer.bytes.set(bytes);
    await dma.flush(buffer.addr, bytes.length);
    return { addr: buffer.addr, len: bytes.length };
  };
  const out: DmaSpan[] = [];
  for (const bytes of request.readable) out.push(await place(bytes));
  const inn: DmaSpan[] = [];
  for (const len of request.writable) inn.push(await place(new Uint8Array(len)));
  return { queue: request.queue, out, inn, buffers };
}

/** Give a request's buffers back; only once the device cannot touch them any more (reset). */
export function freePromptRequest(dma: DmaMemory, request: PromptRequest): void {
  for (const b of request.buffers) dma.free(b);
}
