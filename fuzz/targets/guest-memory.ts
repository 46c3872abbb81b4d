/**
 * Guest memory itself: arbitrary (address, width) accesses, with addresses built from guest 64-bit
 * lo/hi halves, against two regions with a gap (low RAM and RAM above 4 GiB). Every access either
 * lands exactly where a flat reference model says or fails with GuestMemoryError, never wraps and
 * never touches another address.
 */

import { GuestMemoryError } from '../../src/errors.js';
import { ArrayGuestMemory, RegionGuestMemory, joinU64 } from '../../src/memory/guest-memory.js';
import { FuzzInput, InputWriter } from '../engine/input.js';
import { check, expectTyped } from '../engine/guarantees.js';
import type { Seed } from '../engine/target.js';
import type { MutationShape } from '../engine/mutator.js';

export const description = 'guest memory accessors: every address/width, 64-bit lo/hi joins, regions with a gap';

const LOW = { base: 0, size: 0x1000 };
const HIGH = { base: 0x1_0000_0000, size: 0x1000 };
/** One operation: u8 op, u32 lo, u32 hi, u32 len, u32 value. */
const RECORD = 17;

export const shape: MutationShape = { maxLength: RECORD * 64, recordSize: RECORD };

/** Where a reference model says [addr, addr + len) lies: [region, offset], or undefined. */
function locate(addr: number, len: number): [0 | 1, number] | undefined {
  const regions = [LOW, HIGH];
  for (let i = 0; i < 2; i++) {
    const r = regions[i]!;
    // BigInt arithmetic: the model must not share the implementation's number pitfalls.
    const a = BigInt(Math.floor(addr));
    if (!Number.isSafeInteger(addr) || !Number.isSafeInteger(len) || len < 0) return undefined;
    if (a >= BigInt(r.base) && a + BigInt(len) <= BigInt(r.base + r.size)) return [i as 0 | 1, addr - r.base];
  }
  return undefined;
}

export function run(data: Uint8Array): void {
  const input = new FuzzInput(data);
  const low = new ArrayGuestMemory(LOW.size, LOW.base);
  const high = new ArrayGuestMemory(HIGH.size, HIGH.base);
  const mem = new RegionGuestMemory([high, low]);
  const model = [new Uint8Array(LOW.size), new Uint8Array(HIGH.size)];
  for (let n = 0; n < 64 && !input.done; n++) {
    const op = input.u8() % 6;
    const addr = joinU64(input.u32(), input.u32());
    const rawLen = input.u32();
    const value = input.u32();
    const width = [1, 2, 4, 8][op % 4]!;
    const len = op === 4 ? rawLen : op === 5 ? rawLen % 0x2000 : width;
    const where = locate(addr, len);
    const result = expectTyped('guest memory access', [GuestMemoryError], () => {
      if (op === 4) return mem.view(addr, len).length;
      if (op === 5) {
        mem.write(addr, new Uint8Array(len).fill(value & 0xff));
        return len;
      }
      const w = [mem.write8, mem.write16, mem.write32][op];
      if (w !== undefined && (value & 0x100) !== 0) {
        w.call(mem, addr, value);
        return -1;
      }
      return op === 3 ? Number(mem.read64(addr) & 0xffffn) : [mem.read8, mem.read16, mem.read32][op]!.call(mem, addr);
    });
    check(where === undefined ? result instanceof GuestMemoryError : !(result instanceof GuestMemoryError), 'contract', () => {
      return `access 0x${addr.toString(16)}+${len}: model says ${where === undefined ? 'out of range' : 'in range'}, got ${String(result)}`;
    });
    if (where === undefined) continue;
    const [region, off] = where;
    if (op === 5) model[region]!.fill(value & 0xff, off, off + len);
    else if (op < 3 && (value & 0x100) !== 0) for (let i = 0; i < width; i++) model[region]![off + i] = (value >>> (8 * i)) & 0xff;
  }
  check(
    low.bytes.every((b, i) => b === model[0]![i]) && high.bytes.every((b, i) => b === model[1]![i]),
    'memory-outside',
    () => 'memory differs from the reference model',
  );
}

function op(code: number, addr: number, len: number, value: number): InputWriter {
  return new InputWriter().u8(code).u64(addr).u32(len).u32(value);
}

export function seeds(): Seed[] {
  const join = (...ops: InputWriter[]): Uint8Array => Uint8Array.from(ops.flatMap((o) => [...o.finish()]));
  return [
    { name: 'last-byte-of-each-region', data: join(op(0, LOW.size - 1, 0, 0x1ff), op(0, HIGH.base + HIGH.size - 1, 0, 0x1ff)) },
    { name: 'straddles-end-of-memory', data: join(op(2, LOW.size - 2, 0, 0x1ff), op(5, HIGH.base + HIGH.size - 8, 16, 7)) },
    { name: '64-bit-address-wrap', data: join(op(4, 0xffff_ffff_ffff_f000, 0x1010, 0), op(4, 2 ** 64 - 1, 2, 0)) },
    { name: 'low-alias-of-high-address', data: join(op(2, HIGH.base + 0x10, 0, 0x1ab), op(2, 0x10, 0, 0)) },
    { name: '4gib-length', data: join(op(4, 0, 0xffffffff, 0), op(5, 0, 0x1000, 0x55)) },
  ];
}
