/**
 * Target: the device half of a packed virtqueue (PackedQueue, 2.8, built through the seam the
 * transport uses) reading descriptor chains from arbitrary ring memory. The input is a ring
 * geometry (any queue size, powers of two or not) and a script of guest writes (descriptors with any
 * flags, ids and AVAIL/USED bits, raw pokes, the driver event suppression area, well-formed chains
 * from MockQueue) interleaved with device operations (pop, pushUsed, notification control) and
 * resets (the guest zeroes the ring and enables a new queue on it).
 *
 * Guarantees checked: every call throws only QueueFaultError (and UsageError for a device model's
 * bad len); every pop agrees with an independent reference walk of the same memory (same
 * fault-or-chain, same buffers, same buffer id); pop never writes the descriptor ring, pushUsed
 * writes only the one descriptor where 2.8.9 puts the next used descriptor, with the id, len and
 * both wrap bits the spec asks; nothing else is written but the device event suppression area and
 * the writable buffers of chains in flight; an enabled driver event, or one naming a descriptor the
 * device just used, is never missed; after a reset well-formed traffic works again.
 */

import { QueueFaultError, UsageError } from '../../src/errors.js';
import { PACKED_RING } from '../../src/queue/ring-format.js';
import { deviceRing } from '../../src/queue/rings.js';
import type { DescriptorChain, DeviceQueue } from '../../src/queue/types.js';
import { VIRTIO_F_EVENT_IDX, VIRTIO_F_INDIRECT_DESC, VIRTIO_F_RING_PACKED, bit } from '../../src/spec/features.js';
import {
  PVIRTQ_DESC_FLAGS,
  PVIRTQ_DESC_ID,
  PVIRTQ_DESC_LEN,
  PVIRTQ_DESC_SIZE,
  PVIRTQ_EVENT_DESC,
  PVIRTQ_EVENT_FLAGS,
  PVIRTQ_EVENT_SUPPRESS_SIZE,
  RING_EVENT_FLAGS_DESC,
  RING_EVENT_FLAGS_DISABLE,
  RING_EVENT_FLAGS_ENABLE,
  RING_EVENT_OFF_MASK,
  RING_EVENT_WRAP_SHIFT,
  VIRTQ_DESC_F_AVAIL,
  VIRTQ_DESC_F_USED,
  packedDescRingSize,
} from '../../src/spec/packed-ring.js';
import { VIRTQ_DESC_F_INDIRECT, VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE } from '../../src/spec/ring.js';
import { GuardedMemory } from '../../src/testing/guarded-memory.js';
import { MockPackedQueue } from '../../src/testing/mock-packed-queue.js';
import { check, type ErrorClass } from '../engine/guarantees.js';
import { FuzzInput, InputWriter } from '../engine/input.js';
import type { MutationShape } from '../engine/mutator.js';
import type { Seed } from '../engine/target.js';
import {
  allowChainBuffers,
  chainBuffers,
  describeChain,
  guardedCall,
  pushBuffer,
  readBuffer,
  sameBuffers,
  totalBytes,
  writeIntoChain,
  type Buf,
} from '../harness/device-guard.js';
import { BASES, DATA, MAX_OPS, MEM_SIZE, ringRecordShape } from '../harness/ring-records.js';

export const description = 'packed ring device side: chain walks from arbitrary descriptors, wrap bits, ids and event suppression';

export const shape: MutationShape = ringRecordShape(dictionary());

const enum Op {
  Desc = 0,
  Poke = 1,
  Chain = 2,
  DriverEvent = 3,
  Pop = 4,
  PushUsed = 5,
  PushUsedRaw = 6,
  Notify = 7,
  Reset = 8,
}

/** How a Desc record sets AVAIL/USED (mod & 3), relative to the lap the device reads that slot in. */
const enum Mark {
  Available = 0,
  UsedLooking = 1,
  OtherLap = 2,
  Zero = 3,
}

interface InFlight {
  readonly bufs: Buf[];
  /** Ring descriptors the chain took (1 for an indirect one). */
  readonly descs: number;
}

/** The reference model: what the spec (2.8) says the device does with the same memory. */
class Model {
  nextAvail = 0;
  availWrap = 1;
  nextUsed = 0;
  usedWrap = 1;
  inFlightDescs = 0;
  /** Used descriptor positions (0 .. 2*size-1: wrap 1 first) at the last needsInterrupt, and moved since. */
  signalled = 0;
  movedSinceSignal = 0;
  /** needsInterrupt() refused the driver's event suppression: interrupts are not checked until a reset. */
  interruptFault = false;

  constructor(
    private readonly m: GuardedMemory['inner'],
    readonly size: number,
    readonly desc: number,
    readonly indirect: boolean,
    /** Chains in flight by buffer id (shared with the guard's allowances). */
    readonly inFlight: Map<number, InFlight>,
  ) {}

  flagsAt(i: number): number {
    return this.m.read16(this.desc + i * PVIRTQ_DESC_SIZE + PVIRTQ_DESC_FLAGS);
  }

  /** 2.8.1: available in the lap whose wrap counter is `wrap`: AVAIL matches it, USED does not. */
  static isAvail(flags: number, wrap: number): boolean {
    return ((flags & VIRTQ_DESC_F_AVAIL) !== 0) === (wrap === 1) && ((flags & VIRTQ_DESC_F_USED) !== 0) !== (wrap === 1);
  }

  /** The wrap counter the device reads slot `i` with next. */
  lapOf(i: number): number {
    return i >= this.nextAvail ? this.availWrap : this.availWrap ^ 1;
  }

  hasAvailable(): boolean {
    return Model.isAvail(this.flagsAt(this.nextAvail), this.availWrap);
  }

  /** What pop() must do: 'fault', null (nothing available) or the next chain. */
  pop(): 'fault' | null | { id: number; bufs: Buf[]; descs: number } {
    if (!this.hasAvailable()) return null;
    const m = this.m;
    const max = PACKED_RING.maxChainBuffers(this.size);
    const bufs: Buf[] = [];
    let i = this.nextAvail;
    let wrap = this.availWrap;
    let descs = 0;
    let id: number;
    for (;;) {
      // 2.8.6 / 2.8.18: a list is never longer than the queue (the ring holds no more).
      if (++descs > this.size) return 'fault';
      const at = this.desc + i * PVIRTQ_DESC_SIZE;
      const flags = m.read16(at + PVIRTQ_DESC_FLAGS);
      // 2.8.6: every descriptor of the list is made available (the first last), in its lap.
      if (descs > 1 && !Model.isAvail(flags, wrap)) return 'fault';
      if (flags & VIRTQ_DESC_F_INDIRECT) {
        // 2.8.19 (driver): only with INDIRECT_DESC, never inside a list linked by NEXT.
        if (!this.indirect || descs > 1 || flags & VIRTQ_DESC_F_NEXT) return 'fault';
        const raw = m.read64(at);
        const len = m.read32(at + PVIRTQ_DESC_LEN);
        const entries = len / PVIRTQ_DESC_SIZE;
        if (len === 0 || len % PVIRTQ_DESC_SIZE !== 0 || entries > max) return 'fault';
        if (raw >= 2n ** 53n || !m.contains(Number(raw), len)) return 'fault';
        // 2.8.7: the entries follow each other; only WRITE counts in them (NEXT and the id are
        // ignored). INDIRECT in an entry is refused as a nested table, as the split ring must
        // (2.7.5.3.1); 2.8.7 calls it reserved and ignored, and 2.8.19 forbids the driver to set it.
        for (let k = 0; k < entries; k++) {
          const e = Number(raw) + k * PVIRTQ_DESC_SIZE;
          if (m.read16(e + PVIRTQ_DESC_FLAGS) & VIRTQ_DESC_F_INDIRECT) return 'fault';
          const buf = readBuffer(m, e, (m.read16(e + PVIRTQ_DESC_FLAGS) & VIRTQ_DESC_F_WRITE) !== 0);
          if (buf === null || !pushBuffer(bufs, buf, max)) return 'fault';
        }
        id = m.read16(at + PVIRTQ_DESC_ID);
        break;
      }
      const buf = readBuffer(m, at, (flags & VIRTQ_DESC_F_WRITE) !== 0);
      if (buf === null || !pushBuffer(bufs, buf, max)) return 'fault';
      // 2.8.6: the buffer id is in the last descriptor of the list.
      if (!(flags & VIRTQ_DESC_F_NEXT)) {
        id = m.read16(at + PVIRTQ_DESC_ID);
        break;
      }
      if (++i === this.size) {
        i = 0;
        wrap ^= 1;
      }
    }
    if (totalBytes(bufs) > PACKED_RING.maxChainBytes) return 'fault';
    // The device answers by id, keeping one chain per id (< size, as the driver's ids are) in
    // flight; and the ring cannot hold more descriptors than it has between the next used position
    // and the next available one.
    if (id >= this.size || this.inFlight.has(id) || this.inFlightDescs + descs > this.size) return 'fault';
    this.inFlight.set(id, { bufs, descs });
    this.inFlightDescs += descs;
    this.nextAvail += descs;
    if (this.nextAvail >= this.size) {
      this.nextAvail -= this.size;
      this.availWrap ^= 1;
    }
    return { id, bufs, descs };
  }

  /** Record a used descriptor for `id`; returns the slot it must have been written to. */
  used(id: number): number {
    const slot = this.nextUsed;
    const { descs } = this.inFlight.get(id)!;
    this.inFlight.delete(id);
    this.inFlightDescs -= descs;
    this.nextUsed += descs;
    this.movedSinceSignal += descs;
    if (this.nextUsed >= this.size) {
      this.nextUsed -= this.size;
      this.usedWrap ^= 1;
    }
    return slot;
  }

  /** Position of the next used descriptor in 0 .. 2*size-1 (lap with wrap 1 first). */
  get usedPosition(): number {
    return this.nextUsed + (this.usedWrap === 1 ? 0 : this.size);
  }
}

export function run(data: Uint8Array): void {
  const input = new FuzzInput(data);
  // Mostly 1..64 entries, any of them (2.8.10.1: no power of two needed); with the top bit any of
  // 0..127 (0 must be refused).
  const sizeByte = input.u8();
  const size = sizeByte & 0x80 ? sizeByte & 0x7f : 1 + (sizeByte & 0x3f);
  const flags = input.u8();
  const eventIdx = (flags & 1) !== 0;
  const indirect = (flags & 2) !== 0;
  const base = BASES[((flags >> 2) & 3) % BASES.length]!;
  const rawRings = (flags & 0x10) !== 0;
  const placement = input.u16();
  const rawOffsets = [input.u16(), input.u16(), input.u16()].map((o) => base + (o % MEM_SIZE));
  const mem = new GuardedMemory(MEM_SIZE, { base });
  const g = mem.inner; // the guest writes unguarded
  // Rings placed by MockPackedQueue (seeded gaps, aligned), or anywhere the input says (raw).
  const mq = rawRings ? undefined : new MockPackedQueue({ size: Math.max(size, 1), memory: g, base, seed: placement, maxGap: 256 });
  const [desc, driverArea, deviceArea] = (mq === undefined ? rawOffsets : [mq.descAddr, mq.driverAddr, mq.deviceAddr]) as [
    number,
    number,
    number,
  ];
  const ringLen = packedDescRingSize(size);
  const align = PACKED_RING.areaAlign;
  const ringsOk =
    PACKED_RING.isQueueSize(size) &&
    mem.contains(desc, ringLen) &&
    mem.contains(driverArea, PVIRTQ_EVENT_SUPPRESS_SIZE) &&
    mem.contains(deviceArea, PVIRTQ_EVENT_SUPPRESS_SIZE) &&
    desc % align.desc === 0 &&
    driverArea % align.driver === 0 &&
    deviceArea % align.device === 0;
  const inFlight = new Map<number, InFlight>();
  const features = bit(VIRTIO_F_RING_PACKED) | (eventIdx ? bit(VIRTIO_F_EVENT_IDX) : 0n) | (indirect ? bit(VIRTIO_F_INDIRECT_DESC) : 0n);
  const areas = { desc, driver: driverArea, device: deviceArea };
  // Rings that overlap each other make the device's own writes change what the reference walk
  // reads mid-run: then only the typed-error and memory guarantees are checked.
  const rings: [number, number][] = [
    [desc, ringLen],
    [driverArea, PVIRTQ_EVENT_SUPPRESS_SIZE],
    [deviceArea, PVIRTQ_EVENT_SUPPRESS_SIZE],
  ];
  const overlap = rings.some(([x, xl], i) => rings.some(([y, yl], j) => i < j && x < y + yl && y < x + xl));

  /**
   * What every device operation may read and write; of the descriptor ring it may write only
   * `usedSlot` ('any' with overlapping rings, where the model does not follow the used position).
   */
  const device = <T>(what: string, fn: () => T, usedSlot?: number | 'any', allowed: readonly ErrorClass[] = [QueueFaultError]): T | Error =>
    guardedCall(
      mem,
      what,
      () => {
        mem.allowRead(desc, ringLen, 'descriptor ring');
        mem.allowRead(driverArea, PVIRTQ_EVENT_SUPPRESS_SIZE, 'driver event suppression');
        mem.allowWrite(deviceArea, PVIRTQ_EVENT_SUPPRESS_SIZE, 'device event suppression');
        if (usedSlot === 'any') mem.allowWrite(desc, ringLen, 'used descriptors');
        else if (usedSlot !== undefined) mem.allowWrite(desc + usedSlot * PVIRTQ_DESC_SIZE, PVIRTQ_DESC_SIZE, 'used descriptor');
        if (mem.contains(desc, ringLen)) {
          for (let k = 0; k < size; k++) {
            const at = desc + k * PVIRTQ_DESC_SIZE;
            if (g.read16(at + PVIRTQ_DESC_FLAGS) & VIRTQ_DESC_F_INDIRECT)
              mem.allowRead(Number(g.read64(at)), g.read32(at + PVIRTQ_DESC_LEN), 'indirect table');
          }
        }
        allowChainBuffers(
          mem,
          [...inFlight.values()].map((c) => c.bufs),
        );
      },
      fn,
      allowed,
    );

  const create = (): DeviceQueue | Error =>
    device('deviceRing (PackedQueue)', () => deviceRing({ index: 0, size, memory: mem, areas, features }));
  const created = create();
  if (created instanceof Error) {
    check(!ringsOk, 'contract', () => `packed rings refused though the size and areas are valid: ${created.message}`);
    return;
  }
  check(ringsOk, 'contract', () => `a packed ring of size ${size} at ${JSON.stringify(areas)} was accepted`);
  let q = created;
  let model = new Model(g, size, desc, indirect, inFlight);
  const chains = new Map<number, DescriptorChain>();
  let chainsMade = 0;

  for (let n = 0; n < MAX_OPS && !input.done; n++) {
    const opByte = input.u8();
    const a = input.u16();
    const b = input.u16();
    const c = input.u32();
    const d = input.u64();
    const mod = opByte >> 4;
    switch ((opByte & 0xf) as Op) {
      case Op.Desc: {
        // a: slot (low byte) and buffer id (high byte); b: flags (AVAIL/USED as Mark says, or as
        // in b with mod & 4); c: len; d: address (a raw 64-bit one with mod & 8).
        const slot = (a & 0xff) % size;
        const lap = model.lapOf(slot);
        const marks = [lap, lap ^ 1];
        const [av, us] =
          mod & 4
            ? [b & VIRTQ_DESC_F_AVAIL, b & VIRTQ_DESC_F_USED]
            : (
                {
                  [Mark.Available]: [marks[0]!, marks[1]!],
                  [Mark.UsedLooking]: [marks[0]!, marks[0]!],
                  [Mark.OtherLap]: [marks[1]!, marks[0]!],
                  [Mark.Zero]: [0, 0],
                } as const
              )[(mod & 3) as Mark];
        const f = (b & ~(VIRTQ_DESC_F_AVAIL | VIRTQ_DESC_F_USED)) | (av ? VIRTQ_DESC_F_AVAIL : 0) | (us ? VIRTQ_DESC_F_USED : 0);
        const addr = mod & 8 ? d : base + (d % MEM_SIZE);
        writeDesc(g, desc + slot * PVIRTQ_DESC_SIZE, addr, c, a >> 8, f);
        break;
      }
      case Op.Poke: {
        const width = [1, 2, 4, 8][mod & 3]!;
        const at = base + ((((b << 16) | a) >>> 0) % (MEM_SIZE - 7));
        if (width === 8) g.write64(at, BigInt(Math.floor(d)));
        else [g.write8, g.write16, g.write32][[1, 2, 4].indexOf(width)]!.call(g, at, d % 2 ** 32);
        break;
      }
      case Op.Chain: {
        // A list made available by MockPackedQueue at the guest's cursor: (a % 4) readable then
        // (b % 4) writable buffers of lengths from c and d, or one indirect descriptor (mod & 2).
        // Well-formed, it waits for room in the ring and takes the ids in turn (no more than `size`
        // lists are outstanding, so they differ); with mod & 1 it ignores the room and reuses an id
        // in flight (or a's high byte).
        if (mq === undefined || overlap) break;
        const lens = [
          ...Array.from({ length: a % 4 }, (_, k) => ({ len: ((c >>> (8 * k)) & 0xff) + 1, flags: 0 })),
          ...Array.from({ length: b % 4 }, (_, k) => ({ len: ((Math.floor(d) >>> (8 * k)) & 0xff) + 1, flags: VIRTQ_DESC_F_WRITE })),
        ];
        const table = indirect && (mod & 2) !== 0;
        const hostile = (mod & 1) !== 0;
        const lap = (pos: number, wrap: number): number => pos + (wrap === 1 ? 0 : size);
        const pending = (lap(mq.nextAvail, mq.availWrap) - lap(model.nextAvail, model.availWrap) + 2 * size) % (2 * size);
        const room = size - model.inFlightDescs - pending;
        if (lens.length === 0 || lens.length > size || (!hostile && (table ? 1 : lens.length) > room)) break;
        const held = [...inFlight.keys()];
        const id = !hostile ? chainsMade++ % size : held.length > 0 ? held[(a >> 8) % held.length]! : a >> 8;
        const bufs = lens.map((x) => ({ addr: mq.alloc(x.len), len: x.len, id: 0, flags: x.flags }));
        if (table) {
          const at = mq.alloc(bufs.length * PVIRTQ_DESC_SIZE, PACKED_RING.areaAlign.desc);
          bufs.forEach((x, k) => mq.writeDesc(at, k, x));
          mq.publish([{ addr: at, len: bufs.length * PVIRTQ_DESC_SIZE, id, flags: VIRTQ_DESC_F_INDIRECT }]);
        } else
          mq.publish(
            bufs.map((x, k) => ({
              ...x,
              id: k === bufs.length - 1 ? id : 0,
              flags: x.flags | (k < bufs.length - 1 ? VIRTQ_DESC_F_NEXT : 0),
            })),
          );
        break;
      }
      case Op.DriverEvent:
        // The driver event suppression area: flags (a & 3, or raw b with mod & 1), desc (c).
        g.write16(driverArea + PVIRTQ_EVENT_FLAGS, mod & 1 ? b : a & 3);
        g.write16(driverArea + PVIRTQ_EVENT_DESC, c & 0xffff);
        break;
      case Op.Pop: {
        const expected = overlap ? undefined : model.pop();
        const got = device('pop', () => q.pop());
        if (expected === undefined) {
          if (got !== null && !(got instanceof Error)) {
            chains.set(got.head, got);
            inFlight.set(got.head, { bufs: chainBuffers(got), descs: 0 });
          }
        } else if (expected === 'fault') {
          check(got instanceof QueueFaultError, 'contract', () => `pop should fault (reference walk), got ${describeChain(got)}`);
        } else if (expected === null) {
          check(got === null, 'contract', () => `pop should find nothing available, got ${describeChain(got)}`);
        } else {
          check(
            got !== null && !(got instanceof Error),
            'contract',
            () => `pop should return buffer id ${expected.id}, got ${describeChain(got)}`,
          );
          const chain = got;
          check(
            chain.head === expected.id && sameBuffers(chain, expected.bufs),
            'contract',
            () => `chain ${describeChain(chain)} differs from reference ${JSON.stringify(expected)}`,
          );
          chains.set(chain.head, chain);
        }
        break;
      }
      case Op.PushUsed: {
        if (chains.size === 0) break;
        const id = [...chains.keys()][a % chains.size]!;
        const chain = chains.get(id)!;
        const len = mod & 1 ? c : c % (chain.writableBytes + 1);
        const slot = model.nextUsed;
        const r = device(
          'device model writes + pushUsed',
          () => {
            writeIntoChain(chain, len);
            q.pushUsed(id, len);
          },
          overlap ? 'any' : slot,
          [QueueFaultError, UsageError],
        );
        if (len > chain.writableBytes) {
          check(r instanceof UsageError, 'contract', () => `pushUsed len ${len} > writable ${chain.writableBytes} accepted`);
          break;
        }
        check(!(r instanceof Error), 'contract', () => `pushUsed(${id}, ${len}) of a chain in flight failed: ${String(r)}`);
        chains.delete(id);
        if (overlap) {
          inFlight.delete(id);
          break;
        }
        const wrap = model.usedWrap;
        model.used(id);
        checkUsedDescriptor(g, desc + slot * PVIRTQ_DESC_SIZE, id, len, wrap);
        break;
      }
      case Op.PushUsedRaw: {
        const held = inFlight.has(a);
        const r = device('pushUsed (any id)', () => q.pushUsed(a, c), overlap ? 'any' : model.nextUsed, [QueueFaultError, UsageError]);
        if (!held) check(r instanceof QueueFaultError, 'contract', () => `pushUsed of id ${a}, not in flight, accepted`);
        else if (!(r instanceof Error)) {
          chains.delete(a);
          if (overlap) inFlight.delete(a);
          else model.used(a);
        }
        break;
      }
      case Op.Notify: {
        if (mod & 1) {
          const enable = (mod & 2) !== 0;
          device('setNotification', () => q.setNotification(enable));
          // Enabled, the driver must be asked to notify (else a hang): flags not DISABLE.
          if (enable && !overlap)
            check(
              (g.read16(deviceArea + PVIRTQ_EVENT_FLAGS) & 3) !== RING_EVENT_FLAGS_DISABLE,
              'contract',
              () => 'setNotification(true) left the device event suppression flags at DISABLE',
            );
        } else {
          const r = device('needsInterrupt', () => q.needsInterrupt());
          // After a fault the device needs a reset, and what it says of interrupts is not checked.
          if (r instanceof Error) model.interruptFault = true;
          else if (!overlap && !model.interruptFault) checkInterrupt(g, driverArea, eventIdx, model, r);
        }
        if (mod & 4 && !overlap) {
          const r = device('hasAvailable', () => q.hasAvailable());
          const want = model.hasAvailable();
          check(r === want, 'contract', () => `hasAvailable() ${String(r)}, the reference says ${want}`);
        }
        break;
      }
      case Op.Reset: {
        // The driver resets the device, zeroes the ring (2.8.10) and enables the queue again: a
        // new queue over the same areas must then work from the start.
        if (mem.contains(desc, ringLen)) g.view(desc, ringLen).fill(0);
        g.write32(driverArea, 0);
        g.write32(deviceArea, 0);
        inFlight.clear();
        chains.clear();
        const again = create();
        check(!(again instanceof Error), 'contract', () => `a new queue over the same valid areas was refused: ${describeChain(again)}`);
        q = again;
        model = new Model(g, size, desc, indirect, inFlight);
        if (mq !== undefined) Object.assign(mq, { nextAvail: 0, availWrap: 1, nextUsed: 0, usedWrap: 1 });
        break;
      }
      default:
        break;
    }
    check(inFlight.size <= size, 'memory-growth', () => `${inFlight.size} chains in flight on a queue of ${size}`);
  }
}

/** 2.8.4, 2.8.9: the used descriptor carries the buffer id, both wrap bits at the device's wrap counter, and len with WRITE. */
function checkUsedDescriptor(g: GuardedMemory['inner'], at: number, id: number, len: number, wrap: number): void {
  const flags = g.read16(at + PVIRTQ_DESC_FLAGS);
  const bits = wrap ? VIRTQ_DESC_F_AVAIL | VIRTQ_DESC_F_USED : 0;
  check(
    g.read16(at + PVIRTQ_DESC_ID) === id && (flags & (VIRTQ_DESC_F_AVAIL | VIRTQ_DESC_F_USED)) === bits,
    'contract',
    () =>
      `used descriptor at 0x${at.toString(16)}: id ${g.read16(at + PVIRTQ_DESC_ID)} flags 0x${flags.toString(16)}, want id ${id} wrap ${wrap}`,
  );
  if (len > 0)
    check(
      (flags & VIRTQ_DESC_F_WRITE) !== 0 && g.read32(at + PVIRTQ_DESC_LEN) === len,
      'contract',
      () => `used descriptor for id ${id}: len ${g.read32(at + PVIRTQ_DESC_LEN)} flags 0x${flags.toString(16)}, ${len} bytes written`,
    );
}

/**
 * 2.8.10: a used buffer notification may be spurious but never missing: with the driver's flags at
 * ENABLE any new used descriptor needs one; at DESC (EVENT_IDX) one whose position the device just
 * used (as vring_need_event over the 2*size positions of both laps) does.
 */
function checkInterrupt(g: GuardedMemory['inner'], driverArea: number, eventIdx: boolean, model: Model, got: boolean): void {
  const old = model.signalled;
  const now = model.usedPosition;
  const moved = model.movedSinceSignal;
  model.signalled = now;
  model.movedSinceSignal = 0;
  if (moved === 0) return;
  const flags = g.read16(driverArea + PVIRTQ_EVENT_FLAGS) & 3;
  let want = false;
  if (flags === RING_EVENT_FLAGS_ENABLE) want = true;
  else if (flags === RING_EVENT_FLAGS_DESC && eventIdx && moved < model.size) {
    const ev = g.read16(driverArea + PVIRTQ_EVENT_DESC);
    const laps = 2 * model.size;
    const off = ev & RING_EVENT_OFF_MASK;
    if (off < model.size) {
      const e = off + (ev >> RING_EVENT_WRAP_SHIFT === 1 ? 0 : model.size);
      want = (now - e - 1 + 2 * laps) % laps < (now - old + laps) % laps;
    }
  }
  if (want) check(got, 'contract', () => `needsInterrupt() false with driver event flags ${flags} after ${moved} used descriptors`);
}

function writeDesc(g: GuardedMemory['inner'], at: number, addr: number, len: number, id: number, flags: number): void {
  g.write64(at, BigInt.asUintN(64, BigInt(Math.floor(addr))));
  g.write32(at + PVIRTQ_DESC_LEN, len);
  g.write16(at + PVIRTQ_DESC_ID, id & 0xffff);
  g.write16(at + PVIRTQ_DESC_FLAGS, flags);
}

// ---- seeds: the split ring's CVE shapes in packed form, and the packed ring's own ----

/** The header: queue size (1..64, or `raw` 0..127), flags (1 event idx, 2 indirect, base << 2, 0x10 raw rings), placement, raw offsets. */
function header(
  size: number,
  opts: { eventIdx?: boolean; indirect?: boolean; base?: number; raw?: [number, number, number]; rawSize?: boolean } = {},
): InputWriter {
  const flags = (opts.eventIdx ? 1 : 0) | (opts.indirect ? 2 : 0) | ((opts.base ?? 0) << 2) | (opts.raw ? 0x10 : 0);
  const w = new InputWriter()
    .u8(opts.rawSize ? 0x80 | size : size - 1)
    .u8(flags)
    .u16(0x1234);
  for (const o of opts.raw ?? [0, 0, 0]) w.u16(o);
  return w;
}
function op(w: InputWriter, code: Op, mod: number, a: number, b: number, c: number, d: number): InputWriter {
  return w
    .u8(code | (mod << 4))
    .u16(a)
    .u16(b)
    .u32(c)
    .u64(d);
}
/** Descriptor at `slot` = {addr: data offset (or raw 64-bit), len, id, flags}, marked as `mark` says for its lap. */
function desc(
  w: InputWriter,
  slot: number,
  off: number,
  len: number,
  id: number,
  flags: number,
  opts: { mark?: Mark; raw?: boolean } = {},
): InputWriter {
  return op(w, Op.Desc, (opts.mark ?? Mark.Available) | (opts.raw ? 8 : 0), slot | (id << 8), flags, len, off);
}
/** A list of `r` readable and `wr` writable buffers (lengths from the bytes of c and d); `hostile`: no wait for room, an id in flight (else `idSeed`). */
function chain(w: InputWriter, r: number, wr: number, opts: { indirect?: boolean; idSeed?: number; hostile?: boolean } = {}): InputWriter {
  return op(w, Op.Chain, (opts.hostile ? 1 : 0) | (opts.indirect ? 2 : 0), r | ((opts.idSeed ?? 0) << 8), wr, 0x10203040, 0x05060708);
}
function pop(w: InputWriter, n = 1): InputWriter {
  for (let i = 0; i < n; i++) op(w, Op.Pop, 0, 0, 0, 0, 0);
  return w;
}
function push(w: InputWriter, n = 1, len = 0x40): InputWriter {
  for (let i = 0; i < n; i++) op(w, Op.PushUsed, 0, 0, 0, len, 0);
  return w;
}
function notify(w: InputWriter, mod: number): InputWriter {
  return op(w, Op.Notify, mod, 0, 0, 0, 0);
}

export function seeds(): Seed[] {
  const s: Seed[] = [];
  const add = (name: string, w: InputWriter): void => void s.push({ name, data: w.finish() });
  {
    const w = header(8, { indirect: true });
    for (let i = 0; i < 6; i++) chain(w, 1 + (i % 3), 1 + (i % 2), { indirect: i % 3 === 2 });
    pop(w, 6);
    push(w, 6);
    add('well-formed-traffic', notify(w, 1 | 4));
  }
  {
    // A queue of 3 (not a power of two): lists of one and two descriptors across several laps,
    // completed out of order.
    const w = header(3);
    for (let lap = 0; lap < 6; lap++) {
      chain(w, 1, 0);
      chain(w, 0, 1);
      pop(w, 2);
      op(w, Op.PushUsed, 0, 1, 0, 8, 0);
      push(w, 1, 4);
      chain(w, 1, 1);
      pop(w);
      push(w);
    }
    add('non-power-of-two-size-wraps', notify(w, 4));
  }
  add('queue-size-127', pop(chain(header(127, { rawSize: true }), 2, 2)));
  add('queue-size-zero', header(0, { rawSize: true }));
  add('misaligned-rings', header(4, { raw: [8, 0x1002, 0x2001] }));
  add('rings-outside-memory', header(64, { raw: [MEM_SIZE - 16, 0, 0x100] }));
  {
    // Every descriptor available and chained: the list would run round the ring into itself.
    const w = header(4);
    for (let k = 0; k < 4; k++) desc(w, k, DATA + 16 * k, 16, 0, VIRTQ_DESC_F_NEXT);
    add('list-longer-than-ring', pop(w));
  }
  {
    const w = header(4);
    desc(w, 0, DATA, 16, 0, VIRTQ_DESC_F_NEXT);
    desc(w, 1, DATA + 16, 16, 3, 0, { mark: Mark.OtherLap });
    add('list-continues-into-unavailable-descriptor', pop(w));
  }
  {
    const w = header(4);
    desc(w, 0, DATA, 16, 1, 0, { mark: Mark.UsedLooking });
    desc(w, 1, DATA, 16, 2, 0, { mark: Mark.Zero });
    add('used-looking-and-zero-descriptors-are-not-available', notify(pop(w), 4));
  }
  {
    const w = header(8, { indirect: true });
    desc(w, 0, DATA, 32, 0, VIRTQ_DESC_F_INDIRECT);
    // indirect table at DATA: entry 0 has INDIRECT set (reserved in a table, 2.8.7: ignored)
    op(w, Op.Poke, 3, DATA, 0, 0, DATA + 0x100);
    op(w, Op.Poke, 2, DATA + 8, 0, 0, 16);
    op(w, Op.Poke, 1, DATA + 14, 0, 0, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_NEXT);
    add('indirect-entry-with-reserved-flags', pop(w));
  }
  {
    const w = header(4, { indirect: true });
    desc(w, 0, DATA, 16, 0, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_NEXT);
    desc(w, 1, DATA + 0x100, 16, 0, 0);
    add('indirect-with-next', pop(w));
  }
  {
    const w = header(4, { indirect: true });
    desc(w, 0, DATA + 0x100, 16, 0, VIRTQ_DESC_F_NEXT);
    desc(w, 1, DATA, 16, 0, VIRTQ_DESC_F_INDIRECT);
    add('indirect-inside-a-list', pop(w));
  }
  {
    const w = header(4, { indirect: true });
    desc(w, 0, DATA, 0, 0, VIRTQ_DESC_F_INDIRECT);
    desc(w, 1, DATA, 17, 1, VIRTQ_DESC_F_INDIRECT);
    desc(w, 2, DATA, 16 * 5, 2, VIRTQ_DESC_F_INDIRECT); // five entries on a queue of four
    add('indirect-bad-length', pop(w, 3));
  }
  {
    const w = header(4, { indirect: true });
    desc(w, 0, MEM_SIZE - 16, 32, 0, VIRTQ_DESC_F_INDIRECT);
    desc(w, 1, 0x10_0000_0000, 16, 1, VIRTQ_DESC_F_INDIRECT, { raw: true });
    add('indirect-table-outside-memory', pop(w, 2));
  }
  {
    // An indirect table of a device-writable entry, then a device-readable one.
    const w = header(4, { indirect: true });
    desc(w, 0, DATA, 32, 0, VIRTQ_DESC_F_INDIRECT);
    op(w, Op.Poke, 3, DATA, 0, 0, DATA + 0x100);
    op(w, Op.Poke, 2, DATA + 8, 0, 0, 16);
    op(w, Op.Poke, 1, DATA + 14, 0, 0, VIRTQ_DESC_F_WRITE);
    op(w, Op.Poke, 3, DATA + 16, 0, 0, DATA + 0x200);
    op(w, Op.Poke, 2, DATA + 24, 0, 0, 16);
    add('indirect-readable-after-writable', pop(w));
  }
  add('indirect-not-negotiated', pop(desc(header(4), 0, DATA, 16, 0, VIRTQ_DESC_F_INDIRECT)));
  {
    const w = header(4);
    desc(w, 0, DATA, 0, 0, 0);
    desc(w, 1, 0, 0xffffffff, 1, VIRTQ_DESC_F_WRITE, { raw: true });
    add('zero-length-and-4gib-buffers', pop(w, 2));
  }
  add('buffer-straddles-end-of-memory', pop(desc(header(4), 0, MEM_SIZE - 8, 16, 0, VIRTQ_DESC_F_WRITE)));
  {
    const w = header(4, { base: 1 });
    desc(w, 0, 0xffff_ffff_ffff_f000, 0x2000, 0, 0, { raw: true }); // addr + len wraps 2^64
    desc(w, 1, 0x1_0000_0000 - 0x1000, 16, 1, 0, { raw: true }); // a real address just below 4 GiB
    add('64-bit-address-wrap', pop(w, 2));
  }
  {
    const w = header(4);
    desc(w, 0, DATA, 16, 0, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT);
    desc(w, 1, DATA + 16, 16, 0, 0);
    add('readable-after-writable', pop(w));
  }
  {
    // The same buffer id twice in flight.
    const w = header(8);
    chain(w, 1, 1);
    pop(w);
    chain(w, 1, 0, { hostile: true });
    add('buffer-id-twice-in-flight', pop(w));
  }
  {
    const w = header(8);
    desc(w, 0, DATA, 8, 8, 0);
    desc(w, 1, DATA, 8, 0xff, 0);
    add('buffer-id-beyond-queue-size', pop(w, 2));
  }
  {
    const w = header(4);
    desc(w, 0, DATA, 16, 0, VIRTQ_DESC_F_WRITE);
    pop(w);
    op(w, Op.PushUsed, 1, 0, 0, 17, 0); // len larger than the writable buffer
    op(w, Op.PushUsedRaw, 0, 3, 0, 0, 0); // an id never popped
    add('used-len-too-large-and-unknown-id', w);
  }
  {
    // Lists of two in a ring of 4, one held: the guest reuses slots still in flight for a new lap.
    const w = header(4);
    chain(w, 1, 1);
    chain(w, 1, 1);
    pop(w, 2);
    push(w);
    chain(w, 1, 1);
    chain(w, 1, 1, { hostile: true });
    add('more-descriptors-in-flight-than-the-ring-has', pop(w, 3));
  }
  {
    const w = header(5, { eventIdx: true });
    for (let i = 0; i < 4; i++) chain(w, 0, 1);
    notify(w, 1 | 2);
    pop(w, 4);
    op(w, Op.DriverEvent, 0, RING_EVENT_FLAGS_DESC, 0, 2 | (1 << RING_EVENT_WRAP_SHIFT), 0);
    for (let i = 0; i < 4; i++) notify(push(w, 1, 4), 0);
    op(w, Op.DriverEvent, 0, RING_EVENT_FLAGS_DISABLE, 0, 0, 0);
    add('event-suppression', notify(push(pop(chain(w, 1, 0))), 1));
  }
  {
    // A fault, then a reset and well-formed traffic on the new queue.
    const w = header(6, { indirect: true });
    desc(w, 0, DATA, 16, 0, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_NEXT);
    pop(w, 2);
    op(w, Op.Reset, 0, 0, 0, 0, 0);
    for (let i = 0; i < 5; i++) chain(w, 1, 2, { indirect: i === 3 });
    add('reset-after-fault-then-traffic', push(pop(w, 5), 5));
  }
  return s;
}

function dictionary(): Uint8Array[] {
  const d: Uint8Array[] = [];
  for (const f of [0, VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE, VIRTQ_DESC_F_INDIRECT, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE])
    d.push(desc(new InputWriter(), 0, DATA, 16, 0, f).finish());
  d.push(pop(new InputWriter()).finish(), chain(new InputWriter(), 2, 2).finish(), push(new InputWriter()).finish());
  return d;
}
