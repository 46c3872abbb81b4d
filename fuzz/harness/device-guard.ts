/**
 * What the ring targets (split-ring, packed-ring) share, apart from any ring format: running one
 * device-side queue operation under the memory guard with only the ranges the spec lets it touch,
 * the buffer rules of a reference chain walk (2.7.4, 2.8.4: inside guest memory, 64-bit exact,
 * device-readable before device-writable), and comparing a popped DescriptorChain with the walk.
 */

import { QueueFaultError } from '../../src/errors.js';
import type { DescriptorChain } from '../../src/queue/types.js';
import type { VirtioError } from '../../src/errors.js';
import type { GuestMemory } from '../../src/memory/guest-memory.js';
import type { GuardedMemory } from '../../src/testing/guarded-memory.js';
import { type ErrorClass, expectTyped, GuaranteeViolation } from '../engine/guarantees.js';

/** One buffer of a chain, as a reference walk finds it. */
export interface Buf {
  readonly addr: number;
  readonly len: number;
  readonly writable: boolean;
}

/**
 * Run one device operation: clear the guard's allowances, let `allow` grant what the spec lets this
 * operation read and write, snapshot, run; an access or a changed byte outside is `memory-outside`,
 * an exception other than `allowed` a violation. Returns the value or the allowed typed error.
 */
export function guardedCall<T>(
  mem: GuardedMemory,
  what: string,
  allow: () => void,
  fn: () => T,
  allowed: readonly ErrorClass[] = [QueueFaultError],
): T | VirtioError {
  mem.clearAllowed();
  allow();
  mem.snapshot();
  const r = expectTyped(what, allowed, fn);
  const problems = mem.problems();
  if (problems.length > 0)
    throw new GuaranteeViolation(
      'memory-outside',
      `${what}: ${problems.map((p) => `${p.kind}@0x${p.addr.toString(16)}+${p.len}`).join(' ')}`,
    );
  return r;
}

/** Allow the buffers of chains in flight: device-writable ones for writing, the rest for reading (views). */
export function allowChainBuffers(mem: GuardedMemory, chains: Iterable<readonly Buf[]>): void {
  for (const bufs of chains) for (const b of bufs) (b.writable ? mem.allowWrite : mem.allowRead).call(mem, b.addr, b.len, 'chain buffer');
}

/**
 * A reference walk's buffer check for the descriptor at `at` (le64 addr, le32 len at +8): the
 * buffer, or null when it lies outside guest memory or its address is not exact (>= 2^53).
 */
export function readBuffer(m: GuestMemory, at: number, writable: boolean): Buf | null {
  const raw = m.read64(at);
  const addr = Number(raw);
  const len = m.read32(at + 8);
  return raw < 2n ** 53n && m.contains(addr, len) ? { addr, len, writable } : null;
}

/**
 * Add `buf` to a reference walk's buffers: false (a fault) for a device-readable buffer after a
 * device-writable one (2.7.4.2, 2.8.4) or one more than `maxBuffers`.
 */
export function pushBuffer(bufs: Buf[], buf: Buf, maxBuffers: number): boolean {
  if (!buf.writable && bufs.length > 0 && bufs[bufs.length - 1]!.writable) return false;
  bufs.push(buf);
  return bufs.length <= maxBuffers;
}

export function totalBytes(bufs: readonly Buf[]): number {
  return bufs.reduce((s, b) => s + b.len, 0);
}

export function chainBuffers(chain: DescriptorChain): Buf[] {
  return Array.from({ length: chain.count }, (_, k) => ({ addr: chain.addr(k), len: chain.len(k), writable: k >= chain.readable }));
}

/** Whether `chain` holds exactly `bufs`, with the readable/writable split and byte counts to match. */
export function sameBuffers(chain: DescriptorChain, bufs: readonly Buf[]): boolean {
  if (chain.count !== bufs.length) return false;
  let readable = 0;
  let rb = 0;
  let wb = 0;
  for (let k = 0; k < bufs.length; k++) {
    const b = bufs[k]!;
    if (chain.addr(k) !== b.addr || chain.len(k) !== b.len) return false;
    if (b.writable) wb += b.len;
    else {
      readable++;
      rb += b.len;
    }
  }
  return chain.readable === readable && chain.readableBytes === rb && chain.writableBytes === wb;
}

export function describeChain(x: unknown): string {
  if (x === null) return 'null';
  if (x instanceof Error) return `${x.name}: ${x.message}`;
  const c = x as DescriptorChain;
  return `chain head ${c.head} count ${c.count} readable ${c.readable}`;
}

/**
 * Fill the first `len` bytes of the chain's writable buffers through its views, as a device model
 * does before returning it (the guard checks the views stay inside the chain).
 */
export function writeIntoChain(chain: DescriptorChain, len: number, byte = 0xa5): void {
  let left = Math.min(len, chain.writableBytes);
  for (let k = chain.readable; k < chain.count && left > 0; k++) {
    const v = chain.view(k);
    v.fill(byte, 0, Math.min(left, v.length));
    left -= Math.min(left, v.length);
  }
}
