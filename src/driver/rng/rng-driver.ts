/**
 * The virtio-rng driver (spec 5.4) on the driver core: offers the device writable buffers and
 * collects what it fills. The device may return fewer bytes than offered (5.4.6.1), so a read
 * repeats until it has all it asked for.
 */

import { DeviceFaultError, UsageError } from '../../errors.js';
import { featureSet, VIRTIO_F_EVENT_IDX, VIRTIO_F_RING_PACKED } from '../../spec/features.js';
import { VIRTIO_ID_RNG } from '../../spec/ids.js';
import type { Bdf, PciBus } from '../../bus/pci-bus.js';
import type { DmaBuffer } from '../../memory/dma.js';
import type { DriverQueue } from '../driver-queue.js';
import { VirtioDriver, type VirtioDriverOptions } from '../virtio-driver.js';

export interface RngDriverOptions extends VirtioDriverOptions {
  /** Bytes offered to the device per request (default 4096). */
  readonly chunkSize?: number;
}

/** A virtio-rng device driven over a {@link PciBus}: open it with {@link RngDriver.open}. */
export class RngDriver {
  /** Reads run one at a time: each owns the one DMA buffer while its request is out. */
  private reading: Promise<unknown> = Promise.resolve();

  private constructor(
    /** The driver core this runs on. */
    readonly virtio: VirtioDriver,
    private readonly queue: DriverQueue<number>,
    private readonly buffer: DmaBuffer,
  ) {}

  /** Probe the virtio-rng function `fn`, negotiate, set up the request queue and set DRIVER_OK. */
  static async open(bus: PciBus, fn: Bdf, options: RngDriverOptions = {}): Promise<RngDriver> {
    const chunk = options.chunkSize ?? 4096;
    if (!Number.isInteger(chunk) || chunk < 1 || chunk > 0xffff_ffff)
      throw new UsageError(`chunkSize ${chunk} must be a positive 32-bit integer`);
    const virtio = await VirtioDriver.open(bus, fn, { ...options, deviceType: VIRTIO_ID_RNG });
    try {
      await virtio.negotiate(featureSet(VIRTIO_F_EVENT_IDX, VIRTIO_F_RING_PACKED));
      const queue = await virtio.setupQueue<number>(0);
      await virtio.driverOk();
      return new RngDriver(virtio, queue, bus.dma.alloc(chunk, 16));
    } catch (err) {
      await virtio.close().catch(() => undefined);
      throw err;
    }
  }

  /** `n` bytes of entropy from the device. */
  read(n: number): Promise<Uint8Array> {
    if (!Number.isSafeInteger(n) || n < 0) return Promise.reject(new UsageError(`cannot read ${n} bytes`));
    const result = this.reading.then(() => this.readNow(n));
    this.reading = result.catch(() => undefined);
    return result;
  }

  /** Reset the device and release the DMA buffer. */
  async close(): Promise<void> {
    await this.virtio.close();
    await this.reading;
    this.virtio.bus.dma.free(this.buffer);
  }

  private async readNow(n: number): Promise<Uint8Array> {
    const out = new Uint8Array(n);
    const buf = this.buffer;
    let got = 0;
    // Each round yields at least one byte or throws (an empty answer is refused below), so this ends.
    while (got < n) {
      const len = Math.min(buf.bytes.byteLength, n - got);
      this.queue.submit([], [{ addr: buf.addr, len }], got);
      await this.queue.kick();
      const [done] = await this.queue.waitUsed();
      if (!done || done.len === 0)
        throw new DeviceFaultError(
          'ERR_DEVICE_USED_LEN',
          'virtio-rng: the device returned a buffer with no bytes (5.4.6.1 asks for at least one)',
        );
      // The ring refreshed the bytes the device wrote (up to the used len) from a remote bus.
      out.set(buf.bytes.subarray(0, done.len), got);
      got += done.len;
    }
    return out;
  }
}
