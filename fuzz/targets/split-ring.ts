/**
 * Target (a): the device half of a split virtqueue (SplitQueue, built through the seam the transport
 * uses) walking descriptor chains from arbitrary ring memory and indices. The input is a ring geometry and a script of guest writes
 * (descriptors, avail slots, avail.idx, raw pokes, well-formed chains from MockQueue) interleaved
 * with device operations (pop, pushUsed, notification control).
 *
 * Guarantees checked: pop/pushUsed/hasAvailable throw only QueueFaultError (and UsageError for a
 * device model's bad len); every pop agrees with an independent reference walk of the same memory
 * (same fault-or-chain, same buffers); the device writes only the used ring and the writable buffers
 * of chains in flight, and views only the rings, the indirect tables the descriptor table names,
 * and its chains' buffers; used elements land where 2.7.8 says.
 */

import { QueueFaultError, UsageError } from '../../src/errors.js';
import { SPLIT_RING } from '../../src/queue/ring-format.js';
import { deviceRing } from '../../src/queue/rings.js';
import { SplitQueue } from '../../src/queue/split/device-ring.js';
import type { DescriptorChain } from '../../src/queue/types.js';
import {
  VIRTQ_AVAIL_ELEM_SIZE,
  VIRTQ_AVAIL_FLAGS,
  VIRTQ_AVAIL_IDX,
  VIRTQ_AVAIL_RING,
  VIRTQ_DESC_F_INDIRECT,
  VIRTQ_DESC_F_NEXT,
  VIRTQ_DESC_F_WRITE,
  VIRTQ_DESC_SIZE,
  VIRTQ_USED_ELEM_SIZE,
  VIRTQ_USED_IDX,
  VIRTQ_USED_RING,
  availRingSize,
  descTableSize,
  usedRingSize,
} from '../../src/spec/ring.js';
import { VIRTIO_F_EVENT_IDX, VIRTIO_F_INDIRECT_DESC, bit } from '../../src/spec/features.js';
import { GuardedMemory } from '../../src/testing/guarded-memory.js';
import { MockQueue } from '../../src/testing/mock-queue.js';
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

export const description = 'split ring device side: chain walks from arbitrary descriptors, avail ring and indices';

export const shape: MutationShape = ringRecordShape(dictionary());

const enum Op {
  Desc = 0,
  AvailSlot = 1,
  AvailIdx = 2,
  Poke = 3,
  AddChain = 4,
  Pop = 5,
  PushUsed = 6,
  PushUsedRaw = 7,
  Notify = 8,
  EventFields = 9,
}

/** The reference model's view of the queue: what the spec says the device must do. */
class Model {
  lastAvail = 0;
  availShadow = 0;
  used = 0;

  constructor(
    private readonly mem: GuardedMemory,
    readonly size: number,
    readonly desc: number,
    readonly avail: number,
    readonly usedRing: number,
    readonly indirect: boolean,
    /** Buffers of the chains in flight, by head (shared with the guard's allowances). */
    readonly inFlight: Map<number, Buf[]>,
  ) {}

  /** What pop() must do: 'fault', null (empty) or the buffers of the next chain. */
  pop(): 'fault' | null | { head: number; bufs: Buf[] } {
    if (this.lastAvail === this.availShadow) {
      const idx = this.mem.inner.read16(this.avail + VIRTQ_AVAIL_IDX);
      const outstanding = (idx - this.used) & 0xffff;
      if (outstanding > this.size || outstanding < ((this.lastAvail - this.used) & 0xffff)) return 'fault';
      this.availShadow = idx;
      if (idx === this.lastAvail) return null;
    }
    const head = this.mem.inner.read16(this.avail + VIRTQ_AVAIL_RING + (this.lastAvail % this.size) * VIRTQ_AVAIL_ELEM_SIZE);
    if (head >= this.size || this.inFlight.has(head)) return 'fault';
    const bufs = this.walk(head);
    if (bufs === 'fault') return 'fault';
    this.inFlight.set(head, bufs);
    this.lastAvail = (this.lastAvail + 1) & 0xffff;
    return { head, bufs };
  }

  /** 2.7.5.2/2.7.5.3: a bounded walk, at most one level of indirection, readable before writable. */
  private walk(head: number): Buf[] | 'fault' {
    const m = this.mem.inner;
    let table = this.desc;
    let entries = this.size;
    let visits = 0;
    let inIndirect = false;
    let i = head;
    const bufs: Buf[] = [];
    for (;;) {
      if (++visits > entries) return 'fault';
      const at = table + i * VIRTQ_DESC_SIZE;
      const addr = Number(m.read64(at));
      const len = m.read32(at + 8);
      const flags = m.read16(at + 12);
      const next = m.read16(at + 14);
      const exact = m.read64(at) < 2n ** 53n;
      if (flags & VIRTQ_DESC_F_INDIRECT) {
        if (!this.indirect || inIndirect || flags & VIRTQ_DESC_F_NEXT) return 'fault';
        if (len === 0 || len % VIRTQ_DESC_SIZE !== 0 || len / VIRTQ_DESC_SIZE > this.size) return 'fault';
        if (!exact || !m.contains(addr, len)) return 'fault';
        table = addr;
        entries = len / VIRTQ_DESC_SIZE;
        visits = 0;
        inIndirect = true;
        i = 0;
        continue;
      }
      const buf = readBuffer(m, at, (flags & VIRTQ_DESC_F_WRITE) !== 0);
      if (buf === null || !pushBuffer(bufs, buf, SPLIT_RING.maxChainBuffers(this.size))) return 'fault';
      if (!(flags & VIRTQ_DESC_F_NEXT)) break;
      if (next >= entries) return 'fault';
      i = next;
    }
    return totalBytes(bufs) > SPLIT_RING.maxChainBytes ? 'fault' : bufs;
  }
}

export function run(data: Uint8Array): void {
  const input = new FuzzInput(data);
  // Mostly a power of two up to 128; with the top bit, any size (the constructor must refuse it).
  const sizeByte = input.u8();
  const size = sizeByte & 0x80 ? sizeByte & 0x7f : 1 << (sizeByte % 8);
  const flags = input.u8();
  const eventIdx = (flags & 1) !== 0;
  const indirect = (flags & 2) !== 0;
  const base = BASES[((flags >> 2) & 3) % BASES.length]!;
  const rawRings = (flags & 0x10) !== 0;
  const placementSeed = input.u16();
  const rawOffsets = [input.u16(), input.u16(), input.u16()].map((o) => base + (o % MEM_SIZE));
  const mem = new GuardedMemory(MEM_SIZE, { base });
  const mq = rawRings ? undefined : new MockQueue({ size, memory: mem.inner, base, seed: placementSeed, maxGap: 256 });
  const [desc, avail, used] = mq === undefined ? rawOffsets : [mq.descAddr, mq.availAddr, mq.usedAddr];
  const ringsFit = [desc, avail, used].every((a, k) => mem.contains(a!, [descTableSize, availRingSize, usedRingSize][k]!(size)));

  const g = mem.inner; // the guest writes unguarded
  const inFlight = new Map<number, Buf[]>();

  /** Run one device operation under the guard: only the rings, indirect tables and chains in flight. */
  const device = <T>(what: string, fn: () => T, allowed: readonly ErrorClass[] = [QueueFaultError]): T | Error =>
    guardedCall(
      mem,
      what,
      () => {
        mem.allowRead(desc!, descTableSize(size), 'descriptor table');
        mem.allowRead(avail!, availRingSize(size), 'avail ring');
        mem.allowWrite(used!, usedRingSize(size), 'used ring');
        if (mem.contains(desc!, descTableSize(size))) {
          for (let k = 0; k < size; k++) {
            const at = desc! + k * VIRTQ_DESC_SIZE;
            if (g.read16(at + 12) & VIRTQ_DESC_F_INDIRECT) mem.allowRead(Number(g.read64(at)), g.read32(at + 8), 'indirect table');
          }
        }
        allowChainBuffers(mem, inFlight.values());
      },
      fn,
      allowed,
    );

  // The device's rings may legitimately be refused (misaligned, outside memory): then nothing runs.
  const features = (eventIdx ? bit(VIRTIO_F_EVENT_IDX) : 0n) | (indirect ? bit(VIRTIO_F_INDIRECT_DESC) : 0n);
  const areas = { desc: desc!, driver: avail!, device: used! };
  const created = device('deviceRing (SplitQueue constructor)', () => deviceRing({ index: 0, size, memory: mem, areas, features }));
  if (!(created instanceof SplitQueue)) {
    const align = SPLIT_RING.areaAlign;
    const aligned = desc! % align.desc === 0 && avail! % align.driver === 0 && used! % align.device === 0;
    check(
      !SPLIT_RING.isQueueSize(size) || !ringsFit || !aligned,
      'contract',
      () => `rings refused though aligned and in memory: ${created instanceof Error ? created.message : 'not a split ring'}`,
    );
    return;
  }
  check(
    ringsFit && SPLIT_RING.isQueueSize(size),
    'contract',
    () => `SplitQueue accepted rings outside guest memory or a queue size of ${size}`,
  );
  const q = created;
  const model = new Model(mem, size, desc!, avail!, used!, indirect, inFlight);
  // Rings that overlap (a hostile layout) make the device's own used-ring writes (avail_event, used
  // elements) change descriptors mid-run; the reference walk cannot follow that timing, so only the
  // typed-error and memory guarantees are checked then.
  const lengths = [descTableSize(size), availRingSize(size), usedRingSize(size)];
  const rings = [desc!, avail!, used!];
  const overlap = rings.some((x, i) => rings.some((y, j) => i < j && x < y + lengths[j]! && y < x + lengths[i]!));
  const chains = new Map<number, DescriptorChain>();

  for (let n = 0; n < MAX_OPS && !input.done; n++) {
    const opByte = input.u8();
    const a = input.u16();
    const b = input.u16();
    const c = input.u32();
    const d = input.u64();
    const mod = opByte >> 4;
    switch ((opByte & 0xf) as Op) {
      case Op.Desc: {
        const addr = mod & 8 ? d : base + (d % MEM_SIZE);
        writeDesc(g, desc! + (a % size) * VIRTQ_DESC_SIZE, addr, c, mod & 7, b);
        break;
      }
      case Op.AvailSlot:
        g.write16(avail! + VIRTQ_AVAIL_RING + (a % size) * VIRTQ_AVAIL_ELEM_SIZE, b);
        break;
      case Op.AvailIdx: {
        const idx = g.read16(avail! + VIRTQ_AVAIL_IDX);
        g.write16(avail! + VIRTQ_AVAIL_IDX, mod === 0 ? idx + 1 : mod === 1 ? a : idx + a);
        break;
      }
      case Op.Poke: {
        const width = [1, 2, 4, 8][mod & 3]!;
        const at = base + ((((b << 16) | a) >>> 0) % (MEM_SIZE - 7));
        if (width === 8) g.write64(at, BigInt(Math.floor(d)));
        else [g.write8, g.write16, g.write32][[1, 2, 4].indexOf(width)]!.call(g, at, d % 2 ** 32);
        break;
      }
      case Op.AddChain: {
        if (mq === undefined) break;
        const readable = Array.from({ length: a % 4 }, (_, k) => new Uint8Array(((c >>> (8 * k)) & 0xff) + (mod & 1)));
        const writable = Array.from({ length: b % 4 }, (_, k) => ((Math.floor(d) >>> (8 * k)) & 0xff) + (mod & 1));
        if (readable.length + writable.length === 0) break;
        mq.availIdx = g.read16(avail! + VIRTQ_AVAIL_IDX);
        try {
          mq.addChain({ readable, writable, indirect: indirect && (mod & 2) !== 0 });
        } catch {
          // The mock ran out of free descriptors or room: the guest simply adds nothing.
        }
        break;
      }
      case Op.Pop: {
        if (overlap) {
          const got = device('pop', () => q.pop());
          if (got !== null && !(got instanceof Error)) {
            chains.set(got.head, got);
            inFlight.set(got.head, chainBuffers(got));
          }
          break;
        }
        const expected = model.pop();
        const got = device('pop', () => q.pop());
        if (expected === 'fault') {
          check(got instanceof QueueFaultError, 'contract', () => `pop should fault (reference walk), got ${describeChain(got)}`);
        } else if (expected === null) {
          check(got === null, 'contract', () => `pop should find the ring empty, got ${describeChain(got)}`);
        } else {
          check(
            got !== null && !(got instanceof Error),
            'contract',
            () => `pop should return chain ${expected.head}, got ${describeChain(got)}`,
          );
          const chain = got;
          check(
            sameChain(chain, expected.head, expected.bufs),
            'contract',
            () => `chain ${describeChain(chain)} differs from reference ${JSON.stringify(expected)}`,
          );
          chains.set(chain.head, chain);
        }
        break;
      }
      case Op.PushUsed: {
        if (chains.size === 0) break;
        const head = [...chains.keys()][a % chains.size]!;
        const chain = chains.get(head)!;
        const len = mod & 1 ? c : c % (chain.writableBytes + 1);
        const r = device(
          'device model writes + pushUsed',
          () => {
            // Play the device model: fill the written prefix of the writable buffers through views.
            writeIntoChain(chain, len);
            q.pushUsed(head, len);
          },
          [QueueFaultError, UsageError],
        );
        if (len > chain.writableBytes) {
          check(r instanceof UsageError, 'contract', () => `pushUsed len ${len} > writable ${chain.writableBytes} accepted`);
          break;
        }
        check(!(r instanceof Error), 'contract', () => `pushUsed(${head}, ${len}) of an in-flight chain failed: ${String(r)}`);
        const elem = used! + VIRTQ_USED_RING + (model.used % size) * VIRTQ_USED_ELEM_SIZE;
        model.used = (model.used + 1) & 0xffff;
        check(
          g.read32(elem) === head && g.read32(elem + 4) === len && g.read16(used! + VIRTQ_USED_IDX) === model.used,
          'contract',
          () => 'used element or used.idx not where 2.7.8 puts them',
        );
        model.inFlight.delete(head);
        chains.delete(head);
        break;
      }
      case Op.PushUsedRaw: {
        const r = device('pushUsed (any head)', () => q.pushUsed(a, c), [QueueFaultError, UsageError]);
        if (!model.inFlight.has(a)) check(r instanceof QueueFaultError, 'contract', () => `pushUsed of head ${a}, never popped, accepted`);
        else if (!(r instanceof Error)) {
          model.used = (model.used + 1) & 0xffff;
          model.inFlight.delete(a);
          chains.delete(a);
        }
        break;
      }
      case Op.Notify: {
        if (mod & 1) device('setNotification', () => q.setNotification((mod & 2) !== 0));
        else device('needsInterrupt', () => q.needsInterrupt());
        // hasAvailable reads avail.idx like pop: keep the model's shadow in step.
        if (mod & 4 && !overlap && model.lastAvail === model.availShadow) {
          const r = device('hasAvailable', () => q.hasAvailable());
          const idx = g.read16(avail! + VIRTQ_AVAIL_IDX);
          const outstanding = (idx - model.used) & 0xffff;
          const bad = outstanding > size || outstanding < ((model.lastAvail - model.used) & 0xffff);
          check(bad === r instanceof QueueFaultError, 'contract', () => `hasAvailable on avail idx ${idx}: ${String(r)}`);
          if (!bad) model.availShadow = idx;
        }
        break;
      }
      case Op.EventFields:
        g.write16(avail! + VIRTQ_AVAIL_FLAGS, b & 1);
        g.write16(avail! + VIRTQ_AVAIL_RING + size * VIRTQ_AVAIL_ELEM_SIZE, a);
        break;
      default:
        break;
    }
    check(
      q.inFlightChains === model.inFlight.size && q.inFlightChains <= size,
      'memory-growth',
      () => `${q.inFlightChains} chains in flight, model ${model.inFlight.size}`,
    );
  }
}

function writeDesc(g: GuardedMemory['inner'], at: number, addr: number, len: number, flags: number, next: number): void {
  g.write64(at, BigInt.asUintN(64, BigInt(Math.floor(addr))));
  g.write32(at + 8, len);
  g.write16(at + 12, flags);
  g.write16(at + 14, next);
}

function sameChain(chain: DescriptorChain, head: number, bufs: readonly Buf[]): boolean {
  return chain.head === head && sameBuffers(chain, bufs);
}

// ---- seeds: the known virtio CVE shapes, built by name ----

/** The header: queue size log2 (top bit: a raw size instead), flags (1 event idx, 2 indirect, base index << 2, 0x10 raw rings), seed, raw ring offsets. */
function header(
  sizeLog2: number,
  opts: { eventIdx?: boolean; indirect?: boolean; base?: number; raw?: [number, number, number] } = {},
): InputWriter {
  const flags = (opts.eventIdx ? 1 : 0) | (opts.indirect ? 2 : 0) | ((opts.base ?? 0) << 2) | (opts.raw ? 0x10 : 0);
  const w = new InputWriter().u8(sizeLog2).u8(flags).u16(7);
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
/** Descriptor `index` = {addr: data offset (or raw 64-bit with raw), len, flags, next}. */
function desc(w: InputWriter, index: number, off: number, len: number, flags: number, next: number, raw = false): InputWriter {
  return op(w, Op.Desc, flags | (raw ? 8 : 0), index, next, len, off);
}
/** Put `head` in avail ring slot `slot` and move avail.idx on by one. */
function publish(w: InputWriter, slot: number, head: number): InputWriter {
  return op(op(w, Op.AvailSlot, 0, slot, head, 0, 0), Op.AvailIdx, 0, 0, 0, 0, 0);
}
function pop(w: InputWriter): InputWriter {
  return op(w, Op.Pop, 0, 0, 0, 0, 0);
}

export function seeds(): Seed[] {
  const s: Seed[] = [];
  const add = (name: string, w: InputWriter): void => void s.push({ name, data: w.finish() });
  {
    const w = header(3, { indirect: true });
    for (let i = 0; i < 6; i++) op(w, Op.AddChain, i & 3, 1 + (i % 3), 1 + (i % 2), 0x10203040, 0x08070605);
    for (let i = 0; i < 6; i++) pop(w);
    for (let i = 0; i < 6; i++) op(w, Op.PushUsed, 0, 0, 0, 0x40, 0);
    add('well-formed-traffic', op(w, Op.Notify, 1 | 4, 0, 0, 0, 0));
  }
  {
    const w = header(2);
    desc(w, 0, DATA, 16, VIRTQ_DESC_F_NEXT, 1);
    desc(w, 1, DATA + 16, 16, VIRTQ_DESC_F_NEXT, 0);
    add('looped-chain', pop(publish(w, 0, 0)));
  }
  {
    const w = header(2);
    desc(w, 2, DATA, 16, VIRTQ_DESC_F_NEXT, 2);
    add('self-loop', pop(publish(w, 0, 2)));
  }
  {
    const w = header(3, { indirect: true });
    desc(w, 0, DATA, 32, VIRTQ_DESC_F_INDIRECT, 0);
    // indirect table at DATA: entry 0 is itself INDIRECT (nested)
    op(w, Op.Poke, 3, DATA, 0, 0, DATA + 0x100);
    op(w, Op.Poke, 2, DATA + 8, 0, 0, 16);
    op(w, Op.Poke, 1, DATA + 12, 0, 0, VIRTQ_DESC_F_INDIRECT);
    add('nested-indirect', pop(publish(w, 0, 0)));
  }
  {
    const w = header(3, { indirect: true });
    desc(w, 0, DATA, 16 * 8, VIRTQ_DESC_F_INDIRECT, 0);
    for (let k = 0; k < 8; k++) {
      op(w, Op.Poke, 3, DATA + 16 * k, 0, 0, DATA + 0x200);
      op(w, Op.Poke, 2, DATA + 16 * k + 8, 0, 0, 8);
      op(w, Op.Poke, 2, DATA + 16 * k + 12, 0, 0, VIRTQ_DESC_F_NEXT | (((k + 1) % 8) << 16));
    }
    add('looped-indirect-table', pop(publish(w, 0, 0)));
  }
  {
    const w = header(3, { indirect: true });
    desc(w, 0, DATA, 16, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_NEXT, 1);
    add('indirect-with-next', pop(publish(w, 0, 0)));
  }
  {
    // An indirect table straddling the end of memory, and one far beyond it.
    const w = header(2, { indirect: true });
    desc(w, 0, MEM_SIZE - 16, 32, VIRTQ_DESC_F_INDIRECT, 0);
    desc(w, 1, 0x10_0000_0000, 16, VIRTQ_DESC_F_INDIRECT, 0, true);
    add('indirect-table-outside-memory', pop(publish(pop(publish(w, 0, 0)), 1, 1)));
  }
  {
    // Two direct buffers, then an indirect table of four on a queue of four: five buffers in all.
    const w = header(2, { indirect: true });
    desc(w, 0, DATA + 0x100, 8, VIRTQ_DESC_F_NEXT, 1);
    desc(w, 1, DATA + 0x108, 8, VIRTQ_DESC_F_NEXT, 2);
    desc(w, 2, DATA, 64, VIRTQ_DESC_F_INDIRECT, 0);
    for (let k = 0; k < 4; k++) {
      op(w, Op.Poke, 3, DATA + 16 * k, 0, 0, DATA + 0x200 + 8 * k);
      op(w, Op.Poke, 2, DATA + 16 * k + 8, 0, 0, 8);
      op(w, Op.Poke, 2, DATA + 16 * k + 12, 0, 0, k < 3 ? VIRTQ_DESC_F_NEXT | ((k + 1) << 16) : 0);
    }
    add('direct-prefix-plus-indirect-longer-than-queue', pop(publish(w, 0, 0)));
  }
  {
    const w = header(2, { indirect: true });
    desc(w, 0, DATA, 0, VIRTQ_DESC_F_INDIRECT, 0);
    desc(w, 1, DATA, 17, VIRTQ_DESC_F_INDIRECT, 0);
    add('indirect-bad-length', pop(publish(pop(publish(w, 0, 0)), 1, 1)));
  }
  {
    const w = header(2);
    desc(w, 0, DATA, 16, 0, 0);
    op(w, Op.AvailIdx, 1, 4 + 1, 0, 0, 0); // avail.idx jumps size + 1 past used
    add('avail-index-jump', pop(pop(w)));
  }
  {
    const w = header(2);
    op(w, Op.AvailIdx, 1, 0xffff, 0, 0, 0); // avail idx moves backwards (wraps)
    add('avail-index-backwards', pop(w));
  }
  {
    const w = header(2);
    add('head-beyond-queue', pop(publish(w, 0, 4)));
  }
  {
    const w = header(2);
    desc(w, 0, DATA, 16, 0, 0);
    add('head-twice-in-flight', pop(pop(publish(publish(w, 0, 0), 1, 0))));
  }
  {
    const w = header(2);
    desc(w, 0, DATA, 16, VIRTQ_DESC_F_NEXT, 9);
    add('next-beyond-table', pop(publish(w, 0, 0)));
  }
  {
    const w = header(2);
    desc(w, 0, DATA, 0, 0, 0);
    desc(w, 1, 0, 0xffffffff, VIRTQ_DESC_F_WRITE, 0, true);
    add('zero-length-and-4gib-buffers', pop(publish(pop(publish(w, 0, 0)), 1, 1)));
  }
  {
    const w = header(2);
    desc(w, 0, MEM_SIZE - 8, 16, VIRTQ_DESC_F_WRITE, 0);
    add('buffer-straddles-end-of-memory', pop(publish(w, 0, 0)));
  }
  {
    const w = header(2, { base: 1 });
    desc(w, 0, 0xffff_ffff_ffff_f000, 0x2000, 0, 0, true); // addr + len wraps 2^64
    desc(w, 1, 0x1_0000_0000 - 0x1000, 16, 0, 0, true); // a real address just below 4 GiB
    add('64-bit-address-wrap', pop(publish(pop(publish(w, 0, 0)), 1, 1)));
  }
  {
    const w = header(2);
    desc(w, 0, DATA, 16, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);
    desc(w, 1, DATA + 16, 16, 0, 0);
    add('readable-after-writable', pop(publish(w, 0, 0)));
  }
  {
    const w = header(2);
    desc(w, 0, DATA, 16, VIRTQ_DESC_F_INDIRECT, 0);
    add('indirect-not-negotiated', pop(publish(w, 0, 0)));
  }
  {
    const w = header(2);
    desc(w, 0, DATA, 16, VIRTQ_DESC_F_WRITE, 0);
    pop(publish(w, 0, 0));
    op(w, Op.PushUsed, 1, 0, 0, 17, 0); // len larger than the writable buffer
    op(w, Op.PushUsedRaw, 0, 3, 0, 0, 0); // a head never popped
    add('used-len-too-large-and-unknown-head', w);
  }
  add('misaligned-rings', header(2, { raw: [8, 0x1001, 0x2002] }));
  add('queue-size-not-power-of-two', header(0x80 | 3));
  add('queue-size-zero', header(0x80));
  add('rings-outside-memory', header(7, { raw: [MEM_SIZE - 16, 0, 0x100] }));
  {
    const w = header(3, { eventIdx: true });
    for (let i = 0; i < 4; i++) op(w, Op.AddChain, 0, 1, 1, 0x10101010, 0x10101010);
    op(w, Op.Notify, 1 | 2, 0, 0, 0, 0);
    for (let i = 0; i < 4; i++) op(op(w, Op.EventFields, 0, i, 0, 0, 0), Op.PushUsed, 0, 0, 0, 4, 0);
    add('event-idx', op(pop(pop(pop(pop(w)))), Op.Notify, 0, 0, 0, 0, 0));
  }
  return s;
}

function dictionary(): Uint8Array[] {
  const d: Uint8Array[] = [];
  for (const f of [0, VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE, VIRTQ_DESC_F_INDIRECT, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE])
    d.push(desc(new InputWriter(), 0, DATA, 16, f, 1).finish());
  d.push(
    pop(new InputWriter()).finish(),
    publish(new InputWriter(), 0, 0).finish(),
    op(new InputWriter(), Op.AddChain, 3, 2, 2, 0x20202020, 0x20202020).finish(),
  );
  return d;
}
