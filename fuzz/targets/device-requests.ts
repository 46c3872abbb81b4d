/**
 * Target (c), end to end: each device model (blk, net, console, rng) fed arbitrary requests through
 * its queues, without PCI: chains whose readable bytes are fuzzer-chosen (blk request headers,
 * virtio_net_hdr + frames, net control commands, console control messages and port data), host
 * input, guest memory corruption, config accesses and resets.
 *
 * The header's ring byte picks INDIRECT_DESC, EVENT_IDX and IN_ORDER (bits 0-2); with IN_ORDER the
 * device models get the in-order layer (queue/in-order-queue.ts) over their rings, as the transport
 * gives it. Its high five bits equal to 2 (ring bytes 0x10-0x17) offer RING_PACKED: the rings are then
 * packed (MockPackedQueue), and the device may write only the descriptor ring's slots the driver has
 * made available and not yet taken back (all of them once a Poke may have made others available),
 * and its event suppression area. Why not a free bit: every bit of the byte is set in some corpus
 * file (the mutator wrote them while they meant nothing); the value 2 in the high bits is in none,
 * so every old input keeps the split ring and its meaning.
 *
 * Also: blk whose backend operations wait until the input releases them (Drain), in any order, with
 * success or an I/O error, across resets (a reset completes only when they have settled; until then
 * the driver's writes are not passed on, as the transport ignores them); a console whose host
 * streams never drain.
 *
 * Guarantees checked: queueNotify and the config accessors throw nothing but our typed errors; a
 * fault reaches needsReset only as a typed error; the device writes only the used ring and the
 * writable buffers of chains it popped (packed: its event suppression area and the descriptor slots
 * in flight); every used element names a chain the device popped, with a len no larger than its
 * writable bytes; unless a Poke or a fault broke the ring, the driver finds every used element where
 * the format puts it (split used ring, packed used position); after reset and a fresh activation
 * the device serves again; once a reset has completed nothing of the old life touches guest memory or its queues (each life's
 * rings live in their own half of memory, so a late write lands where nothing may be written); no
 * byte goes to a host stream after it reported itself full.
 */

import { VirtioError } from '../../src/errors.js';
import type { ResetCompletion, VirtioDeviceHost } from '../../src/core/virtio-device.js';
import { ArrayGuestMemory, type GuestMemory } from '../../src/memory/guest-memory.js';
import {
  VIRTIO_F_EVENT_IDX,
  VIRTIO_F_IN_ORDER,
  VIRTIO_F_INDIRECT_DESC,
  VIRTIO_F_RING_PACKED,
  VIRTIO_F_VERSION_1,
  bit,
  hasFeature,
} from '../../src/spec/features.js';
import { usedRingSize } from '../../src/spec/ring.js';
import { PVIRTQ_DESC_SIZE, PVIRTQ_EVENT_SUPPRESS_SIZE } from '../../src/spec/packed-ring.js';
import { TRANSPORT_FEATURES } from '../../src/core/feature-negotiation.js';
import { GuardedMemory } from '../../src/testing/guarded-memory.js';
import { MockQueue } from '../../src/testing/mock-queue.js';
import { MockPackedQueue } from '../../src/testing/mock-packed-queue.js';
import type { MockRing } from '../../src/testing/mock-ring.js';
import { GuaranteeViolation, check, describe, expectTyped } from '../engine/guarantees.js';
import { FuzzInput, InputWriter } from '../engine/input.js';
import type { MutationShape } from '../engine/mutator.js';
import type { Seed } from '../engine/target.js';
import { ZOO_KINDS, ZOO_QUEUE_SIZE, makeZooDevice, type ZooDevice, type ZooKind } from '../harness/device-zoo.js';
import { WatchedQueue } from '../harness/watched-queue.js';

export const description = 'device models fed arbitrary requests (blk, net hdr/ctrl, console control/data, rng) through MockQueues';

/** Every zoo device, blk with backends that complete later (requests in flight across resets), and a console whose host never drains. */
const KINDS: readonly ZooKind[] = [...ZOO_KINDS, 'blk-async', 'blk-held', 'console-stuck'];
const MEM_BASE = 0x4000_0000;
const REGION = 0x1000;
/** Regions of one device life (one per queue); lives alternate between two such halves. */
const REGIONS = 6;
/** op u8, queue u8, a u16, b u32. */
const RECORD = 8;
const MAX_OPS = 48;
/** Release rounds at the end: each released write starts at most one flush, so two suffice; more is a runaway. */
const FINAL_DRAIN_ROUNDS = 8;
/** The ring byte's high five bits that offer RING_PACKED (a value no corpus file from before had there). */
const PACKED_RING_BITS = 2;

export const shape: MutationShape = { maxLength: 5 + RECORD * MAX_OPS * 2, headerSize: 5, recordSize: RECORD, dictionary: dictionary() };

const enum Op {
  AddChain = 0,
  Notify = 1,
  HostInput = 2,
  Drain = 3,
  Poke = 4,
  Reset = 5,
  Config = 6,
  Reap = 7,
}
const OPS = 8;

class Host implements VirtioDeviceHost {
  readonly problems: string[] = [];
  faults = 0;
  constructor(readonly memory: GuestMemory) {}
  configChanged(): void {}
  usedBuffers(): void {}
  needsReset(cause: Error): void {
    this.faults++;
    if (!(cause instanceof VirtioError)) this.problems.push(`needsReset with an untyped ${describe(cause)}`);
  }
}

export async function run(data: Uint8Array): Promise<void> {
  const input = new FuzzInput(data);
  const zoo: ZooDevice = makeZooDevice(KINDS[input.u8() % KINDS.length]!);
  const device = zoo.device;
  const deviceBits = BigInt(input.u32());
  const ringBits = input.u8();
  // The transport offers RING_PACKED only when made with `packed: true` (core/device-core.ts): the ring byte says so.
  const packedOffered = ringBits >> 3 === PACKED_RING_BITS ? bit(VIRTIO_F_RING_PACKED) : 0n;
  const wanted =
    deviceBits |
    bit(VIRTIO_F_VERSION_1) |
    (BigInt(ringBits & 3) << BigInt(VIRTIO_F_INDIRECT_DESC)) |
    (ringBits & 4 ? bit(VIRTIO_F_IN_ORDER) : 0n) |
    packedOffered;
  let features = (device.deviceFeatures | TRANSPORT_FEATURES | packedOffered) & wanted;
  if (device.acceptFeatures?.(features) === false) features = bit(VIRTIO_F_VERSION_1);
  const inOrder = hasFeature(features, VIRTIO_F_IN_ORDER);
  const packed = hasFeature(features, VIRTIO_F_RING_PACKED);
  const mem = new GuardedMemory(2 * REGION * REGIONS, { base: MEM_BASE, allowAllReads: true });
  const host = new Host(mem);
  device.attach(host);
  const nq = device.queueMaxSizes.length;
  let mocks: MockRing[] = [];
  let queues: WatchedQueue[] = [];
  /** Device lives so far; life n has its rings in half n % 2. */
  let life = 0;
  let lifeBase = MEM_BASE;
  /** A reset waiting for backend operations of the old life to settle, and whether they have. */
  let resetting: Promise<void> | undefined;
  let resetSettled = false;
  /** A Poke in this life: the device may find any packed descriptor available, and use it. */
  let poked = false;
  /** Used elements the driver has taken from each queue of this life (chains, with IN_ORDER batches counted whole). */
  let reaped: number[] = [];

  /** The guest lays out fresh rings (unguarded) in this life's half, then the transport activates the device (guarded). */
  const activate = async (): Promise<void> => {
    mem.inner.bytes.fill(0);
    lifeBase = MEM_BASE + (life % 2) * REGION * REGIONS;
    poked = false;
    reaped = new Array<number>(nq).fill(0);
    const offset = lifeBase - MEM_BASE;
    mocks = Array.from({ length: nq }, (_, i) => {
      const options = {
        size: ZOO_QUEUE_SIZE,
        memory: new ArrayGuestMemory(mem.inner.bytes.subarray(offset + i * REGION, offset + (i + 1) * REGION), lifeBase + i * REGION),
        base: lifeBase + i * REGION,
        seed: i + 7,
      };
      return packed ? new MockPackedQueue(options) : new MockQueue(options);
    });
    queues = mocks.map((mq, i) => {
      const options = {
        index: i,
        eventIdx: hasFeature(features, VIRTIO_F_EVENT_IDX),
        indirect: hasFeature(features, VIRTIO_F_INDIRECT_DESC),
      };
      return new WatchedQueue(inOrder ? mq.inOrderQueue(options) : mq.deviceQueue(options), mem);
    });
    mem.clearAllowed();
    await guarded('activate', () => device.activate({ features, queues }));
  };

  /** The reset has completed: the old life's queues are retired (any later use is a finding) and a new life starts in the other half. */
  const newLife = async (): Promise<void> => {
    for (const q of queues) q.retire();
    retired.push(...queues);
    resetting = undefined;
    life++;
    await activate();
  };

  /** A reset: complete at once, or once the old life's backend operations have settled. */
  const reset = async (): Promise<void> => {
    let completion: ResetCompletion = undefined;
    await guarded('reset', () => void (completion = device.reset()));
    if (completion === undefined) return newLife();
    resetSettled = false;
    resetting = (completion as Promise<void>).then(() => void (resetSettled = true));
    await guarded('reset settling', turn);
    if (resetSettled) await newLife();
  };

  /**
   * The ring areas the device may write: the split used ring; of a packed ring the device event
   * suppression area and the descriptor slots in flight (made available, not yet taken back by the
   * driver), where its used descriptors go (2.8.6), or the whole ring after a Poke.
   */
  const allowRingWrites = (mq: MockRing): void => {
    if (mq instanceof MockQueue) return void mem.allowWrite(mq.usedAddr, usedRingSize(mq.size), 'used ring');
    const p = mq as MockPackedQueue;
    mem.allowWrite(p.deviceAddr, PVIRTQ_EVENT_SUPPRESS_SIZE, 'device event suppression');
    const slots = poked ? p.size : p.size - p.numFree;
    for (let k = 0; k < slots; k++)
      mem.allowWrite(p.descAddr + ((p.nextUsed + k) % p.size) * PVIRTQ_DESC_SIZE, PVIRTQ_DESC_SIZE, 'descriptor in flight');
  };

  /** A device call under guard: typed errors only, writes only where allowed, used elements checked. */
  const guarded = async <T>(what: string, fn: () => T | Promise<T>): Promise<void> => {
    for (const mq of mocks) allowRingWrites(mq);
    mem.snapshot();
    const r = expectTyped(what, [VirtioError], fn);
    if (r instanceof Promise) await expectTyped(what, [VirtioError], () => r);
    const problems = mem.problems();
    if (problems.length > 0)
      throw new GuaranteeViolation(
        'memory-outside',
        `${what}: ${problems.map((p) => `${p.kind}@0x${p.addr.toString(16)}+${p.len}`).join(' ')}`,
      );
    const queueProblems = [...host.problems, ...retired.flatMap((q) => q.problems), ...queues.flatMap((q) => q.problems)];
    if (queueProblems.length > 0)
      throw new GuaranteeViolation(
        queueProblems[0]!.startsWith('needsReset') ? 'escaped-exception' : 'contract',
        `${what}: ${queueProblems.join('; ')}`,
      );
    const pastFull = zoo.writesPastFull?.() ?? 0;
    if (pastFull > 0)
      throw new GuaranteeViolation('memory-growth', `${what}: ${pastFull} bytes written to a host stream after it reported itself full`);
  };
  /**
   * The guest takes what was used from queue qi. Unless a Poke broke the ring, it must find each
   * used element where the format puts it (split used ring; packed: at its used position, 2.8.6).
   */
  const reap = (qi: number): void => {
    try {
      reaped[qi]! += inOrder ? mocks[qi]!.readUsedBatches().reduce((n, u) => n + u.batch, 0) : mocks[qi]!.readUsed().length;
    } catch (e) {
      check(poked, 'contract', () => `queue ${qi}: the driver cannot read the used ring: ${describe(e)}`);
    }
  };
  /** Queues of lives whose reset completed: nothing may use them again. */
  const retired: WatchedQueue[] = [];

  await activate();
  for (let n = 0; n < MAX_OPS && !input.done; n++) {
    const opByte = input.u8();
    const qi = input.u8() % nq;
    const a = input.u16();
    const b = input.u32();
    const hi = opByte >> 4;
    switch (((opByte & 0xf) % OPS) as Op) {
      case Op.AddChain: {
        const content = input.bytes(Math.min(input.remaining, a >> 6));
        const readable =
          (a & 3) === 0 ? [] : [content, ...Array.from({ length: (a & 3) - 1 }, (_, k) => new Uint8Array((b >>> (8 * k)) & 0x3f))];
        const writable = Array.from({ length: (a >> 2) & 3 }, (_, k) => ((b >>> (8 * (3 - k))) & 0xff) + (hi & 2 ? 0 : 1));
        if (readable.length + writable.length === 0) break;
        try {
          mocks[qi]!.addChain({ readable, writable, indirect: (a & 0x10) !== 0 && hasFeature(features, VIRTIO_F_INDIRECT_DESC) });
        } catch {
          // out of descriptors or room: the guest adds nothing
        }
        break;
      }
      case Op.Notify:
        if (resetting) break; // the transport does not pass driver writes on while a reset settles
        await guarded('queueNotify', () => device.queueNotify(qi, hi & 1 ? b : undefined));
        break;
      case Op.HostInput: {
        const head = input.bytes(Math.min(input.remaining, 14));
        const bytes = new Uint8Array((b % 1600) + (hi & 1 ? 0 : 14));
        bytes.set(head.subarray(0, bytes.length));
        await guarded('host input', () => zoo.hostInput(qi & 1, bytes));
        break;
      }
      case Op.Drain:
        // With held backend operations: first release (a & 7) of them, picked by b, failing with an I/O error when hi & 2.
        await guarded('drain', async () => {
          const held = zoo.held;
          for (let k = 0; held !== undefined && k < (a & 7) && held.pending.length > 0; k++) {
            const [op] = held.pending.splice(((b >>> (4 * k)) & 0xf) % held.pending.length, 1);
            op!.release((hi & 2) === 0);
          }
          await turn();
        });
        break;
      case Op.Poke: {
        const at = lifeBase + (((qi << 16) | a) % (REGION * REGIONS - 4));
        mem.inner.write32(at, b);
        poked = true;
        break;
      }
      case Op.Reset:
        if (!resetting) await reset();
        break;
      case Op.Config: {
        if (device.configSize === 0 || (resetting && hi & 8)) break;
        const size = ([1, 2, 4] as const)[hi % 3]!;
        if (device.configSize < size) break;
        const offset = a % (device.configSize - size + 1);
        await guarded('config access', () => (hi & 8 ? device.writeConfig(offset, size, b) : device.readConfig(offset, size)));
        break;
      }
      case Op.Reap:
        // The guest takes what was used, freeing descriptors for more chains. Nothing to check here:
        // a Poke may have corrupted the used ring it reads (the device's side is checked per call),
        // which with IN_ORDER (or a packed used descriptor naming an id not in flight) leaves an
        // element the driver cannot take: then nothing more is taken.
        reap(qi);
        break;
    }
    if (resetting && resetSettled) await newLife();
  }
  // Whatever the backend still holds completes; a reset still settling then completes, and the new life is checked once more.
  await guarded('final drain', async () => {
    // A released write may start its writethrough flush, itself held: release until nothing is left.
    for (let round = 0; zoo.held !== undefined && zoo.held.pending.length > 0; round++) {
      check(round < FINAL_DRAIN_ROUNDS, 'hang', () => `backend operations still being started after ${round} release rounds`);
      zoo.held.releaseAll();
      await turn();
    }
    await turn();
  });
  if (resetting) {
    await resetting;
    await newLife();
  }
  await guarded('final drain', turn);
  // Every used element reached the driver (with IN_ORDER the layer may still hold some behind a
  // chain a fault left in flight); a Poke or a fault may have broken the ring, then nothing is said.
  if (!poked && host.faults === 0)
    for (let qi = 0; qi < nq; qi++) {
      reap(qi);
      const used = queues[qi]!.used;
      check(
        inOrder ? reaped[qi]! <= used : reaped[qi] === used,
        'contract',
        () => `queue ${qi}: the device used ${used} chains, the driver found ${reaped[qi]!}`,
      );
    }
  check(
    zoo.hostOutputBytes() <= data.length * 0x10000 + 0x10000,
    'memory-growth',
    () => `device sent ${zoo.hostOutputBytes()} bytes to the host from a ${data.length}-byte input`,
  );
}

/** One event-loop turn: backend completions scheduled for it run. */
function turn(): Promise<void> {
  return new Promise<void>((resolve) => setImmediate(resolve));
}

// ---- seeds ----

function op(w: InputWriter, code: Op, hi: number, q: number, a: number, b: number): InputWriter {
  return w
    .u8(code | (hi << 4))
    .u8(q)
    .u16(a)
    .u32(b);
}
/** A chain on queue q: one readable buffer with `content`, then writable buffers of the given lengths (at most 3). */
function chain(w: InputWriter, q: number, content: readonly number[], writable: readonly number[], indirect = false): InputWriter {
  const a = (content.length << 6) | (indirect ? 0x10 : 0) | (writable.length << 2) | (content.length > 0 ? 1 : 0);
  let b = 0;
  writable.forEach((len, k) => (b |= ((len - 1) & 0xff) << (8 * (3 - k))));
  return op(w, Op.AddChain, 0, q, a, b >>> 0).bytes(content);
}
/** Ring bits: 1 INDIRECT_DESC, 2 EVENT_IDX, 4 IN_ORDER; PACKED (0x10) offers RING_PACKED. */
const PACKED = PACKED_RING_BITS << 3;
function header(kind: ZooKind, features = 0xffffffff, ring = 3): InputWriter {
  return new InputWriter().u8(KINDS.indexOf(kind)).u32(features).u8(ring);
}
/** The same input with the ring byte (after kind u8 and features u32) offering RING_PACKED. */
function packedVariant(data: Uint8Array): Uint8Array {
  const out = data.slice();
  out[5] = (out[5]! & 7) | PACKED;
  return out;
}
function u32le(v: number): number[] {
  return [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff];
}
function u64le(v: number): number[] {
  return [...u32le(v % 2 ** 32), ...u32le(Math.floor(v / 2 ** 32))];
}
/** struct virtio_blk_req header: le32 type, le32 reserved, le64 sector. */
function blkHeader(type: number, sector: number): number[] {
  return [...u32le(type), 0, 0, 0, 0, ...u64le(sector)];
}

export function seeds(): Seed[] {
  const s: Seed[] = [];
  const add = (name: string, w: InputWriter): void => void s.push({ name, data: w.finish() });
  {
    const w = header('blk');
    chain(w, 0, blkHeader(0, 0), [512, 1]); // IN
    chain(w, 0, [...blkHeader(1, 2), ...new Array(0).fill(0)], [1]); // OUT without data
    chain(w, 0, blkHeader(4, 0), [1]); // FLUSH
    chain(w, 0, blkHeader(8, 0), [20, 1]); // GET_ID
    add('blk-requests', op(op(w, Op.Notify, 0, 0, 0, 0), Op.Reap, 0, 0, 0, 0));
  }
  {
    const w = header('blk');
    chain(w, 0, blkHeader(0, 2 ** 53 - 1), [512, 1]); // sector far past capacity
    chain(w, 0, blkHeader(0, 15), [200, 1]); // IN not a sector multiple
    chain(w, 0, blkHeader(11, 0), [1]); // DISCARD with no segments
    chain(w, 0, blkHeader(0, 0), []); // no status byte: a fatal fault
    add('blk-malformed', op(w, Op.Notify, 0, 0, 0, 0));
  }
  {
    const w = header('blk');
    chain(w, 0, blkHeader(0, 0).slice(0, 7), [1]); // header split short
    chain(w, 0, [...blkHeader(13, 0), ...u64le(0), ...u32le(8), ...u32le(1)], [1]); // WRITE_ZEROES with unmap
    chain(w, 0, [...blkHeader(11, 0), ...u64le(15), ...u32le(0xffffffff), ...u32le(0)], [1]); // DISCARD overflowing
    add('blk-segments', op(op(w, Op.Notify, 0, 0, 0, 0), Op.Reset, 0, 0, 0, 0));
  }
  {
    // Requests in flight on an asynchronous backend when the device is reset: their completions
    // must not touch the guest memory the new rings reuse.
    const w = header('blk-async');
    for (let i = 0; i < 5; i++) chain(w, 0, blkHeader(i % 2, i), i % 2 ? [1] : [512, 1]);
    op(w, Op.Notify, 0, 0, 0, 0);
    op(w, Op.Reset, 0, 0, 0, 0);
    chain(w, 0, blkHeader(0, 1), [512, 1]);
    op(w, Op.Notify, 0, 0, 0, 0);
    add('blk-async-reset-with-requests-in-flight', op(op(w, Op.Drain, 0, 0, 0, 0), Op.Reap, 0, 0, 0, 0));
  }
  {
    // Held backend operations across a reset: the reset completes only once they settle (one
    // succeeds, one fails, the rest are released at the end); the driver's notify meanwhile is not
    // passed on; the new life serves a request from the other half of memory.
    // (A writable buffer is at most 256 bytes: a sector takes two, in an indirect table.)
    const w = header('blk-held');
    chain(w, 0, blkHeader(0, 0), [256, 256, 1], true); // IN
    chain(w, 0, [...blkHeader(1, 1), ...new Array(512).fill(0x5a)], [1], true); // OUT
    chain(w, 0, blkHeader(0, 2), [256, 256, 1], true); // IN
    chain(w, 0, blkHeader(4, 0), [1], true); // FLUSH
    op(w, Op.Notify, 0, 0, 0, 0);
    op(w, Op.Reset, 0, 0, 0, 0);
    op(w, Op.Drain, 0, 0, 1, 0); // release the oldest, successfully
    op(w, Op.Drain, 2, 0, 1, 1); // release the second, with an I/O error
    op(w, Op.Notify, 0, 0, 0, 0);
    op(w, Op.Drain, 0, 0, 7, 0); // the rest: the reset completes
    chain(w, 0, blkHeader(0, 1), [256, 256, 1], true);
    op(w, Op.Notify, 0, 0, 0, 0);
    add('blk-held-reset-with-requests-in-flight', op(op(w, Op.Drain, 0, 0, 1, 0), Op.Reap, 0, 0, 0, 0));
  }
  {
    // Completions in reverse order, one failing; then a reset while the next batch is held, and a
    // second reset before it has settled (ignored).
    const w = header('blk-held');
    for (let i = 0; i < 4; i++) chain(w, 0, i % 2 ? blkHeader(4, 0) : blkHeader(0, i), i % 2 ? [1] : [256, 256, 1], true);
    op(w, Op.Notify, 0, 0, 0, 0);
    op(w, Op.Drain, 0, 0, 3, 0x0123);
    op(w, Op.Drain, 2, 0, 1, 0);
    op(w, Op.Reap, 0, 0, 0, 0);
    for (let i = 0; i < 3; i++) chain(w, 0, blkHeader(0, i), [256, 256, 1], true);
    op(w, Op.Notify, 0, 0, 0, 0);
    op(w, Op.Reset, 0, 0, 0, 0);
    op(w, Op.Reset, 0, 0, 0, 0);
    add('blk-held-out-of-order-then-reset-twice', op(w, Op.Drain, 0, 0, 2, 0x10));
  }
  {
    // IN_ORDER: completions in reverse order are held until the oldest is used, then batched; the
    // guest reaps in between; a reset while the in-order layer holds completions.
    const w = header('blk-held', 0xffffffff, 7);
    for (let i = 0; i < 5; i++) chain(w, 0, blkHeader(i % 2 ? 4 : 0, i), i % 2 ? [1] : [256, 256, 1], true);
    op(w, Op.Notify, 0, 0, 0, 0);
    op(w, Op.Drain, 0, 0, 3, 0x0234);
    op(w, Op.Reap, 0, 0, 0, 0);
    op(w, Op.Drain, 0, 0, 1, 0);
    op(w, Op.Reap, 0, 0, 0, 0);
    for (let i = 0; i < 3; i++) chain(w, 0, blkHeader(0, i), [256, 256, 1], true);
    op(w, Op.Notify, 0, 0, 0, 0);
    op(w, Op.Drain, 0, 0, 1, 0x2);
    add('blk-held-in-order-batches-then-reset', op(w, Op.Reset, 0, 0, 0, 0));
  }
  {
    // Host streams that never drain (high-water mark 64): port output beyond it waits in the
    // transmitq, and emergency writes meeting the full stream are dropped, never queued.
    const w = header('console-stuck');
    chain(w, 3, [...u32le(0), 0, 0, 1, 0], []); // DEVICE_READY
    chain(w, 3, [...u32le(0), 3, 0, 1, 0], []); // PORT_READY 0
    chain(w, 3, [...u32le(0), 6, 0, 1, 0], []); // PORT_OPEN 0
    op(w, Op.Notify, 0, 3, 0, 0);
    for (let i = 0; i < 4; i++) chain(w, 1, new Array(60).fill(0x61 + i), []);
    op(w, Op.Notify, 0, 1, 0, 0);
    for (let i = 0; i < 6; i++) op(w, Op.Config, 8 | 0, 0, 8, 0x41 + i); // emerg_wr
    op(w, Op.Drain, 0, 0, 0, 0);
    op(w, Op.Notify, 0, 1, 0, 0);
    chain(w, 5, new Array(200).fill(0x62), []); // port 1 output
    op(w, Op.Notify, 0, 5, 0, 0);
    add('console-host-streams-never-drain', op(w, Op.Drain, 0, 0, 0, 0));
  }
  {
    const w = header('net');
    const hdr = [1, 0, 0, 0, 0, 0, 14, 0, 16, 0, 0, 0]; // NEEDS_CSUM, csum_start 14, csum_offset 16
    chain(w, 1, [...hdr, ...new Array(40).fill(0xab)], []); // tx
    chain(w, 1, [...hdr.slice(0, 6), 0xff, 0xff, 0xff, 0xff, 0, 0], []); // tx: csum past the frame
    chain(w, 0, [], [64, 1600]); // rx buffers
    op(w, Op.Notify, 0, 1, 0, 0);
    op(w, Op.Notify, 0, 0, 0, 0);
    op(w, Op.HostInput, 0, 0, 0, 60).bytes([0x52, 0x54, 0, 0x12, 0x34, 0x56, 2, 0, 0, 0, 0, 1, 8, 0]);
    add('net-tx-rx', op(w, Op.Drain, 0, 0, 0, 0));
  }
  {
    const w = header('net-mq');
    chain(w, 4, [4, 0, 2, 0], [1]); // MQ VQ_PAIRS_SET 2
    chain(w, 4, [1, 0, ...u32le(1), 1, 2, 3, 4, 5, 6, ...u32le(0xffffffff)], [1]); // MAC_TABLE_SET, huge multicast count
    chain(w, 4, [0, 0, 1], [1]); // RX PROMISC on
    chain(w, 4, [0, 0, 1], []); // no ack byte
    add('net-ctrl', op(w, Op.Notify, 0, 4, 0, 0));
  }
  {
    const w = header('console-multiport');
    // control transmitq is queue 3: DEVICE_READY, PORT_READY for port 1, PORT_OPEN for a port that does not exist
    chain(w, 3, [...u32le(0), 0, 0, 1, 0], []);
    chain(w, 3, [...u32le(1), 3, 0, 1, 0], []);
    chain(w, 3, [...u32le(0xffffffff), 6, 0, 1, 0], []);
    chain(w, 3, [1, 2, 3], []); // short control message
    chain(w, 2, [], [64]); // control receiveq buffer
    op(w, Op.Notify, 0, 3, 0, 0);
    op(w, Op.Notify, 0, 2, 0, 0);
    chain(w, 1, [0x68, 0x69], []); // port 0 output
    op(w, Op.Notify, 0, 1, 0, 0);
    op(w, Op.Config, 8 | 0, 0, 8, 0x41); // emerg_wr
    add('console-control', op(w, Op.Drain, 0, 0, 0, 0));
  }
  {
    const w = header('rng');
    chain(w, 0, [], [0]);
    chain(w, 0, [1, 2, 3], [16]);
    chain(w, 0, [], [255, 255, 255]);
    add('rng-requests', op(op(w, Op.Notify, 0, 0, 0, 0), Op.Reap, 0, 0, 0, 0));
  }
  // Every seed again on packed rings: the device models must behave the same on either format.
  return [...s, ...s.map(({ name, data }) => ({ name: `${name}-packed`, data: packedVariant(data) }))];
}

function dictionary(): Uint8Array[] {
  return [
    op(new InputWriter(), Op.Notify, 0, 0, 0, 0).finish(),
    op(new InputWriter(), Op.Drain, 0, 0, 0, 0).finish(),
    chain(new InputWriter(), 0, blkHeader(0, 0), [512, 1]).finish(),
    chain(new InputWriter(), 0, blkHeader(1, 0), [1]).finish(),
  ];
}
