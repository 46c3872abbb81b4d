/**
 * Guest memory that polices its user: every access is checked against ranges the test or fuzz
 * harness allowed (the rings, the request's own buffers), counted against a budget (an unbounded
 * guest-driven loop shows up as a budget overrun, not a hang), and writes made through zero-copy
 * views are caught afterwards by comparing the image with a snapshot.
 *
 * Violations are recorded rather than thrown, so code that catches errors to set DEVICE_NEEDS_RESET
 * cannot hide them; call {@link GuardedMemory.assertClean} after the run. Only the budget overrun
 * throws, to stop the runaway loop, and it is recorded as well.
 */

import { ArrayGuestMemory, type GuestMemory, type GuestRegion } from '../memory/guest-memory.js';

export type AccessKind = 'read' | 'write' | 'view';

export interface MemoryViolation {
  readonly kind: AccessKind | 'budget' | 'changed';
  readonly addr: number;
  readonly len: number;
}

/** Thrown when the access budget runs out: a guest-controlled loop did not stop. */
export class AccessBudgetExceeded extends Error {
  constructor(readonly budget: number) {
    super(`more than ${budget} guest memory accesses in one run`);
    this.name = 'AccessBudgetExceeded';
  }
}

interface Allowed {
  readonly start: number;
  readonly end: number;
  readonly label: string;
}

export interface GuardedMemoryOptions {
  /** Guest-physical address of the first byte (default 0). */
  readonly base?: number;
  /** Accesses allowed before AccessBudgetExceeded (default 1,000,000). */
  readonly accessBudget?: number;
  /** Allow every in-range read (checking writes only), e.g. when the harness cannot know every buffer. */
  readonly allowAllReads?: boolean;
}

export class GuardedMemory implements GuestMemory {
  readonly inner: ArrayGuestMemory;
  readonly end: number;
  readonly violations: MemoryViolation[] = [];
  accesses = 0;
  private readonly readable: Allowed[] = [];
  private readonly writable: Allowed[] = [];
  private readonly budget: number;
  private readonly allowAllReads: boolean;
  private snapshotBytes: Uint8Array | undefined;

  constructor(size: number, options: GuardedMemoryOptions = {}) {
    this.inner = new ArrayGuestMemory(size, options.base ?? 0);
    this.end = this.inner.end;
    this.budget = options.accessBudget ?? 1_000_000;
    this.allowAllReads = options.allowAllReads ?? false;
  }

  /** The backing bytes, for the harness to lay out rings and buffers (not checked). */
  get bytes(): Uint8Array {
    return this.inner.bytes;
  }
  get base(): number {
    return this.inner.base;
  }

  /** Allow reads of [addr, addr + len). */
  allowRead(addr: number, len: number, label: string): void {
    this.readable.push({ start: addr, end: addr + len, label });
  }
  /** Allow reads and writes of [addr, addr + len). */
  allowWrite(addr: number, len: number, label: string): void {
    this.readable.push({ start: addr, end: addr + len, label });
    this.writable.push({ start: addr, end: addr + len, label });
  }
  /** Drop every allowance (e.g. after a reset, when no ring is live). */
  clearAllowed(): void {
    this.readable.length = 0;
    this.writable.length = 0;
  }

  /** Remember the image; {@link changedOutsideWritable} compares against it. */
  snapshot(): void {
    // Reuse one buffer: harnesses snapshot before every access.
    if (this.snapshotBytes === undefined) this.snapshotBytes = this.inner.bytes.slice();
    else this.snapshotBytes.set(this.inner.bytes);
  }

  /** Addresses of bytes changed since the snapshot outside every writable range (first 16). */
  changedOutsideWritable(): number[] {
    const before = this.snapshotBytes;
    if (before === undefined) return [];
    const now = this.inner.bytes;
    const base = this.inner.base;
    // Compare the gaps between writable ranges with memcmp; scan byte by byte only a gap that differs.
    const cuts = this.writable
      .map((r) => [Math.max(0, r.start - base), Math.min(now.length, r.end - base)] as const)
      .filter(([a, b]) => a < b)
      .sort((x, y) => x[0] - y[0]);
    const out: number[] = [];
    let from = 0;
    const gap = (end: number): void => {
      if (from < end && Buffer.compare(now.subarray(from, end), before.subarray(from, end)) !== 0) {
        for (let i = from; i < end && out.length < 16; i++) if (now[i] !== before[i]) out.push(base + i);
      }
    };
    for (const [a, b] of cuts) {
      gap(a);
      from = Math.max(from, b);
    }
    gap(now.length);
    return out;
  }

  /** Every violation recorded so far plus changed bytes outside writable ranges; empty when clean. */
  problems(): MemoryViolation[] {
    const changed = this.changedOutsideWritable().map((addr): MemoryViolation => ({ kind: 'changed', addr, len: 1 }));
    return [...this.violations, ...changed];
  }

  /** Throws an Error describing the first problems, if any. */
  assertClean(): void {
    const p = this.problems();
    if (p.length === 0) return;
    const shown = p
      .slice(0, 4)
      .map((v) => `${v.kind} [0x${v.addr.toString(16)}, +0x${v.len.toString(16)})`)
      .join(', ');
    throw new Error(`guest memory guard: ${p.length} violation(s): ${shown}`);
  }

  contains(addr: number, len: number): boolean {
    return this.inner.contains(addr, len);
  }

  private check(kind: AccessKind, addr: number, len: number): void {
    if (++this.accesses > this.budget) {
      this.violations.push({ kind: 'budget', addr, len });
      throw new AccessBudgetExceeded(this.budget);
    }
    // Out-of-memory accesses are refused by the inner memory with GuestMemoryError: not a breach.
    if (!this.inner.contains(addr, len)) return;
    const ok =
      kind === 'write'
        ? inside(this.writable, addr, len)
        : kind === 'view'
          ? this.allowAllReads || inside(this.readable, addr, len) || inside(this.writable, addr, len)
          : this.allowAllReads || inside(this.readable, addr, len);
    if (!ok && this.violations.length < 64) this.violations.push({ kind, addr, len });
  }

  read8(addr: number): number {
    this.check('read', addr, 1);
    return this.inner.read8(addr);
  }
  read16(addr: number): number {
    this.check('read', addr, 2);
    return this.inner.read16(addr);
  }
  read32(addr: number): number {
    this.check('read', addr, 4);
    return this.inner.read32(addr);
  }
  read64(addr: number): bigint {
    this.check('read', addr, 8);
    return this.inner.read64(addr);
  }
  write8(addr: number, value: number): void {
    this.check('write', addr, 1);
    this.inner.write8(addr, value);
  }
  write16(addr: number, value: number): void {
    this.check('write', addr, 2);
    this.inner.write16(addr, value);
  }
  write32(addr: number, value: number): void {
    this.check('write', addr, 4);
    this.inner.write32(addr, value);
  }
  write64(addr: number, value: bigint): void {
    this.check('write', addr, 8);
    this.inner.write64(addr, value);
  }
  view(addr: number, len: number): Uint8Array {
    this.check('view', addr, len);
    return this.inner.view(addr, len);
  }
  /** Checked as a view is: what is written through it shows in {@link changedOutsideWritable}. */
  region(addr: number, len: number): GuestRegion {
    this.check('view', addr, len);
    return this.inner.region(addr, len);
  }
  read(addr: number, dst: Uint8Array): void {
    this.check('read', addr, dst.byteLength);
    this.inner.read(addr, dst);
  }
  write(addr: number, src: Uint8Array): void {
    this.check('write', addr, src.byteLength);
    this.inner.write(addr, src);
  }
}

function inside(ranges: readonly Allowed[], addr: number, len: number): boolean {
  for (const r of ranges) if (addr >= r.start && addr + len <= r.end) return true;
  return false;
}
