/**
 * The virtio-rng device model (spec 5.4 "Entropy Device"): one request queue; each chain's
 * device-writable buffers are filled with entropy in place and the used length says how much. It has
 * no feature bits and no configuration space.
 */

import { UsageError } from '../../errors.js';
import { VIRTIO_ID_RNG } from '../../spec/ids.js';
import { DRIVER_REQUIREMENTS as R } from '../../spec/driver-requirements.js';
import { checkQueueMaxSize } from '../../queue/ring-format.js';
import type { DescriptorChain, DeviceQueue } from '../../queue/types.js';
import type { ActivateContext, VirtioDevice, VirtioDeviceHost } from '../../core/virtio-device.js';
import { webCryptoEntropy, type EntropySource } from './entropy.js';
import { struct, type SnapshotStruct } from '../../snapshot/snapshot-value.js';

export interface RngDeviceOptions {
  /** Where the bytes come from. Default: Web Crypto. */
  readonly entropy?: EntropySource;
  /** Maximum size of the request queue (a power of two). Default 64. */
  readonly queueSize?: number;
  /**
   * Most bytes given per request (5.4.6.1 lets the device use less than the buffer), so that a guest
   * cannot make one notify generate unbounded entropy. Default 65536.
   */
  readonly maxBytesPerRequest?: number;
}

/** A virtio-rng device fed by an {@link EntropySource} (Web Crypto by default). */
export class RngDevice implements VirtioDevice {
  readonly deviceType = VIRTIO_ID_RNG;
  readonly deviceFeatures = 0n;
  readonly queueMaxSizes: readonly number[];
  readonly configSize = 0;

  private readonly entropy: EntropySource;
  private readonly maxBytes: number;
  private host: VirtioDeviceHost | undefined;
  private queue: DeviceQueue | null = null;
  private broken = false;

  constructor(options: RngDeviceOptions = {}) {
    const queueSize = options.queueSize ?? 64;
    checkQueueMaxSize('queueSize', queueSize);
    this.maxBytes = options.maxBytesPerRequest ?? 65536;
    if (!Number.isInteger(this.maxBytes) || this.maxBytes < 1)
      throw new UsageError(`maxBytesPerRequest must be a positive integer, got ${this.maxBytes}`);
    this.entropy = options.entropy ?? webCryptoEntropy;
    this.queueMaxSizes = [queueSize];
  }

  attach(host: VirtioDeviceHost): void {
    this.host = host;
  }

  /** No configuration space: never called by a conforming transport. */
  readConfig(): number {
    return 0;
  }

  writeConfig(): void {}

  activate(ctx: ActivateContext): void {
    this.queue = ctx.queues[0] ?? null;
  }

  queueNotify(index: number): void {
    const queue = this.queue;
    const host = this.host;
    if (index !== 0 || !queue || !host || this.broken) return;
    let pushed = false;
    try {
      // Bounded: each pass consumes one available chain, and the ring holds at most queue size.
      for (let chain = queue.pop(); chain; chain = queue.pop()) {
        queue.pushUsed(chain.head, this.fill(chain));
        pushed = true;
      }
    } catch (err) {
      this.broken = true;
      host.needsReset(err instanceof Error ? err : new Error(String(err)));
    }
    if (pushed) host.usedBuffers(0);
  }

  /** Requests are answered within the notify that pops them: the model holds no state of its own (docs/snapshots.md). */
  snapshot(): SnapshotStruct {
    return struct({});
  }

  /** See VirtioDevice.prepareRestore: nothing to check or apply. */
  prepareRestore(): () => void {
    return () => undefined;
  }

  reset(): void {
    this.queue = null;
    this.broken = false;
  }

  /** VIRTIO_F_RING_RESET: requests are answered within queueNotify, so none is in flight; forget the ring. */
  resetQueue(index: number): void {
    if (index === 0) this.queue = null;
  }

  /** VIRTIO_F_RING_RESET: the request queue is back, on a new ring. */
  enableQueue(queue: DeviceQueue): void {
    if (queue.index === 0) this.queue = queue;
  }

  /** Fill the chain's writable buffers in order, up to the per-request limit; returns the bytes written. */
  private fill(chain: DescriptorChain): number {
    if (chain.readable !== 0)
      this.host?.audit?.(R.entropyWritableOnly, `chain ${chain.head} has ${chain.readable} device-readable descriptors`);
    let written = 0;
    for (let i = chain.readable; i < chain.count && written < this.maxBytes; i++) {
      const n = Math.min(chain.len(i), this.maxBytes - written);
      if (n === 0) continue;
      this.entropy(chain.view(i).subarray(0, n));
      written += n;
    }
    return written;
  }
}
