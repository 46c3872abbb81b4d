/**
 * A reference for the blk benchmark, not a virtio implementation: the same requests through a bare
 * split ring in one JavaScript function per side. The driver writes the header, three descriptors
 * and the avail entry; the device walks them, copies between the disk and the data buffer, writes
 * the status byte and the used element; the driver reaps. It trusts every index and address, checks
 * nothing, allocates nothing and takes no interrupt, so its rate is the ceiling any JavaScript ring
 * could reach: what lies between it and ours is the price of our checks and layers, and what lies
 * between it and Buffer.copy is the ring's own bookkeeping.
 */

import * as ringSpec from '../src/spec/ring.js';
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
const { VIRTIO_BLK_REQ_SECTOR, VIRTIO_BLK_REQ_TYPE, VIRTIO_BLK_S_OK, VIRTIO_BLK_SECTOR_SIZE, VIRTIO_BLK_T_IN, VIRTIO_BLK_T_OUT } = blkSpec;

const QUEUE_SIZE = 256;
const DESC = 0;
const AVAIL = DESC + QUEUE_SIZE * VIRTQ_DESC_SIZE;
const USED = AVAIL + 4096;
const SLOTS = USED + 4096;
const SLOT_SIZE = 64;
const STATUS = 52;
const BUFFERS = SLOTS + QUEUE_SIZE * SLOT_SIZE;

export class BareBlkRing {
  private readonly ram: Uint8Array;
  private readonly dv: DataView;
  private readonly free: number[] = [];
  private availIdx = 0;
  private lastAvail = 0;
  private usedIdx = 0;
  private lastUsed = 0;
  /** Milliseconds spent in the device half, timed as the blk bench times our device's notify. */
  deviceMs = 0;

  /** `depth` data buffers of `size` bytes; requests go to and from `disk`. */
  constructor(
    private readonly disk: Uint8Array,
    private readonly size: number,
    depth: number,
  ) {
    this.ram = new Uint8Array(BUFFERS + depth * size);
    this.dv = new DataView(this.ram.buffer);
    for (let i = QUEUE_SIZE - 1; i >= 0; i--) this.free.push(i);
  }

  /** One batch: requests k = 0..blocks.length-1 move block blocks[k] through data buffer k. */
  run(write: boolean, blocks: readonly number[]): void {
    for (let k = 0; k < blocks.length; k++) this.add(k, (blocks[k]! * this.size) / VIRTIO_BLK_SECTOR_SIZE, write);
    this.dv.setUint16(AVAIL + VIRTQ_AVAIL_IDX, this.availIdx, true);
    const t0 = performance.now();
    this.device();
    this.deviceMs += performance.now() - t0;
    this.reap();
  }

  /** Data buffer k, as the last run() left it. */
  buffer(k: number): Uint8Array {
    return this.ram.subarray(BUFFERS + k * this.size, BUFFERS + (k + 1) * this.size);
  }

  private add(k: number, sector: number, write: boolean): void {
    const dv = this.dv;
    const slot = SLOTS + k * SLOT_SIZE;
    dv.setUint32(slot + VIRTIO_BLK_REQ_TYPE, write ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN, true);
    dv.setUint32(slot + VIRTIO_BLK_REQ_SECTOR, sector, true);
    this.ram[slot + STATUS] = 0xff;
    const a = this.free.pop()!;
    const b = this.free.pop()!;
    const c = this.free.pop()!;
    this.desc(a, slot, 16, VIRTQ_DESC_F_NEXT, b);
    this.desc(b, BUFFERS + k * this.size, this.size, write ? VIRTQ_DESC_F_NEXT : VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, c);
    this.desc(c, slot + STATUS, 1, VIRTQ_DESC_F_WRITE, 0);
    dv.setUint16(AVAIL + VIRTQ_AVAIL_RING + (this.availIdx % QUEUE_SIZE) * 2, a, true);
    this.availIdx = (this.availIdx + 1) & 0xffff;
  }

  private desc(id: number, addr: number, len: number, flags: number, next: number): void {
    const at = DESC + id * VIRTQ_DESC_SIZE;
    this.dv.setUint32(at + VIRTQ_DESC_ADDR, addr, true);
    this.dv.setUint32(at + VIRTQ_DESC_LEN, len, true);
    this.dv.setUint16(at + VIRTQ_DESC_FLAGS, flags, true);
    this.dv.setUint16(at + VIRTQ_DESC_NEXT, next, true);
  }

  private device(): void {
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
      const at = dv.getUint32(header + VIRTIO_BLK_REQ_SECTOR, true) * VIRTIO_BLK_SECTOR_SIZE;
      if (dv.getUint32(header + VIRTIO_BLK_REQ_TYPE, true) === VIRTIO_BLK_T_IN) this.ram.set(this.disk.subarray(at, at + len), addr);
      else this.disk.set(this.ram.subarray(addr, addr + len), at);
      this.ram[dv.getUint32(DESC + status * VIRTQ_DESC_SIZE + VIRTQ_DESC_ADDR, true)] = VIRTIO_BLK_S_OK;
      const elem = USED + VIRTQ_USED_RING + (this.usedIdx % QUEUE_SIZE) * 8;
      dv.setUint32(elem, head, true);
      dv.setUint32(elem + 4, len + 1, true);
      this.usedIdx = (this.usedIdx + 1) & 0xffff;
    }
    dv.setUint16(USED + VIRTQ_USED_IDX, this.usedIdx, true);
  }

  private reap(): void {
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
