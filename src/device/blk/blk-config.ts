/**
 * virtio-blk's device configuration layout (spec 5.2.4, struct virtio_blk_config) as the device's
 * options fix it, and its one writable field, `writeback`: the cache mode (5.2.5).
 */

import { UsageError } from '../../errors.js';
import { hasFeature } from '../../spec/features.js';
import {
  VIRTIO_BLK_CONFIG_ALIGNMENT_OFFSET,
  VIRTIO_BLK_CONFIG_BLK_SIZE,
  VIRTIO_BLK_CONFIG_CAPACITY,
  VIRTIO_BLK_CONFIG_DISCARD_SECTOR_ALIGNMENT,
  VIRTIO_BLK_CONFIG_MAX_DISCARD_SECTORS,
  VIRTIO_BLK_CONFIG_MAX_DISCARD_SEG,
  VIRTIO_BLK_CONFIG_MAX_WRITE_ZEROES_SECTORS,
  VIRTIO_BLK_CONFIG_MAX_WRITE_ZEROES_SEG,
  VIRTIO_BLK_CONFIG_MIN_IO_SIZE,
  VIRTIO_BLK_CONFIG_NUM_QUEUES,
  VIRTIO_BLK_CONFIG_OPT_IO_SIZE,
  VIRTIO_BLK_CONFIG_PHYSICAL_BLOCK_EXP,
  VIRTIO_BLK_CONFIG_SEG_MAX,
  VIRTIO_BLK_CONFIG_SIZE,
  VIRTIO_BLK_CONFIG_SIZE_MAX,
  VIRTIO_BLK_CONFIG_WRITEBACK,
  VIRTIO_BLK_F_CONFIG_WCE,
  VIRTIO_BLK_F_FLUSH,
  VIRTIO_BLK_SECTOR_SIZE,
} from '../../spec/blk.js';
import { splitU64 } from '../../memory/guest-memory.js';
import type { AccessSize } from '../../memory/access-size.js';
import { ConfigBytes } from '../config-bytes.js';

/** struct virtio_blk_topology, in the spec's units. */
export interface BlkTopology {
  /** log2 of logical blocks per physical block. */
  readonly physicalBlockExp: number;
  /** Offset of the first aligned logical block. */
  readonly alignmentOffset: number;
  /** Suggested minimum I/O size, in logical blocks. */
  readonly minIoSize: number;
  /** Optimal (suggested maximum) I/O size, in logical blocks. */
  readonly optIoSize: number;
}

/** The values of the configuration space, each checked by {@link BlkConfig} (BlkDeviceOptions says what each means). */
export interface BlkConfigValues {
  /** Disk size in 512-byte sectors. */
  readonly capacity: number;
  readonly numQueues: number;
  readonly queueSize: number;
  readonly blkSize: number;
  readonly sizeMax: number;
  readonly topology: BlkTopology | undefined;
  readonly maxDiscardSectors: number;
  readonly maxDiscardSeg: number;
  /** The cache mode after reset: true = writeback. */
  readonly writeback: boolean;
}

/** The configuration space of one device, with the cache mode it applies. */
export class BlkConfig {
  private readonly bytes = new ConfigBytes(VIRTIO_BLK_CONFIG_SIZE);
  private readonly defaultWriteback: boolean;

  /** Throws UsageError for a value the field cannot hold or the spec forbids. */
  constructor(v: BlkConfigValues) {
    checkInt('blkSize', v.blkSize, VIRTIO_BLK_SECTOR_SIZE, 0x8000_0000);
    if ((v.blkSize & (v.blkSize - 1)) !== 0) throw new UsageError(`blkSize ${v.blkSize} is not a power of two`);
    checkInt('sizeMax', v.sizeMax, 1, 0xffff_ffff);
    checkInt('maxDiscardSectors', v.maxDiscardSectors, 1, 0xffff_ffff);
    checkInt('maxDiscardSeg', v.maxDiscardSeg, 1, 0xffff_ffff);
    this.defaultWriteback = v.writeback;
    const c = this.bytes;
    const [capacityLo, capacityHi] = splitU64(v.capacity);
    c.set32(VIRTIO_BLK_CONFIG_CAPACITY, capacityLo);
    c.set32(VIRTIO_BLK_CONFIG_CAPACITY + 4, capacityHi);
    c.set32(VIRTIO_BLK_CONFIG_SIZE_MAX, v.sizeMax);
    // Two descriptors of every chain carry the header and the status byte.
    c.set32(VIRTIO_BLK_CONFIG_SEG_MAX, v.queueSize - 2);
    c.set32(VIRTIO_BLK_CONFIG_BLK_SIZE, v.blkSize);
    if (v.topology) {
      const t = v.topology;
      checkInt('topology.physicalBlockExp', t.physicalBlockExp, 0, 0xff);
      checkInt('topology.alignmentOffset', t.alignmentOffset, 0, 0xff);
      checkInt('topology.minIoSize', t.minIoSize, 0, 0xffff);
      checkInt('topology.optIoSize', t.optIoSize, 0, 0xffff_ffff);
      c.set8(VIRTIO_BLK_CONFIG_PHYSICAL_BLOCK_EXP, t.physicalBlockExp);
      c.set8(VIRTIO_BLK_CONFIG_ALIGNMENT_OFFSET, t.alignmentOffset);
      c.set16(VIRTIO_BLK_CONFIG_MIN_IO_SIZE, t.minIoSize);
      c.set32(VIRTIO_BLK_CONFIG_OPT_IO_SIZE, t.optIoSize);
    }
    c.set16(VIRTIO_BLK_CONFIG_NUM_QUEUES, v.numQueues);
    c.set32(VIRTIO_BLK_CONFIG_MAX_DISCARD_SECTORS, v.maxDiscardSectors);
    c.set32(VIRTIO_BLK_CONFIG_MAX_DISCARD_SEG, v.maxDiscardSeg);
    c.set32(VIRTIO_BLK_CONFIG_DISCARD_SECTOR_ALIGNMENT, v.blkSize / VIRTIO_BLK_SECTOR_SIZE);
    c.set32(VIRTIO_BLK_CONFIG_MAX_WRITE_ZEROES_SECTORS, v.maxDiscardSectors);
    c.set32(VIRTIO_BLK_CONFIG_MAX_WRITE_ZEROES_SEG, v.maxDiscardSeg);
    // write_zeroes_may_unmap stays 0: no backend deallocates.
    this.resetWriteback();
  }

  read(offset: number, size: AccessSize): number {
    return this.bytes.read(offset, size);
  }

  /**
   * A driver's write: only `writeback` is writable (5.2.5), and only with CONFIG_WCE in `features`
   * (the negotiated features, or the offered ones before FEATURES_OK: see BlkDevice.writeConfig).
   * Other writes are ignored.
   */
  write(offset: number, size: AccessSize, value: number, features: bigint): void {
    if (offset !== VIRTIO_BLK_CONFIG_WRITEBACK || size !== 1) return;
    if (!hasFeature(features, VIRTIO_BLK_F_CONFIG_WCE)) return;
    this.bytes.set8(VIRTIO_BLK_CONFIG_WRITEBACK, value & 1);
  }

  /**
   * The cache mode after reset (5.2.5 allows either). A legacy driver may read it before the device
   * knows any of its features (5.2.5.2), so it cannot depend on them.
   */
  resetWriteback(): void {
    this.setWriteback(this.defaultWriteback);
  }

  /**
   * The cache mode for the negotiated features. 5.2.5.1: with CONFIG_WCE but not FLUSH, writeback
   * MUST start at 0; without CONFIG_WCE the cache is writeback exactly when FLUSH was negotiated
   * (5.2.6.2, case 1 makes writes stable otherwise).
   */
  negotiateWriteback(features: bigint): void {
    const flush = hasFeature(features, VIRTIO_BLK_F_FLUSH);
    const wce = hasFeature(features, VIRTIO_BLK_F_CONFIG_WCE);
    this.setWriteback(flush && (this.defaultWriteback || !wce));
  }

  /** The cache mode as a snapshot gives it back. */
  setWriteback(writeback: boolean): void {
    this.bytes.set8(VIRTIO_BLK_CONFIG_WRITEBACK, writeback ? 1 : 0);
  }

  /** Writes must be stable when their completion is reported (writethrough cache). */
  get writethrough(): boolean {
    return this.bytes.read(VIRTIO_BLK_CONFIG_WRITEBACK, 1) === 0;
  }
}

/** UsageError unless `value` is an integer in [min, max]. */
export function checkInt(name: string, value: number, min: number, max: number): void {
  if (!Number.isInteger(value) || value < min || value > max)
    throw new UsageError(`${name} must be an integer in [${min}, ${max}], got ${value}`);
}
