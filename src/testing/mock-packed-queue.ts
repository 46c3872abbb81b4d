/**
 * A packed virtqueue (spec 2.8) built in guest memory by name: the sibling of MockQueue, with the
 * same driver operations (`addChain`, `readUsed`, `readWritten`, `deviceQueue`) so that device-model
 * tests run on either format, and raw pokes for hostile rings (`publish`, `setDesc`,
 * `setDriverEvent`). The driver side follows 2.8.21: descriptors written in ring order with AVAIL
 * and USED set from the Driver Ring Wrap Counter, the buffer id in the last descriptor of a chain,
 * the first descriptor's flags written last; used descriptors are read at the driver's used
 * position, which then skips the ring descriptors of that buffer's chain (2.8.6).
 */

import { PackedQueue } from '../queue/packed/device-ring.js';
import { PACKED_RING } from '../queue/ring-format.js';
import { deviceRing } from '../queue/rings.js';
import type { DeviceQueue } from '../queue/types.js';
import { VIRTIO_F_EVENT_IDX, VIRTIO_F_INDIRECT_DESC, VIRTIO_F_RING_PACKED, bit } from '../spec/features.js';
import {
  PVIRTQ_DESC_ADDR,
  PVIRTQ_DESC_FLAGS,
  PVIRTQ_DESC_ID,
  PVIRTQ_DESC_LEN,
  PVIRTQ_DESC_SIZE,
  PVIRTQ_EVENT_DESC,
  PVIRTQ_EVENT_FLAGS,
  PVIRTQ_EVENT_SUPPRESS_SIZE,
  RING_EVENT_OFF_MASK,
  RING_EVENT_WRAP_SHIFT,
  VIRTQ_DESC_F_AVAIL,
  VIRTQ_DESC_F_USED,
  packedDescRingSize,
} from '../spec/packed-ring.js';
import { VIRTQ_DESC_F_INDIRECT, VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE } from '../spec/ring.js';
import { MockRing, type ChainSpec, type DeviceQueueFeatures, type MockQueueOptions, type UsedBatch, type UsedElem } from './mock-ring.js';

/** Fields of a struct pvirtq_desc; `addr` as a bigint reaches all 64 bits (for wrap tests). */
export interface PackedDescFields {
  readonly addr: number | bigint;
  readonly len: number;
  readonly id: number;
  readonly flags: number;
}

/** The AVAIL and USED bits that mark a descriptor available for Driver Ring Wrap Counter `wrap` (2.8.1). */
export function availFlags(wrap: number): number {
  return wrap === 1 ? VIRTQ_DESC_F_AVAIL : VIRTQ_DESC_F_USED;
}

export class MockPackedQueue extends MockRing {
  readonly descAddr: number;
  /** Driver event suppression (read by the device). */
  readonly driverAddr: number;
  /** Device event suppression (written by the device). */
  readonly deviceAddr: number;
  /** The driver's next available position and Driver Ring Wrap Counter. */
  nextAvail = 0;
  availWrap = 1;
  /** Where the driver looks for the next used descriptor, and the wrap counter it expects there. */
  nextUsed = 0;
  usedWrap = 1;
  private freeSlots: number;
  private readonly freeIds: number[];
  /** Ring descriptors each buffer id in flight took (the skip after its used descriptor). */
  private readonly slotsOf = new Map<number, number>();

  constructor(options: MockQueueOptions) {
    super(options);
    const align = PACKED_RING.areaAlign;
    this.descAddr = this.placeRing(packedDescRingSize(this.size), align.desc);
    this.driverAddr = this.placeRing(PVIRTQ_EVENT_SUPPRESS_SIZE, align.driver);
    this.deviceAddr = this.placeRing(PVIRTQ_EVENT_SUPPRESS_SIZE, align.device);
    this.freeSlots = this.size;
    this.freeIds = this.shuffle(Array.from({ length: this.size }, (_, i) => i));
  }

  /** The device side, built through the seam with VIRTIO_F_RING_PACKED (and EVENT_IDX, INDIRECT_DESC as asked). */
  deviceQueue(options: DeviceQueueFeatures = {}): PackedQueue {
    const queue = this.seam(options, 0n);
    if (!(queue instanceof PackedQueue)) throw new Error('mock packed queue: the seam built a ring of another format');
    return queue;
  }

  protected seam(options: DeviceQueueFeatures, extra: bigint): DeviceQueue {
    const features =
      extra |
      bit(VIRTIO_F_RING_PACKED) |
      (options.eventIdx ? bit(VIRTIO_F_EVENT_IDX) : 0n) |
      (options.indirect ? bit(VIRTIO_F_INDIRECT_DESC) : 0n);
    const areas = { desc: this.descAddr, driver: this.driverAddr, device: this.deviceAddr };
    return deviceRing({ index: options.index ?? 0, size: this.size, memory: this.memory, areas, features });
  }

  /** Ring slots free for addChain. */
  get numFree(): number {
    return this.freeSlots;
  }

  addChain(spec: ChainSpec): number {
    const buffers = this.placeBuffers(spec);
    let descs: { addr: number; len: number; flags: number }[];
    if (spec.indirect) {
      const len = buffers.length * PVIRTQ_DESC_SIZE;
      const table = this.alloc(len, PACKED_RING.areaAlign.desc);
      // 2.8.7: the table's entries follow each other; WRITE is their only flag.
      buffers.forEach((b, i) => this.writeDesc(table, i, { addr: b.addr, len: b.len, id: 0, flags: b.writable ? VIRTQ_DESC_F_WRITE : 0 }));
      descs = [{ addr: table, len, flags: VIRTQ_DESC_F_INDIRECT }];
    } else {
      descs = buffers.map((b, i) => ({
        addr: b.addr,
        len: b.len,
        flags: (b.writable ? VIRTQ_DESC_F_WRITE : 0) | (i < buffers.length - 1 ? VIRTQ_DESC_F_NEXT : 0),
      }));
    }
    if (descs.length > this.freeSlots) throw new Error(`mock packed queue: ${descs.length} descriptors wanted, ${this.freeSlots} free`);
    const id = this.freeIds.shift();
    if (id === undefined) throw new Error('mock packed queue: no free buffer id');
    // 2.8.6: the id belongs in the last descriptor; the others carry another id, so that a device
    // reading it from the wrong descriptor is caught.
    const decoy = (id + 1) % this.size;
    this.publish(descs.map((d, i) => ({ ...d, id: i === descs.length - 1 ? id : decoy })));
    this.freeSlots -= descs.length;
    this.slotsOf.set(id, descs.length);
    this.recordBuffers(id, buffers);
    return id;
  }

  /**
   * Used descriptors the device wrote since the last call (2.8.22): AVAIL and USED both equal to the
   * expected wrap counter; `len` as written when WRITE is set, else 0 (2.8.4: reserved). Their ids
   * and ring slots become free.
   */
  readUsed(): UsedElem[] {
    const out: UsedElem[] = [];
    for (let used = this.nextUsedDesc(); used !== null; used = this.nextUsedDesc()) {
      if (!this.slotsOf.has(used.id))
        throw new Error(`mock packed queue: used descriptor at ${this.nextUsed} names buffer id ${used.id}, not in flight`);
      out.push(used);
      this.take(used.id);
    }
    return out;
  }

  /**
   * With IN_ORDER (2.8.8) a batch's chains are those made available from the oldest in flight up to
   * the one the used descriptor names; the ring moves past all their descriptors.
   */
  readUsedBatches(): UsedBatch[] {
    const out: UsedBatch[] = [];
    for (let used = this.nextUsedDesc(); used !== null; used = this.nextUsedDesc()) {
      if (!this.slotsOf.has(used.id))
        throw new Error(`mock packed queue: used descriptor at ${this.nextUsed} names buffer id ${used.id}, not in flight`);
      // slotsOf keeps the ids in flight in the order they were made available.
      let batch = 0;
      for (const id of [...this.slotsOf.keys()]) {
        batch++;
        this.take(id);
        if (id === used.id) break;
      }
      out.push({ ...used, batch });
    }
    return out;
  }

  /**
   * The used descriptor at the driver's next used position (2.8.22): AVAIL and USED both equal to the
   * expected wrap counter; `len` as written when WRITE is set, else 0 (2.8.4: reserved). Null when
   * the device has not written one there.
   */
  private nextUsedDesc(): UsedElem | null {
    const at = this.descAddr + this.nextUsed * PVIRTQ_DESC_SIZE;
    const flags = this.memory.read16(at + PVIRTQ_DESC_FLAGS);
    const both = VIRTQ_DESC_F_AVAIL | VIRTQ_DESC_F_USED;
    if ((flags & both) !== (this.usedWrap === 1 ? both : 0)) return null;
    const id = this.memory.read16(at + PVIRTQ_DESC_ID);
    return { id, len: (flags & VIRTQ_DESC_F_WRITE) !== 0 ? this.memory.read32(at + PVIRTQ_DESC_LEN) : 0 };
  }

  /** Buffer id `id` (in flight) is used: its id and ring slots become free, the used position moves past them. */
  private take(id: number): void {
    const slots = this.slotsOf.get(id)!;
    this.slotsOf.delete(id);
    this.freeIds.push(id);
    this.freeSlots += slots;
    this.nextUsed += slots;
    if (this.nextUsed >= this.size) {
      this.nextUsed -= this.size;
      this.usedWrap ^= 1;
    }
  }

  // Raw pokes for hostile rings.

  /**
   * Make `descs` available at the driver's next positions, in ring order: each with `flags` plus the
   * AVAIL/USED bits of the wrap counter at its position, the first one's flags written last (2.8.21.1).
   * Nothing is recorded (no id, no free slots taken); returns the first position.
   */
  publish(descs: readonly PackedDescFields[]): number {
    const first = this.nextAvail;
    let headFlags = 0;
    descs.forEach((d, i) => {
      const flags = d.flags | availFlags(this.availWrap);
      if (i === 0) {
        headFlags = flags;
        this.setDesc(this.nextAvail, { ...d, flags: 0 });
      } else {
        this.setDesc(this.nextAvail, { ...d, flags });
      }
      if (++this.nextAvail === this.size) {
        this.nextAvail = 0;
        this.availWrap ^= 1;
      }
    });
    this.memory.write16(this.descAddr + first * PVIRTQ_DESC_SIZE + PVIRTQ_DESC_FLAGS, headFlags);
    return first;
  }

  /** Write descriptor `slot` of the ring, flags exactly as given. */
  setDesc(slot: number, desc: PackedDescFields): void {
    this.writeDesc(this.descAddr, slot, desc);
  }

  /** Write descriptor `index` of any table (e.g. an indirect one at `table`). */
  writeDesc(table: number, index: number, desc: PackedDescFields): void {
    const at = table + index * PVIRTQ_DESC_SIZE;
    this.writeAddr64(at + PVIRTQ_DESC_ADDR, desc.addr);
    this.memory.write32(at + PVIRTQ_DESC_LEN, desc.len);
    this.memory.write16(at + PVIRTQ_DESC_ID, desc.id);
    this.memory.write16(at + PVIRTQ_DESC_FLAGS, desc.flags);
  }

  /** The driver event suppression structure (2.8.14): offset and wrap first, then flags. */
  setDriverEvent(flags: number, offset = 0, wrap = 0): void {
    this.memory.write16(this.driverAddr + PVIRTQ_EVENT_DESC, (offset & RING_EVENT_OFF_MASK) | (wrap << RING_EVENT_WRAP_SHIFT));
    this.memory.write16(this.driverAddr + PVIRTQ_EVENT_FLAGS, flags);
  }

  /** The device event suppression structure as the device last wrote it. */
  get deviceEvent(): { flags: number; offset: number; wrap: number } {
    const desc = this.memory.read16(this.deviceAddr + PVIRTQ_EVENT_DESC);
    return {
      flags: this.memory.read16(this.deviceAddr + PVIRTQ_EVENT_FLAGS),
      offset: desc & RING_EVENT_OFF_MASK,
      wrap: desc >>> RING_EVENT_WRAP_SHIFT,
    };
  }
}
