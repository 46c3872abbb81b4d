/**
 * A driver-side virtqueue as device drivers use it: submit buffers, kick the device, wait for used
 * buffers. The ring itself (a {@link DriverRing}, of the negotiated format) does descriptor
 * bookkeeping and checks what the device returns; this adds the notification and the waiting, and every wait has a timeout.
 */

import type { DmaSpan } from '../memory/dma.js';
import type { DriverRing, UsedBuffer } from '../queue/types.js';

export type { DmaSpan };
/** One used buffer: the token given to submit and the bytes the device wrote. */
export type Completion<T> = UsedBuffer<T>;

/** What the queue needs of the driver core. */
export interface QueueHost {
  /** Notify the device that queue `index` has new buffers. */
  notify(index: number): Promise<void>;
  /** Set once the device is unusable (DEVICE_NEEDS_RESET, bus failure, closed): every wait throws it. */
  readonly fault: Error | undefined;
  /** Also wake waiters this often, for buses that cannot deliver interrupts; undefined = interrupts only. */
  readonly pollIntervalMs: number | undefined;
  /** The error for a wait that timed out (the core checks the device status to explain it). */
  timeoutError(index: number, timeoutMs: number): Promise<Error>;
}

/**
 * One queue of a live device: {@link submit} requests, {@link kick}, then {@link waitUsed}. Created by
 * VirtioDriver.setupQueue; `T` is whatever token the device driver wants back with each completion.
 */
export class DriverQueue<T = unknown> {
  private signalled = false;
  private wake: (() => void) | undefined;

  constructor(
    /** Queue index on the device. */
    readonly index: number,
    private readonly ring: DriverRing<T>,
    private readonly host: QueueHost,
    /** Default for {@link waitUsed}. */
    private readonly defaultTimeoutMs: number,
  ) {}

  /** Queue size in descriptors. */
  get size(): number {
    return this.ring.size;
  }
  /** Descriptors free for new chains. */
  get numFree(): number {
    return this.ring.numFree;
  }

  /**
   * Queue a request: `out` buffers the device reads, then `inn` buffers it writes. Not visible to
   * the device until {@link kick}. Throws QueueFullError when descriptors run out.
   */
  submit(out: readonly DmaSpan[], inn: readonly DmaSpan[], token: T): number {
    return this.ring.add(out, inn, token);
  }

  /** Publish submitted requests and notify the device if it asked for notifications. */
  async kick(): Promise<void> {
    // In-process (coherent DMA) the ring publishes at once: one await fewer per round.
    if (this.ring.coherent ? this.ring.publishSync() : await this.ring.publish()) await this.host.notify(this.index);
  }

  /**
   * Wait until the device has used at least one buffer and return all used so far. Wakes on the
   * queue's interrupt; throws DeviceFaultError ERR_DEVICE_TIMEOUT (or ERR_DEVICE_NEEDS_RESET when
   * that is why) after `timeoutMs`.
   */
  async waitUsed(timeoutMs = this.defaultTimeoutMs): Promise<Completion<T>[]> {
    // Taken when the first look finds nothing: often the device has already answered.
    let deadline: number | undefined;
    for (;;) {
      if (this.host.fault !== undefined) throw this.host.fault;
      this.signalled = false;
      const used = this.ring.coherent ? this.ring.reapSync() : await this.ring.reap();
      if (used.length > 0) return used;
      deadline ??= Date.now() + timeoutMs;
      const remaining = deadline - Date.now();
      if (remaining <= 0) throw await this.host.timeoutError(this.index, timeoutMs);
      if (!this.signalled) await this.sleep(Math.min(remaining, this.host.pollIntervalMs ?? remaining));
    }
  }

  /** Reap whatever the device has used, without waiting. */
  reap(): Promise<Completion<T>[]> {
    if (this.host.fault !== undefined) return Promise.reject(this.host.fault);
    return this.ring.reap();
  }

  /** The core calls this when the queue's interrupt (or a fault) arrives. */
  signal(): void {
    this.signalled = true;
    this.wake?.();
  }

  /** After the device has been reset: give the ring memory back (the queue is unusable afterwards). */
  destroy(): void {
    this.ring.destroy();
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wake = done;
    });
  }
}
