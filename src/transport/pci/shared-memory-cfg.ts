/**
 * Shared memory regions on the PCI transport, device side (spec 4.1.4.7): the device model's regions
 * (core/shared-memory.ts) laid out in one memory BAR, one VIRTIO_PCI_CAP_SHARED_MEMORY_CFG capability
 * (struct virtio_pci_cap64, cap.id = shmid) per region.
 *
 * Layout: BAR2 (slots 2 and 3), prefetchable memory, 64-bit unless the machine cannot reach above
 * 4 GiB. BAR0 (legacy), BAR1 (MSI-X) and BAR4 (modern) are taken, and QEMU's virtio-gpu puts its
 * host-visible region in a BAR of its own too. Regions follow one another in declaration order, each
 * at an offset aligned to its size rounded up to a power of two (at least 4 KiB), so that a region
 * can be mapped with pages as large as itself; the BAR is the power of two that covers them all.
 * Offsets and lengths of 4 GiB and more go into offset_hi and length_hi.
 */

import { UsageError } from '../../errors.js';
import type { SharedMemoryRegion } from '../../core/shared-memory.js';
import { RegionMap, type BarRegion } from '../../pci/bar-region.js';
import type { Capability, ConfigSpace } from '../../pci/config-space.js';
import type { BarDescriptor } from '../../pci/function.js';
import { splitU64 } from '../../memory/guest-memory.js';
import { PCI_CAP_ID_VNDR } from '../../spec/pci.js';
import {
  VIRTIO_PCI_CAP64_LENGTH_HI,
  VIRTIO_PCI_CAP64_OFFSET_HI,
  VIRTIO_PCI_CAP64_SIZE,
  VIRTIO_PCI_CAP_BAR,
  VIRTIO_PCI_CAP_CFG_TYPE,
  VIRTIO_PCI_CAP_ID,
  VIRTIO_PCI_CAP_LEN,
  VIRTIO_PCI_CAP_LENGTH,
  VIRTIO_PCI_CAP_OFFSET,
  VIRTIO_PCI_CAP_SHARED_MEMORY_CFG,
} from '../../spec/virtio-pci.js';

/** The BAR the shared memory regions are placed in. */
export const SHARED_MEMORY_BAR = 2;
/** The smallest alignment of a region in the BAR (one page). */
export const SHARED_MEMORY_MIN_ALIGN = 0x1000;
/** cap.id is a u8 (4.1.4). */
const SHMID_MAX = 0xff;
/** The largest 32-bit memory BAR the PCI hole can be expected to hold. */
const BAR32_MAX_SIZE = 2 ** 31;

/** The smallest power of two at or above `n` (n >= 1). */
function powerOfTwoAtLeast(n: number): number {
  return 2 ** Math.ceil(Math.log2(n));
}

/** A region at its offset in the shared memory BAR. */
export interface PlacedRegion {
  readonly region: SharedMemoryRegion;
  readonly offset: number;
}

/** Where each region goes and how large the BAR is; UsageError for a region the transport cannot carry. */
export function sharedMemoryLayout(regions: readonly SharedMemoryRegion[]): { readonly placed: PlacedRegion[]; readonly barSize: number } {
  const ids = new Set<number>();
  const placed: PlacedRegion[] = [];
  let end = 0;
  for (const region of regions) {
    const { id, size } = region;
    if (!Number.isInteger(id) || id < 0 || id > SHMID_MAX)
      throw new UsageError(`shared memory id ${id} does not fit cap.id (0..${SHMID_MAX})`);
    // 4.1.4.7.1: cap.id is unique for the device.
    if (ids.has(id)) throw new UsageError(`shared memory id ${id} is declared twice`);
    if (!Number.isSafeInteger(size) || size <= 0)
      throw new UsageError(`shared memory region ${id}: size ${size} is not a positive byte count`);
    ids.add(id);
    const align = Math.max(SHARED_MEMORY_MIN_ALIGN, powerOfTwoAtLeast(size));
    const offset = Math.ceil(end / align) * align;
    placed.push({ region, offset });
    end = offset + size;
  }
  return { placed, barSize: Math.max(SHARED_MEMORY_MIN_ALIGN, powerOfTwoAtLeast(end)) };
}

/** The shared memory regions of one function: their BAR contents and their capabilities. */
export class SharedMemoryCfg {
  /** What BAR2 serves: each region at its offset, holes read 0. */
  readonly region: BarRegion;
  readonly bar: BarDescriptor;
  readonly placed: readonly PlacedRegion[];

  /**
   * Lay out `regions`; `is64` false keeps the BAR 32-bit (a machine that cannot reach above 4 GiB),
   * which then must be at most 2 GiB. Call {@link addCapabilities} once the config space exists.
   */
  constructor(regions: readonly SharedMemoryRegion[], is64: boolean) {
    const { placed, barSize } = sharedMemoryLayout(regions);
    if (!is64 && barSize > BAR32_MAX_SIZE)
      throw new UsageError(`shared memory regions need a ${barSize}-byte BAR: more than a 32-bit BAR holds (${BAR32_MAX_SIZE})`);
    this.placed = placed;
    this.bar = { kind: 'memory', size: barSize, is64, prefetchable: true };
    const map = new RegionMap();
    for (const p of placed) map.add(p.offset, p.region.size, p.region);
    this.region = map;
  }

  /** Add one struct virtio_pci_cap64 per region to `config`, in declaration order (read-only, as every virtio capability). */
  addCapabilities(config: ConfigSpace): Capability[] {
    return this.placed.map(({ region, offset }) => {
      const cap = config.addCapability({ id: PCI_CAP_ID_VNDR, length: VIRTIO_PCI_CAP64_SIZE });
      const [offsetLo, offsetHi] = splitU64(offset);
      const [lengthLo, lengthHi] = splitU64(region.size);
      cap.set(VIRTIO_PCI_CAP_LEN, 1, VIRTIO_PCI_CAP64_SIZE);
      cap.set(VIRTIO_PCI_CAP_CFG_TYPE, 1, VIRTIO_PCI_CAP_SHARED_MEMORY_CFG);
      cap.set(VIRTIO_PCI_CAP_BAR, 1, SHARED_MEMORY_BAR);
      cap.set(VIRTIO_PCI_CAP_ID, 1, region.id);
      cap.set(VIRTIO_PCI_CAP_OFFSET, 4, offsetLo);
      cap.set(VIRTIO_PCI_CAP_LENGTH, 4, lengthLo);
      cap.set(VIRTIO_PCI_CAP64_OFFSET_HI, 4, offsetHi);
      cap.set(VIRTIO_PCI_CAP64_LENGTH_HI, 4, lengthHi);
      return cap;
    });
  }
}
