/**
 * A burst of virtio-blk requests: the device pops and checks up to {@link BURST} chains, then
 * executes each in pop order, then completes each in pop order, so that the copies of a burst run
 * back to back instead of each evicting the bookkeeping the next request needs. Each request of a
 * burst lives in a {@link BurstSlot}, refilled burst after burst.
 */

import { RequestShapeError } from '../../errors.js';
import type { GuestMemory } from '../../memory/guest-memory.js';
import { VIRTIO_BLK_T_GET_ID, VIRTIO_BLK_T_IN } from '../../spec/blk.js';
import type { DescriptorChain } from '../../queue/types.js';
import type { GuestIo } from './backend.js';
import {
  BlkRequestError,
  chainSpans,
  parseBlkRequest,
  RequestStorage,
  statusAddress,
  usualRequest,
  type BlkLimits,
  type BlkRequest,
} from './request.js';

/** Requests popped and checked before the first of them is executed. */
export const BURST = 32;
/** {@link BurstSlot.answer} of a request an asynchronous backend holds. */
export const ASYNC = -1;

/** One request of a burst: what its completion needs, and the storage its parse refills. */
export class BurstSlot {
  readonly storage: RequestStorage;
  head = 0;
  /** Guest address of the status byte. */
  status = 0;
  usedLen = 0;
  /** The request to execute, or undefined when it is answered without I/O. */
  request: BlkRequest | undefined = undefined;
  /** The status to answer with, or ASYNC. */
  answer = 0;
  /** Device-writable data bytes, zeroed if the request fails so that used len stays truthful. */
  dataIn: GuestIo | undefined = undefined;

  constructor(memory: GuestMemory) {
    this.storage = new RequestStorage(memory);
  }

  /**
   * Take chain `chain`, popped from queue `queue`, in: its request (the usual layout in one pass, any other through the
   * general parser), or, for a request refused before any I/O, its answer. Returns that refusal's
   * BlkRequestError, or the fault when the chain cannot be answered at all (no status byte, or a
   * fault that is not the request's); undefined when the request is in `request`.
   */
  load(queue: number, chain: DescriptorChain, limits: BlkLimits, memory: GuestMemory): Error | undefined {
    this.head = chain.head;
    this.usedLen = chain.writableBytes;
    this.request = undefined;
    let request: BlkRequest;
    try {
      const usual = usualRequest(chain, limits, memory, this.storage);
      if (usual !== undefined) {
        // Its status byte is its last buffer, alone.
        this.status = chain.addr(2);
        request = usual;
      } else {
        const status = statusAddress(chain);
        if (status === undefined) return new RequestShapeError(`virtio-blk request on queue ${queue}: no device-writable status byte`);
        this.status = status;
        request = parseBlkRequest(chain, limits, memory, this.storage);
      }
    } catch (err) {
      if (!(err instanceof BlkRequestError)) return err instanceof Error ? err : new Error(String(err));
      // Zeroed with the refusal, so that used len stays truthful: the bytes before the status byte.
      this.dataIn = chainSpans(memory, chain, chain.readable, chain.count, 0, chain.writableBytes - 1);
      this.answer = err.status;
      return err;
    }
    this.dataIn = request.type === VIRTIO_BLK_T_IN || request.type === VIRTIO_BLK_T_GET_ID ? request.data : undefined;
    this.request = request;
    return undefined;
  }
}
