/**
 * Shared memory regions (spec 2.10): memory the device allocates and presents to the driver, each
 * region named by a device-specific `shmid`. A device model declares its regions here in transport
 * words; the transport decides where the driver finds them (PCI: VIRTIO_PCI_CAP_SHARED_MEMORY_CFG
 * capabilities and a BAR, 4.1.4.7). The device model keeps the region and reads or writes it directly;
 * the transport serves the driver's accesses through `read`/`write`.
 *
 *   const shm = new SharedMemory(1, 0x10000);        // shmid 1, 64 KiB
 *   device.sharedMemoryRegions = [shm];               // see VirtioDevice.sharedMemoryRegions
 *   shm.bytes[0] = 0x2a;                              // the driver reads 0x2a at the region's start
 */

import { UsageError } from '../errors.js';
import type { AccessSize } from '../memory/access-size.js';

/**
 * One region as the transport serves it. `size` is in bytes; accesses arrive with
 * offset + size <= region size (the transport checks), little-endian.
 */
export interface SharedMemoryRegion {
  /** The region's shmid (2.10); the PCI transport carries it in cap.id, so 0..255 there. */
  readonly id: number;
  readonly size: number;
  read(offset: number, size: AccessSize): number;
  write(offset: number, size: AccessSize, value: number): void;
}

/** The largest region {@link SharedMemory} backs with an ArrayBuffer (1 GiB); larger regions need their own backing. */
export const SHARED_MEMORY_MAX_ARRAY_SIZE = 0x4000_0000;

/** A region backed by bytes in this process, which the device model reads and writes as {@link bytes}. */
export class SharedMemory implements SharedMemoryRegion {
  readonly bytes: Uint8Array;
  private readonly view: DataView;

  constructor(
    readonly id: number,
    readonly size: number,
  ) {
    if (!Number.isSafeInteger(size) || size <= 0 || size > SHARED_MEMORY_MAX_ARRAY_SIZE)
      throw new UsageError(`shared memory region ${id}: size ${size} must be 1..${SHARED_MEMORY_MAX_ARRAY_SIZE} bytes`);
    this.bytes = new Uint8Array(size);
    this.view = new DataView(this.bytes.buffer);
  }

  read(offset: number, size: AccessSize): number {
    if (size === 1) return this.view.getUint8(offset);
    return size === 2 ? this.view.getUint16(offset, true) : this.view.getUint32(offset, true);
  }

  write(offset: number, size: AccessSize, value: number): void {
    if (size === 1) this.view.setUint8(offset, value);
    else if (size === 2) this.view.setUint16(offset, value, true);
    else this.view.setUint32(offset, value, true);
  }
}
