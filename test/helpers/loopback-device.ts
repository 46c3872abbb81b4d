/**
 * A minimal virtio device model for transport tests: each chain's device-readable bytes are copied
 * into its device-writable buffers (as far as they fit) and the chain is returned with that length.
 * Device config is 8 bytes: a read-only le32 magic at 0 and a le32 scratch at 4 whose writes count
 * as a config change. Everything the transport does to it is recorded.
 */

import type { ActivateContext, ResetCompletion, VirtioDevice, VirtioDeviceHost } from '../../src/core/virtio-device.js';
import type { AccessSize } from '../../src/memory/access-size.js';
import type { DeviceQueue } from '../../src/queue/types.js';
import type { SharedMemoryRegion } from '../../src/core/shared-memory.js';

export const LOOPBACK_MAGIC = 0x4c4f4f50; // "LOOP"
export const LOOPBACK_CONFIG_SIZE = 8;
/** Device type used by default: not a real one of the spec's table (0x1040 + 63 = 0x107f). */
export const LOOPBACK_DEVICE_TYPE = 63;

export interface LoopbackOptions {
  readonly deviceType?: number;
  readonly deviceFeatures?: bigint;
  readonly queueMaxSizes?: readonly number[];
  /** Veto for FEATURES_OK (the device's acceptFeatures). */
  readonly acceptFeatures?: (features: bigint) => boolean;
  /** Implement the queue reset hooks (so that the transport offers VIRTIO_F_RING_RESET). */
  readonly queueReset?: boolean;
  /** Shared memory regions (2.10) the device presents. */
  readonly sharedMemoryRegions?: readonly SharedMemoryRegion[];
}

export class LoopbackDevice implements VirtioDevice {
  readonly deviceType: number;
  readonly deviceFeatures: bigint;
  readonly queueMaxSizes: readonly number[];
  readonly configSize = LOOPBACK_CONFIG_SIZE;
  readonly acceptFeatures?: (features: bigint) => boolean;
  readonly sharedMemoryRegions?: readonly SharedMemoryRegion[];
  host!: VirtioDeviceHost;
  scratch = 0;
  queues: readonly (DeviceQueue | null)[] = [];
  activations: ActivateContext[] = [];
  resets = 0;
  notifies: { index: number; data: number | undefined }[] = [];
  queueResets: number[] = [];
  resetQueue?: (index: number) => ResetCompletion;
  enableQueue?: (queue: DeviceQueue) => void;

  constructor(options: LoopbackOptions = {}) {
    this.deviceType = options.deviceType ?? LOOPBACK_DEVICE_TYPE;
    this.deviceFeatures = options.deviceFeatures ?? 0n;
    this.queueMaxSizes = options.queueMaxSizes ?? [256, 16];
    if (options.acceptFeatures) this.acceptFeatures = options.acceptFeatures;
    if (options.sharedMemoryRegions) this.sharedMemoryRegions = options.sharedMemoryRegions;
    if (options.queueReset) {
      this.resetQueue = (index) => {
        this.queueResets.push(index);
        this.queues = this.queues.map((q, i) => (i === index ? null : q));
      };
      this.enableQueue = (queue) => {
        this.queues = this.queues.map((q, i) => (i === queue.index ? queue : q));
      };
    }
  }

  attach(host: VirtioDeviceHost): void {
    this.host = host;
  }

  readConfig(offset: number, size: AccessSize): number {
    const bytes = new Uint8Array(LOOPBACK_CONFIG_SIZE);
    const dv = new DataView(bytes.buffer);
    dv.setUint32(0, LOOPBACK_MAGIC, true);
    dv.setUint32(4, this.scratch, true);
    let v = 0;
    for (let i = size - 1; i >= 0; i--) v = v * 256 + bytes[offset + i]!;
    return v;
  }

  writeConfig(offset: number, size: AccessSize, value: number): void {
    if (offset < 4) return;
    const bytes = new Uint8Array(4);
    new DataView(bytes.buffer).setUint32(0, this.scratch, true);
    for (let i = 0; i < size && offset - 4 + i < 4; i++) bytes[offset - 4 + i] = (value >>> (8 * i)) & 0xff;
    this.scratch = new DataView(bytes.buffer).getUint32(0, true);
    this.host.configChanged();
  }

  activate(ctx: ActivateContext): void {
    this.activations.push(ctx);
    this.queues = ctx.queues;
  }

  queueNotify(index: number, data?: number): void {
    this.notifies.push({ index, data });
    const q = this.queues[index];
    if (!q) return;
    let pushed = false;
    for (let chain = q.pop(); chain !== null; chain = q.pop()) {
      const input: Uint8Array[] = [];
      for (let i = 0; i < chain.readable; i++) input.push(chain.view(i));
      let src = 0;
      let srcOff = 0;
      let written = 0;
      for (let i = chain.readable; i < chain.count && src < input.length; i++) {
        const dst = chain.view(i);
        let dstOff = 0;
        while (dstOff < dst.length && src < input.length) {
          const from = input[src]!;
          const n = Math.min(dst.length - dstOff, from.length - srcOff);
          dst.set(from.subarray(srcOff, srcOff + n), dstOff);
          dstOff += n;
          srcOff += n;
          written += n;
          if (srcOff === from.length) {
            src++;
            srcOff = 0;
          }
        }
      }
      q.pushUsed(chain.head, written);
      pushed = true;
    }
    if (pushed) this.host.usedBuffers(index);
  }

  /** Reset clears the scratch register, which is a config change (reported like any other). */
  reset(): void {
    this.resets++;
    this.queues = [];
    this.scratch = 0;
    this.host.configChanged();
  }
}
