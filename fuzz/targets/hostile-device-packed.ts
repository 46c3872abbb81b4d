/**
 * Target: the driver half of a packed virtqueue (PackedQueueDriver, 2.8, built by the rings seam)
 * against a device that lies. A real PackedQueue serves the ring honestly as the input drives it
 * (pop, used descriptors with chosen lengths, notification control, resets), and every refresh the
 * driver makes through the {@link HostileDma} (the same one the hostile-device target's bus uses) may
 * first find the range rewritten by the input: used descriptors with any id, len and AVAIL/USED/WRITE
 * flags, a device event suppression area with any offset, wrap and flags.
 *
 * The hostile-device target runs whole drivers over a bus; this one drives the ring alone, so that
 * its input reaches the packed ring's own checks in a few bytes (and corpus inputs of hostile-device
 * keep their meaning).
 *
 * Guarantees checked: every driver call ends in success or a typed DeviceFaultError (QueueFullError
 * for an add the ring has no room for); no token is lost or returned twice: every token added comes
 * back exactly once, from reap() or from detachUnused() after a reset or at the end; a reaped len is
 * at most the chain's writable bytes, and with no tampering it is the len the device gave; the
 * driver's loops are bounded by the bus operation budget; every DMA byte is back after destroy().
 */

import { DeviceFaultError, QueueFaultError, QueueFullError, VirtioError } from '../../src/errors.js';
import { RamDma } from '../../src/bus/ram-dma.js';
import { ArrayGuestMemory } from '../../src/memory/guest-memory.js';
import type { DmaBuffer } from '../../src/memory/dma.js';
import { deviceRing, driverRing } from '../../src/queue/rings.js';
import type { DescriptorChain, DeviceQueue, DriverRing } from '../../src/queue/types.js';
import { VIRTIO_F_EVENT_IDX, VIRTIO_F_INDIRECT_DESC, VIRTIO_F_RING_PACKED, VIRTIO_F_VERSION_1, bit } from '../../src/spec/features.js';
import { check, expectTyped, expectTypedAsync } from '../engine/guarantees.js';
import { FuzzInput, InputWriter } from '../engine/input.js';
import type { MutationShape } from '../engine/mutator.js';
import type { Seed } from '../engine/target.js';
import { HostileDma, NO_ADVERSARY, OPERATION_BUDGET, OperationBudgetExceeded, type DmaLedger } from '../harness/hostile-bus.js';

export const description = 'packed ring driver side against a device whose used descriptors and event suppression the input rewrites';

const MEM_SIZE = 1 << 18;
const DMA_BASE = 0x1000;
const HEADER = 3;
const RECORD = 4;

export const shape: MutationShape = { maxLength: 2048, headerSize: HEADER, recordSize: RECORD };

const enum Op {
  Add = 0,
  Publish = 1,
  Pop = 2,
  Use = 3,
  Reap = 4,
  Suppress = 5,
  Notify = 6,
  Reset = 7,
}

/** The operation budget and the tampering count, for a ring without a bus. */
class Ledger implements DmaLedger {
  readonly adversary = NO_ADVERSARY;
  tampered = 0;
  allocFailures = 0;
  dmaOutstanding = 0;
  operations = 0;
  spend(): void {
    if (++this.operations > OPERATION_BUDGET) throw new OperationBudgetExceeded();
  }
}

interface Sent {
  readonly writable: number;
  readonly buffers: DmaBuffer[];
  /** The len the device gave, when it returned the chain honestly. */
  usedLen?: number;
}

export async function run(data: Uint8Array): Promise<void> {
  // size u8, flags u8 (1 EVENT_IDX, 2 INDIRECT_DESC), op count u8, the ops (u8 op, u8 a, u16 b
  // each), then the device's lies: the bytes every refresh may rewrite its range with.
  const header = new FuzzInput(data.subarray(0, HEADER));
  const size = 1 + (header.u8() & 0x3f);
  const flags = header.u8();
  const opCount = header.u8();
  const input = new FuzzInput(data.subarray(HEADER, HEADER + RECORD * opCount));
  const lies = new FuzzInput(data.subarray(HEADER + RECORD * opCount));
  const features =
    bit(VIRTIO_F_VERSION_1) |
    bit(VIRTIO_F_RING_PACKED) |
    (flags & 1 ? bit(VIRTIO_F_EVENT_IDX) : 0n) |
    (flags & 2 ? bit(VIRTIO_F_INDIRECT_DESC) : 0n);
  const memory = new ArrayGuestMemory(MEM_SIZE);
  const ledger = new Ledger();
  const dma = new HostileDma(new RamDma(memory, DMA_BASE, MEM_SIZE - DMA_BASE), memory, lies, ledger, 'packed');
  const driver: DriverRing<number> = driverRing<number>({ index: 0, size, dma, features, layout: 'separate' });
  await driver.flushRings();
  const newDevice = (): DeviceQueue => deviceRing({ index: 0, size, memory, areas: driver.areas, features });
  let device: DeviceQueue | undefined = newDevice();
  const sent = new Map<number, Sent>();
  const returned = new Set<number>();
  const held: DescriptorChain[] = [];
  let token = 0;

  /** A driver call: only DeviceFaultError, and that only when the device lied. */
  const driverCall = async <T>(what: string, fn: () => Promise<T>): Promise<T | VirtioError> => {
    const r = await expectTypedAsync(what, [DeviceFaultError], fn);
    check(!(r instanceof VirtioError) || ledger.tampered > 0, 'contract', () => `${what} failed against an honest device: ${String(r)}`);
    return r;
  };
  /** The honest device: a QueueFaultError (the ring was rewritten under it) stops it until a reset. */
  const deviceCall = <T>(what: string, fn: (q: DeviceQueue) => T): T | undefined => {
    if (device === undefined) return undefined;
    const q = device;
    const r = expectTyped(what, [QueueFaultError], () => fn(q));
    if (r instanceof QueueFaultError) {
      check(ledger.tampered > 0, 'contract', () => `the device faulted on a ring nobody tampered with: ${r.message}`);
      device = undefined;
      held.length = 0;
      return undefined;
    }
    return r as T;
  };
  const back = (t: number, len: number | undefined, how: string): void => {
    const s = sent.get(t);
    check(s !== undefined, 'contract', () => `${how} returned token ${t}, never added`);
    check(!returned.has(t), 'contract', () => `${how} returned token ${t} a second time`);
    returned.add(t);
    sent.delete(t);
    for (const b of s.buffers) dma.free(b);
    if (len === undefined) return;
    check(len <= s.writable, 'contract', () => `reap gave len ${len} for token ${t} with ${s.writable} writable bytes`);
    if (ledger.tampered === 0)
      check(len === s.usedLen, 'contract', () => `reap gave len ${len} for token ${t}, the device wrote ${String(s.usedLen)}`);
  };
  const reap = async (): Promise<void> => {
    const got = await driverCall('reap', () => driver.reap());
    if (got instanceof VirtioError) return;
    for (const u of got) back(u.token, u.len, 'reap');
  };
  const reset = (): void => {
    // The device is reset: the driver takes back every chain in flight; a new device life starts.
    for (const t of driver.detachUnused()) back(t, undefined, 'detachUnused');
    held.length = 0;
    device = newDevice();
  };

  while (!input.done) {
    const opByte = input.u8();
    const a = input.u8();
    const b = input.u16();
    switch ((opByte & 7) as Op) {
      case Op.Add: {
        const outs = Array.from({ length: a & 3 }, (_, k) => 1 + ((b >> (4 * k)) & 0xf) * 4);
        const ins = Array.from({ length: (a >> 2) & 3 }, (_, k) => 1 + ((b >> (4 * k + 2)) & 0xf) * 8);
        if (outs.length + ins.length === 0 || outs.length + ins.length > size) break;
        const buffers = [...outs, ...ins].map((len) => dma.alloc(len, 8));
        const spans = buffers.map((buf, k) => ({ addr: buf.addr, len: k < outs.length ? outs[k]! : ins[k - outs.length]! }));
        const t = token;
        const r = expectTyped('add', [QueueFullError], () => driver.add(spans.slice(0, outs.length), spans.slice(outs.length), t));
        if (r instanceof VirtioError) {
          for (const buf of buffers) dma.free(buf);
          break;
        }
        token++;
        sent.set(t, { writable: ins.reduce((s, l) => s + l, 0), buffers });
        break;
      }
      case Op.Publish:
        await driverCall('publish', () => driver.publish());
        break;
      case Op.Pop:
        for (let k = 0; k <= (a & 3); k++) {
          const chain = deviceCall('pop', (q) => q.pop());
          if (chain === undefined || chain === null) break;
          held.push(chain);
        }
        break;
      case Op.Use: {
        if (held.length === 0) break;
        const [chain] = held.splice(a % held.length, 1) as [DescriptorChain];
        const len = b % (chain.writableBytes + 1);
        const head = chain.head;
        // Which token: the driver's own record is not ours to read; find it by the chain's buffers.
        deviceCall('pushUsed', (q) => q.pushUsed(head, len));
        for (const s of sent.values())
          if (s.buffers.length === chain.count && s.buffers.every((buf, k) => buf.addr === chain.addr(k))) s.usedLen = len;
        break;
      }
      case Op.Reap:
        await reap();
        break;
      case Op.Suppress:
        await driverCall('setInterruptSuppression', () => driver.setInterruptSuppression((a & 1) === 1));
        break;
      case Op.Notify:
        deviceCall('notification', (q) => (a & 1 ? q.setNotification((a & 2) !== 0) : q.needsInterrupt()));
        break;
      case Op.Reset:
        reset();
        break;
      default:
        break;
    }
  }
  // The end: what the device still returns comes back through reap; then a reset takes the rest.
  await reap();
  reset();
  check(sent.size === 0, 'contract', () => `tokens ${[...sent.keys()].join(', ')} lost: neither reaped nor detached`);
  driver.destroy();
  check(ledger.dmaOutstanding === 0, 'memory-growth', () => `${ledger.dmaOutstanding} DMA bytes not returned after destroy()`);
}

// ---- seeds ----

function ops(size: number, flags: number, list: readonly [Op, number, number][]): InputWriter {
  const w = new InputWriter()
    .u8(size - 1)
    .u8(flags)
    .u8(list.length);
  for (const [op, a, b] of list) w.u8(op).u8(a).u16(b);
  return w;
}
/** One chain of one readable and one writable buffer, published, taken by the device and used. */
const ROUND: readonly [Op, number, number][] = [
  [Op.Add, 1 | (1 << 2), 0x0123],
  [Op.Add, 0 | (2 << 2), 0x4567],
  [Op.Publish, 0, 0],
  [Op.Pop, 1, 0],
  [Op.Use, 1, 5],
  [Op.Use, 0, 40],
  [Op.Notify, 0, 0],
  [Op.Reap, 0, 0],
];

export function seeds(): Seed[] {
  const s: Seed[] = [];
  const add = (name: string, w: InputWriter): void => void s.push({ name, data: w.finish() });
  add('honest-traffic', ops(8, 0, [...ROUND, [Op.Suppress, 1, 0], ...ROUND, [Op.Suppress, 0, 0], [Op.Notify, 3, 0], ...ROUND]));
  add('honest-traffic-event-idx-indirect', ops(4, 3, [...ROUND, [Op.Notify, 3, 0], ...ROUND, [Op.Add, 3 | (3 << 2), 0xffff], ...ROUND]));
  add('honest-wraps-size-3', ops(3, 1, [...ROUND, ...ROUND, ...ROUND, ...ROUND, ...ROUND]));
  add('reset-with-chains-in-flight', ops(5, 0, [...ROUND.slice(0, 4), [Op.Reset, 0, 0], ...ROUND]));
  // Lies at every refresh (see HostileDma.refresh for the bytes of each).
  const lies = (w: InputWriter, pattern: (w: InputWriter) => void): InputWriter => {
    for (let i = 0; i < 24; i++) pattern(w);
    return w;
  };
  const traffic = (): InputWriter => ops(8, 0, [...ROUND, ...ROUND]);
  // d 0xd3: small len (u16), small id (u8 % 64); flags byte 3: AVAIL|USED for wrap 1 and WRITE.
  add(
    'used-id-never-submitted',
    lies(traffic(), (w) => w.u8(0xd3).u16(1).u8(0x3f).u8(3)),
  );
  add(
    'used-len-beyond-buffer',
    lies(traffic(), (w) => w.u8(0xd1).u32(0xffff_ffff).u8(0).u8(3)),
  );
  // d 0xd4: flags as a raw u16: USED alone (neither a used nor an available descriptor).
  add(
    'used-flags-disagree-with-wrap',
    lies(traffic(), (w) => w.u8(0xd6).u16(0).u8(0).u16(0x8000)),
  );
  // At a 4-byte refresh (the device event suppression area): offset 0x7fff, wrap 1, flags reserved 3.
  add(
    'device-event-suppression-reserved',
    lies(traffic(), (w) => w.u8(0xd1).u16(0xffff).u8(3)),
  );
  return s;
}
