/**
 * A device-state snapshot as a tree of named, typed fields (docs/snapshots.md): self-describing, so
 * that a reader finds each field by name and type, ignores fields it does not know and refuses, with
 * a typed error, a field it needs that is missing or of another type. Every layer that holds state
 * (PCI function, transport, device core, rings, device model) writes its own struct into the tree.
 *
 *   const s: FunctionSnapshot = fn.snapshot();
 *   s.fields.fields.get('core')            // a SnapshotStruct
 *   encodeSnapshot(s)                       // bytes (snapshot/codec.ts)
 */

import { UsageError } from '../errors.js';

/**
 * The snapshot format version this build writes and reads. A new version means a reader of the old
 * one would misread a snapshot of the new: a field changed meaning, type or unit, or a field a reader
 * must understand was added or removed. Adding a field an older reader may ignore keeps the version.
 */
export const SNAPSHOT_FORMAT_VERSION = 1;

/** An unsigned integer field of 8, 16 or 32 bits. */
export interface SnapshotInt {
  readonly type: 'u8' | 'u16' | 'u32';
  readonly value: number;
}
/** An unsigned 64-bit field (features, addresses beyond 2^53 never occur but are representable). */
export interface SnapshotU64 {
  readonly type: 'u64';
  readonly value: bigint;
}
export interface SnapshotBytes {
  readonly type: 'bytes';
  readonly value: Uint8Array;
}
export interface SnapshotString {
  readonly type: 'string';
  readonly value: string;
}
export interface SnapshotList {
  readonly type: 'list';
  readonly items: readonly SnapshotValue[];
}
/** Named fields, in the order they were written; names are unique. */
export interface SnapshotStruct {
  readonly type: 'struct';
  readonly fields: ReadonlyMap<string, SnapshotValue>;
}
export type SnapshotValue = SnapshotInt | SnapshotU64 | SnapshotBytes | SnapshotString | SnapshotList | SnapshotStruct;

/** A snapshot of one thing: the format version, what it is a snapshot of, and its fields. */
export interface FunctionSnapshot {
  /** {@link SNAPSHOT_FORMAT_VERSION} when written by this build. */
  readonly version: number;
  /** What the snapshot is of, e.g. 'virtio-pci-function'. */
  readonly kind: string;
  readonly fields: SnapshotStruct;
}

/** Field names: 1 to 64 characters of [A-Za-z0-9_-]. */
export const SNAPSHOT_NAME_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

const INT_MAX = { u8: 0xff, u16: 0xffff, u32: 0xffff_ffff } as const;

function int(type: SnapshotInt['type'], value: number): SnapshotInt {
  if (!Number.isInteger(value) || value < 0 || value > INT_MAX[type])
    throw new UsageError(`snapshot ${type} field: ${value} is out of range`);
  return { type, value };
}

export const u8 = (value: number): SnapshotInt => int('u8', value);
export const u16 = (value: number): SnapshotInt => int('u16', value);
export const u32 = (value: number): SnapshotInt => int('u32', value);
/** A boolean, as a u8 of 0 or 1. */
export const flag = (value: boolean): SnapshotInt => int('u8', value ? 1 : 0);
export function u64(value: bigint | number): SnapshotU64 {
  const v = BigInt(value);
  if (v < 0n || v > 0xffff_ffff_ffff_ffffn) throw new UsageError(`snapshot u64 field: ${v} is out of range`);
  return { type: 'u64', value: v };
}
/** A bytes field holding a copy of `value`. */
export const bytes = (value: Uint8Array): SnapshotBytes => ({ type: 'bytes', value: value.slice() });
export const string = (value: string): SnapshotString => ({ type: 'string', value });
export const list = (items: readonly SnapshotValue[]): SnapshotList => ({ type: 'list', items });

/** A struct of the fields of `record`, in its key order; a key that is not a valid field name is a UsageError. */
export function struct(record: Readonly<Record<string, SnapshotValue | undefined>>): SnapshotStruct {
  const fields = new Map<string, SnapshotValue>();
  for (const [name, value] of Object.entries(record)) {
    if (!SNAPSHOT_NAME_PATTERN.test(name)) throw new UsageError(`snapshot field name '${name}' is not valid`);
    if (value !== undefined) fields.set(name, value);
  }
  return { type: 'struct', fields };
}
