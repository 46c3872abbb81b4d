/**
 * The requests a virtio-blk device has handed to an asynchronous backend, across device resets and
 * queue resets (VIRTIO_F_RING_RESET). A backend operation cannot be recalled, and it reads or writes
 * guest memory in place until its promise settles, so a reset completes only once every operation
 * started before it has settled, operations of an old life still count against the device's
 * `maxInFlight`, and their completions are dropped.
 */

import type { DeviceQueue } from '../../queue/types.js';
import type { ResetCompletion } from '../../core/virtio-device.js';
import type { GuestIo } from './backend.js';

/** One life of one queue, from its enabling to its reset or the device's: its operations with the backend. */
interface QueueLife {
  inFlight: number;
  /** The queue was reset: completions of this life are dropped. */
  ended: boolean;
  /** Resolves the queue reset once the last operation of this life has settled. */
  settled: (() => void) | undefined;
}

function newLife(): QueueLife {
  return { inFlight: 0, ended: false, settled: undefined };
}

/** A request handed to an asynchronous backend, remembered without the chain (queues may reuse it). */
export interface PendingRequest {
  readonly generation: number;
  readonly life: QueueLife;
  readonly queue: DeviceQueue;
  readonly head: number;
  /** Guest address of the status byte. */
  readonly status: number;
  readonly usedLen: number;
  /** Device-writable data bytes, zeroed if the request fails so that used len stays truthful. */
  readonly dataIn: GuestIo | undefined;
}

export class InFlightRequests {
  /** Backend operations outstanding, of this life and of lives before resets (all count against maxInFlight). */
  count = 0;
  /** The current life of each queue (indexed like the device's queues). */
  private lives: QueueLife[] = [];
  /** Bumped by reset so that completions of requests from before it are dropped. */
  private generation = 0;
  /** Of `count`, the ones started before the latest reset. */
  private old = 0;
  /** Resolved when `old` drops to 0: the resets waiting for the old lives' operations. */
  private resetWaiters: (() => void)[] = [];

  /** The device was activated with `queues` queues: each begins its first life. */
  activate(queues: number): void {
    this.lives = Array.from({ length: queues }, newLife);
  }

  /** A request of `queue` went to the backend; settle() it once the operation settles. */
  start(queue: DeviceQueue, head: number, status: number, usedLen: number, dataIn: GuestIo | undefined): PendingRequest {
    const life = this.lives[queue.index]!;
    this.count++;
    life.inFlight++;
    return { generation: this.generation, life, queue, head, status, usedLen, dataIn };
  }

  /**
   * The operation of `p` settled: its slot is free (a reset waiting for the last one completes).
   * Returns whether it is to be answered: no reset of the device or of its queue came in between.
   */
  settle(p: PendingRequest): boolean {
    this.count--;
    if (p.generation !== this.generation && --this.old === 0) {
      const waiters = this.resetWaiters;
      this.resetWaiters = [];
      for (const resolve of waiters) resolve();
    }
    if (--p.life.inFlight === 0 && p.life.ended) p.life.settled?.();
    return p.generation === this.generation && !p.life.ended;
  }

  /** Device reset: every operation outstanding is of an old life; the promise settles once they all have. */
  reset(): ResetCompletion {
    this.generation++;
    this.lives = [];
    this.old = this.count;
    if (this.old === 0) return undefined;
    return new Promise((resolve) => this.resetWaiters.push(resolve));
  }

  /**
   * Queue `index` reset: its operations' completions are dropped from now on, and the queue begins a
   * new life. The promise settles once that queue's operations all have.
   */
  resetQueue(index: number): ResetCompletion {
    const life = this.lives[index];
    if (life === undefined) return undefined;
    life.ended = true;
    this.lives[index] = newLife();
    if (life.inFlight === 0) return undefined;
    return new Promise((resolve) => (life.settled = resolve));
  }

  /** Whether queue `index` has a life (the device is active and has that queue). */
  has(index: number): boolean {
    return this.lives[index] !== undefined;
  }
}
