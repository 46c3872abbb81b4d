/**
 * A reference for the blk benchmarks, not a virtio implementation: the same requests through a bare
 * ring, split or packed, in one JavaScript function per side. The driver writes the header and three
 * descriptors (and, split, the avail entry); the device walks them, copies between the disk and the
 * data buffer, writes the status byte and the used element or descriptor; the driver reaps. It
 * trusts every index and address, checks nothing, allocates nothing and takes no interrupt, so its
 * rate is the ceiling any JavaScript ring could reach: what lies between it and ours is the price of
 * our checks and layers, and what lies between it and Buffer.copy is the ring's own bookkeeping.
 *
 * The device half can also be another device over the same memory (`run(..., device)`), so that a
 * bench can time our device model against this ring's bare device loop behind the same driver.
 */

import * as ringSpec from '../src/spec/ring.js';
import * as packedSpec from '../src/spec/packed-ring.js';
import * as blkSpec from '../src/spec/blk.js';

// The layout constants as this module's own consts: optimised code (V8 11, Node 20) folds a module's
// own const but loads an imported binding from its cell, with a TDZ check, at every use.
const {
  VIRTQ_AVAIL_IDX,
  VIRTQ_AVAIL_RING,
  VIRTQ_DESC_ADDR,
  VIRTQ_DESC_F_NEXT,
  VIRTQ_DESC_F_WRITE,
  VIRTQ_DESC_FLAGS,
  VIRTQ_DESC_LEN,
  VIRTQ_DESC_NEXT,
  VIRTQ_DESC_SIZE,
  VIRTQ_USED_IDX,
  VIRTQ_USED_RING,
} = ringSpec;
const { PVIRTQ_DESC_ADDR, PVIRTQ_DESC_FLAGS, PVIRTQ_DESC_ID, PVIRTQ_DESC_LEN, PVIRTQ_DESC_SIZE, VIRTQ_DESC_F_AVAIL, VIRTQ_DESC_F_USED } =
  packedSpec;
const { VIRTIO_BLK_REQ_SECTOR, VIRTIO_BLK_REQ_TYPE, VIRTIO_BLK_S_OK, VIRTIO_BLK_SECTOR_SIZE, VIRTIO_BLK_T_IN, VIRTIO_BLK_T_OUT } = blkSpec;

const QUEUE_SIZE = 256;
/** Split: descriptor table, avail ring, used ring. Packed: descriptor ring, driver and device event suppression. */
const DESC = 0;
const AVAIL = DESC + QUEUE_SIZE * VIRTQ_DESC_SIZE;
const USED = AVAIL + 4096;
const SLOTS = USED + 4096;
const SLOT_SIZE = 64;
const STATUS = 52;
const BUFFERS = SLOTS + QUEUE_SIZE * SLOT_SIZE;
const AVAIL_USED = VIRTQ_DESC_F_AVAIL | VIRTQ_DESC_F_USED;

/** Where a bare ring's areas lie in its memory (queue_desc, queue_driver, queue_device), for another device. */
export const BARE_RING_AREAS = { desc: DESC, driver: AVAIL, device: USED };
export const BARE_QUEUE_SIZE = QUEUE_SIZE;

/** What both formats share: the memory, the request slots and data buffers, and the blk request itself. */
abstract class BareRing {
  /** The ring's memory, guest-physical address 0 up: rings, request slots, data buffers. */
  readonly ram: Uint8Array;
  protected readonly dv: DataView;
  /** Milliseconds spent in the device half, timed as the blk bench times our device's notify. */
  deviceMs = 0;

  /** `depth` data buffers of `size` bytes; requests go to and from `disk`. */
  constructor(
    private readonly disk: Uint8Array,
    protected readonly size: number,
    depth: number,
  ) {
    this.ram = new Uint8Array(BUFFERS + depth * size);
    this.dv = new DataView(this.ram.buffer);
  }

  /**
   * One batch: requests k = 0..blocks.length-1 move block blocks[k] through data buffer k. The
   * device half is this ring's own bare loop, or `device` (another device over the same memory).
   */
  run(write: boolean, blocks: readonly number[], device: () => void = () => this.device()): void {
    for (let k = 0; k < blocks.length; k++) this.add(k, this.header(k, blocks[k]!, write), write);
    this.publish();
    const t0 = performance.now();
    device();
    this.deviceMs += performance.now() - t0;
    this.reap();
  }

  /** Data buffer k, as the last run() left it. */
  buffer(k: number): Uint8Array {
    return this.ram.subarray(BUFFERS + k * this.size, BUFFERS + (k + 1) * this.size);
  }

  /** Request k's status byte, as the last run() left it. */
  status(k: number): number {
    return this.ram[SLOTS + k * SLOT_SIZE + STATUS]!;
  }

  /** Write request k's header for `block`; returns its address. */
  private header(k: number, block: number, write: boolean): number {
    const slot = SLOTS + k * SLOT_SIZE;
    this.dv.setUint32(slot + VIRTIO_BLK_REQ_TYPE, write ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN, true);
    this.dv.setUint32(slot + VIRTIO_BLK_REQ_SECTOR, (block * this.size) / VIRTIO_BLK_SECTOR_SIZE, true);
    this.ram[slot + STATUS] = 0xff;
    return slot;
  }

  /** Request k's data buffer address. */
  protected data(k: number): number {
    return BUFFERS + k * this.size;
  }

  /** The device's work on one request: the copy and the status byte; returns the used length. */
  protected serve(header: number, addr: number, len: number, status: number): number {
    const dv = this.dv;
    const at = dv.getUint32(header + VIRTIO_BLK_REQ_SECTOR, true) * VIRTIO_BLK_SECTOR_SIZE;
    const read = dv.getUint32(header + VIRTIO_BLK_REQ_TYPE, true) === VIRTIO_BLK_T_IN;
    if (read) this.ram.set(this.disk.subarray(at, at + len), addr);
    else this.disk.set(this.ram.subarray(addr, addr + len), at);
    this.ram[status] = VIRTIO_BLK_S_OK;
    return read ? len + 1 : 1;
  }

  /** Driver: put request k (header at `slot`) in the ring. */
  protected abstract add(k: number, slot: number, write: boolean): void;
  /** Driver: make the requests added visible. */
  protected abstract publish(): void;
  /** The bare device loop. */
  protected abstract device(): void;
  /** Driver: take the used requests back. */
  protected abstract reap(): void;
}

/** The split ring (2.7). */
export class BareBlkRing extends BareRing {
  private readonly free: number[] = [];
  private availIdx = 0;
  private lastAvail = 0;
  private usedIdx = 0;
  private lastUsed = 0;

  constructor(disk: Uint8Array, size: number, depth: number) {
    super(disk, size, depth);
    for (let i = QUEUE_SIZE - 1; i >= 0; i--) this.free.push(i);
  }

  protected add(k: number, slot: number, write: boolean): void {
    const a = this.free.pop()!;
    const b = this.free.pop()!;
    const c = this.free.pop()!;
    this.desc(a, slot, 16, VIRTQ_DESC_F_NEXT, b);
    this.desc(b, this.data(k), this.size, write ? VIRTQ_DESC_F_NEXT : VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, c);
    this.desc(c, slot + STATUS, 1, VIRTQ_DESC_F_WRITE, 0);
    this.dv.setUint16(AVAIL + VIRTQ_AVAIL_RING + (this.availIdx % QUEUE_SIZE) * 2, a, true);
    this.availIdx = (this.availIdx + 1) & 0xffff;
  }

  protected publish(): void {
    this.dv.setUint16(AVAIL + VIRTQ_AVAIL_IDX, this.availIdx, true);
  }

  private desc(id: number, addr: number, len: number, flags: number, next: number): void {
    const at = DESC + id * VIRTQ_DESC_SIZE;
    this.dv.setUint32(at + VIRTQ_DESC_ADDR, addr, true);
    this.dv.setUint32(at + VIRTQ_DESC_LEN, len, true);
    this.dv.setUint16(at + VIRTQ_DESC_FLAGS, flags, true);
    this.dv.setUint16(at + VIRTQ_DESC_NEXT, next, true);
  }

  protected device(): void {
    const dv = this.dv;
    const idx = dv.getUint16(AVAIL + VIRTQ_AVAIL_IDX, true);
    while (this.lastAvail !== idx) {
      const head = dv.getUint16(AVAIL + VIRTQ_AVAIL_RING + (this.lastAvail % QUEUE_SIZE) * 2, true);
      this.lastAvail = (this.lastAvail + 1) & 0xffff;
      const header = dv.getUint32(DESC + head * VIRTQ_DESC_SIZE + VIRTQ_DESC_ADDR, true);
      const data = dv.getUint16(DESC + head * VIRTQ_DESC_SIZE + VIRTQ_DESC_NEXT, true);
      const status = dv.getUint16(DESC + data * VIRTQ_DESC_SIZE + VIRTQ_DESC_NEXT, true);
      const addr = dv.getUint32(DESC + data * VIRTQ_DESC_SIZE + VIRTQ_DESC_ADDR, true);
      const len = dv.getUint32(DESC + data * VIRTQ_DESC_SIZE + VIRTQ_DESC_LEN, true);
      const used = this.serve(header, addr, len, dv.getUint32(DESC + status * VIRTQ_DESC_SIZE + VIRTQ_DESC_ADDR, true));
      const elem = USED + VIRTQ_USED_RING + (this.usedIdx % QUEUE_SIZE) * 8;
      dv.setUint32(elem, head, true);
      dv.setUint32(elem + 4, used, true);
      this.usedIdx = (this.usedIdx + 1) & 0xffff;
    }
    dv.setUint16(USED + VIRTQ_USED_IDX, this.usedIdx, true);
  }

  protected reap(): void {
    const dv = this.dv;
    const idx = dv.getUint16(USED + VIRTQ_USED_IDX, true);
    while (this.lastUsed !== idx) {
      let id = dv.getUint32(USED + VIRTQ_USED_RING + (this.lastUsed % QUEUE_SIZE) * 8, true);
      this.lastUsed = (this.lastUsed + 1) & 0xffff;
      for (let k = 0; k < 3; k++) {
        this.free.push(id);
        id = dv.getUint16(DESC + id * VIRTQ_DESC_SIZE + VIRTQ_DESC_NEXT, true);
      }
    }
  }
}

/**
 * The packed ring (2.8): request k is buffer id k, three descriptors at the driver's position, the
 * first one's flags written last; the device completes in order, so each used descriptor goes where
 * its request began, and the driver reaps by skipping three slots per used descriptor.
 */
export class BarePackedBlkRing extends BareRing {
  private pos = 0;
  private wrap = 1;
  private devicePos = 0;
  private deviceWrap = 1;
  private usedPos = 0;
  private usedWrap = 1;

  protected add(k: number, slot: number, write: boolean): void {
    const head = this.pos;
    const headFlags = this.desc(slot, 16, VIRTQ_DESC_F_NEXT, k, true);
    this.desc(this.data(k), this.size, write ? VIRTQ_DESC_F_NEXT : VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, k, false);
    this.desc(slot + STATUS, 1, VIRTQ_DESC_F_WRITE, k, false);
    this.dv.setUint16(DESC + head * PVIRTQ_DESC_SIZE + PVIRTQ_DESC_FLAGS, headFlags, true);
  }

  protected publish(): void {
    // Each request's first descriptor was made available last in add().
  }

  /** Write the descriptor at the driver's position, its flags too unless it is a request's `first`; returns the flags. */
  private desc(addr: number, len: number, flags: number, id: number, first: boolean): number {
    const at = DESC + this.pos * PVIRTQ_DESC_SIZE;
    const all = flags | (this.wrap === 1 ? VIRTQ_DESC_F_AVAIL : VIRTQ_DESC_F_USED);
    this.dv.setUint32(at + PVIRTQ_DESC_ADDR, addr, true);
    this.dv.setUint32(at + PVIRTQ_DESC_ADDR + 4, 0, true);
    this.dv.setUint32(at + PVIRTQ_DESC_LEN, len, true);
    this.dv.setUint16(at + PVIRTQ_DESC_ID, id, true);
    if (!first) this.dv.setUint16(at + PVIRTQ_DESC_FLAGS, all, true);
    if (++this.pos === QUEUE_SIZE) {
      this.pos = 0;
      this.wrap ^= 1;
    }
    return all;
  }

  protected device(): void {
    const dv = this.dv;
    let pos = this.devicePos;
    let wrap = this.deviceWrap;
    for (;;) {
      const head = DESC + pos * PVIRTQ_DESC_SIZE;
      if ((dv.getUint16(head + PVIRTQ_DESC_FLAGS, true) & AVAIL_USED) !== (wrap === 1 ? VIRTQ_DESC_F_AVAIL : VIRTQ_DESC_F_USED)) break;
      const usedFlags = wrap === 1 ? AVAIL_USED : 0;
      const data = DESC + ((pos + 1) % QUEUE_SIZE) * PVIRTQ_DESC_SIZE;
      const status = DESC + ((pos + 2) % QUEUE_SIZE) * PVIRTQ_DESC_SIZE;
      const used = this.serve(
        dv.getUint32(head + PVIRTQ_DESC_ADDR, true),
        dv.getUint32(data + PVIRTQ_DESC_ADDR, true),
        dv.getUint32(data + PVIRTQ_DESC_LEN, true),
        dv.getUint32(status + PVIRTQ_DESC_ADDR, true),
      );
      dv.setUint16(head + PVIRTQ_DESC_ID, dv.getUint16(status + PVIRTQ_DESC_ID, true), true);
      dv.setUint32(head + PVIRTQ_DESC_LEN, used, true);
      dv.setUint16(head + PVIRTQ_DESC_FLAGS, usedFlags | VIRTQ_DESC_F_WRITE, true);
      pos += 3;
      if (pos >= QUEUE_SIZE) {
        pos -= QUEUE_SIZE;
        wrap ^= 1;
      }
    }
    this.devicePos = pos;
    this.deviceWrap = wrap;
  }

  protected reap(): void {
    const dv = this.dv;
    for (;;) {
      const flags = dv.getUint16(DESC + this.usedPos * PVIRTQ_DESC_SIZE + PVIRTQ_DESC_FLAGS, true);
      if ((flags & AVAIL_USED) !== (this.usedWrap === 1 ? AVAIL_USED : 0)) break;
      this.usedPos += 3;
      if (this.usedPos >= QUEUE_SIZE) {
        this.usedPos -= QUEUE_SIZE;
        this.usedWrap ^= 1;
      }
    }
  }
}
