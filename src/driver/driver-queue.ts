/**
 * A driver-side virtqueue as device drivers use it: submit buffers, kick the device, wait for used
 * buffers. The ring itself (a {@link DriverRing}, of the negotiated format) does descriptor
 * bookkeeping and checks what the device returns; this adds the notification and the waiting, and every wait has a timeout.
 */

import { DeviceFaultError, UsageError } from '../errors.js';
import type { DmaSpan } from '../memory/dma.js';
import type { DriverRing, UsedBuffer } from '../queue/types.js';

export type { DmaSpan };
/** One used buffer: the token given to submit and the bytes the device wrote. */
export type Completion<T> = UsedBuffer<T>;

/** What the queue needs of the driver core. */
export interface QueueHost {
  /**
   * Notify the device that queue `index` has new buffers; `next` is the ring's
   * {@link DriverRing.notificationData}, sent when VIRTIO_F_NOTIFICATION_DATA was negotiated.
   */
  notify(index: number, next: number): Promise<void>;
  /** VIRTIO_F_SUSPEND: the device is suspended; no buffer may be made available (3.4.1). */
  readonly suspended: boolean;
  /** Set once the device is unusable (DEVICE_NEEDS_RESET, bus failure, closed): every wait throws it. */
  readonly fault: Error | undefined;
  /** Also wake waiters this often, for buses that cannot deliver interrupts; undefined = interrupts only. */
  readonly pollIntervalMs: number | undefined;
  /** The error for a wait that timed out (the core checks the device status to explain it). */
  timeoutError(index: number, timeoutMs: number): Promise<Error>;
  /** VIRTIO_F_RING_RESET: reset queue `index` on the device and wait until the reset completed. */
  resetQueue(index: number): Promise<void>;
  /** Set queue `index` up again after its reset on a new ring of `size` (undefined: the largest allowed); returns the ring. */
  enableRing<T>(index: number, size: number | undefined): Promise<DriverRing<T>>;
}

/**
 * One queue of a live device: {@link submit} requests, {@link kick}, then {@link waitUsed}. Created by
 * VirtioDriver.setupQueue; `T` is whatever token the device driver wants back with each completion.
 */
export class DriverQueue<T = unknown> {
  private signalled = false;
  private wake: (() => void) | undefined;
  /** Set from the start of a queue reset until the queue is enabled again: the queue is not usable. */
  private resetState: 'resetting' | 'reset' | undefined;

  constructor(
    /** Queue index on the device. */
    readonly index: number,
    private ring: DriverRing<T>,
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
    this.checkUsable();
    return this.ring.add(out, inn, token);
  }

  /** Publish submitted requests and notify the device if it asked for notifications. */
  async kick(): Promise<void> {
    this.checkUsable();
    if (this.host.suspended)
      throw new UsageError(`queue ${this.index}: the device is suspended (3.4.1: no buffers made available until it resumes)`);
    // In-process (coherent DMA) the ring publishes at once: one await fewer per round.
    if (this.ring.coherent ? this.ring.publishSync() : await this.ring.publish())
      await this.host.notify(this.index, this.ring.notificationData());
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
      this.checkUsable();
      this.signalled = false;
      const used = this.ring.coherent ? this.ring.reapSync() : await this.ring.reap();
      if (used.length > 0) return used;
      deadline ??= Date.now() + timeoutMs;
      const remaining = deadline - Date.now();
      if (remaining <= 0) throw await this.host.timeoutError(this.index, timeoutMs);
      if (!this.signalled) await this.sleep(Math.min(remaining, this.host.pollIntervalMs ?? remaining));
    }
  }

  /** Whether the ring's memory is the device's own (in-process): {@link reapSync} works then. */
  get coherent(): boolean {
    return this.ring.coherent;
  }

  /** {@link reap} without a promise, for coherent DMA only (UsageError otherwise). */
  reapSync(): Completion<T>[] {
    if (this.host.fault !== undefined) throw this.host.fault;
    this.checkUsable();
    return this.ring.reapSync();
  }

  /** Reap whatever the device has used, without waiting. */
  reap(): Promise<Completion<T>[]> {
    if (this.host.fault !== undefined) return Promise.reject(this.host.fault);
    if (this.resetState !== undefined) return Promise.reject(this.resetError());
    return this.ring.reap();
  }

  /**
   * VIRTIO_F_RING_RESET (2.6.1): reset this queue alone while the device's other queues carry on.
   * From the call on, submit, kick and waits throw UsageError (waiters are woken to see it). Once the
   * device reports the reset done (queue_reset reads 0 again) the device no longer touches the
   * ring: the chains still in flight are forgotten, their tokens returned (the device will never
   * complete them), and the ring memory is released. Then {@link reenable}. If the device does not
   * finish the reset (DeviceFaultError ERR_DEVICE_TIMEOUT) the ring is kept: the device may still
   * write it.
   */
  async reset(): Promise<T[]> {
    if (this.resetState !== undefined) throw new UsageError(`queue ${this.index} is already reset`);
    this.resetState = 'resetting';
    this.signal();
    try {
      await this.host.resetQueue(this.index);
    } catch (error) {
      // A UsageError comes before anything reached the device (feature not negotiated, wrong step).
      if (error instanceof UsageError) this.resetState = undefined;
      throw error;
    }
    const tokens = this.ring.detachUnused();
    await this.ring.idle();
    this.ring.destroy();
    this.resetState = 'reset';
    return tokens;
  }

  /**
   * After {@link reset}: set the queue up again on a new ring, of `options.size` or of the size it
   * had (2.6.1.2: configured as at first set-up, optionally with other parameters), and enable it.
   */
  async reenable(options: { readonly size?: number } = {}): Promise<void> {
    if (this.resetState !== 'reset') throw new UsageError(`queue ${this.index} can be re-enabled only after a completed reset`);
    const ring = await this.host.enableRing<T>(this.index, options.size ?? this.ring.size);
    this.ring = ring;
    this.resetState = undefined;
  }

  private checkUsable(): void {
    if (this.resetState !== undefined) throw this.resetError();
  }
  private resetError(): UsageError {
    return new UsageError(`queue ${this.index} is reset: re-enable it first`);
  }

  /** The core calls this when the queue's interrupt (or a fault) arrives. */
  signal(): void {
    this.signalled = true;
    this.wake?.();
  }

  /** Resolves once no publish or reap of the ring is running; call it before {@link destroy}. */
  idle(): Promise<void> {
    return this.ring.idle();
  }

  /** After the device has been reset: give the ring memory back (the queue is unusable afterwards). */
  destroy(): void {
    // A completed queue reset has released the ring already.
    if (this.resetState !== 'reset') this.ring.destroy();
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

/** How long one idle wait for used buffers lasts: a quiet queue (no traffic on a link, a silent port) is no timeout. */
export const IDLE_WAIT_SLICE_MS = 60_000;

/**
 * The used buffers of `queue` within one idle slice, or undefined when none came: the queue was
 * quiet, not faulty, and a receive loop simply waits again. Faults reject as {@link DriverQueue.waitUsed}'s do.
 */
export async function waitUsedOrIdle<T>(queue: DriverQueue<T>): Promise<Completion<T>[] | undefined> {
  try {
    return await queue.waitUsed(IDLE_WAIT_SLICE_MS);
  } catch (err) {
    if (err instanceof DeviceFaultError && err.code === 'ERR_DEVICE_TIMEOUT') return undefined;
    throw err;
  }
}
