/**
 * The guarantees every target asserts (README threat model): only our typed errors escape, guest
 * memory is touched only inside the request's own buffers, every guest-controlled loop ends within a
 * bound, memory stays bounded. A broken guarantee is a GuaranteeViolation, which the engine records
 * as a finding; any other exception escaping a target is a finding too.
 */

import { VirtioError } from '../../src/errors.js';
import { AccessBudgetExceeded } from '../../src/testing/guarded-memory.js';

export type ViolationKind =
  | 'escaped-exception' // an exception other than the allowed VirtioError subclasses
  | 'memory-outside' // a guest memory access outside the allowed ranges
  | 'hang' // an access or iteration budget, or the per-input wall time, ran out
  | 'memory-growth' // a structure grew beyond what the input can justify
  | 'contract'; // a promised outcome did not happen (e.g. no NEEDS_RESET after a fault)

export class GuaranteeViolation extends Error {
  constructor(
    readonly kind: ViolationKind,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`${kind}: ${message}`, options);
    this.name = 'GuaranteeViolation';
  }
}

/** A VirtioError subclass a target allows an API to throw. */
export type ErrorClass = abstract new (...args: never[]) => VirtioError;

/**
 * Runs `fn`; returns its value, or the allowed typed error it threw. Anything else (a TypeError, a
 * RangeError from a DataView, a VirtioError of a class the API does not promise) is a violation.
 */
export function expectTyped<T>(what: string, allowed: readonly ErrorClass[], fn: () => T): T | VirtioError {
  try {
    return fn();
  } catch (err) {
    const v = classify(what, allowed, err);
    if (v instanceof VirtioError) return v;
    throw v;
  }
}

/** Async form of {@link expectTyped}. */
export async function expectTypedAsync<T>(what: string, allowed: readonly ErrorClass[], fn: () => Promise<T>): Promise<T | VirtioError> {
  try {
    return await fn();
  } catch (err) {
    const v = classify(what, allowed, err);
    if (v instanceof VirtioError) return v;
    throw v;
  }
}

/** An allowed typed error as is; anything else as the violation it is. */
function classify(what: string, allowed: readonly ErrorClass[], err: unknown): VirtioError | GuaranteeViolation {
  if (err instanceof GuaranteeViolation) return err;
  if (err instanceof AccessBudgetExceeded) return new GuaranteeViolation('hang', `${what}: ${err.message}`, { cause: err });
  if (allowed.some((cls) => err instanceof cls)) return err as VirtioError;
  return new GuaranteeViolation('escaped-exception', `${what} threw ${describe(err)}`, { cause: err });
}

export function check(condition: boolean, kind: ViolationKind, message: () => string): asserts condition {
  if (!condition) throw new GuaranteeViolation(kind, message());
}

export function describe(err: unknown): string {
  if (err instanceof VirtioError) return `${err.name}(${err.code}): ${err.message}`;
  if (err instanceof Error) return `${err.name}: ${err.message}`;
  return String(err);
}
