/**
 * Reading a {@link SnapshotStruct} whose contents nobody vouches for: each accessor finds a field by
 * name, checks its type (and, where asked, its range) and throws a SnapshotError naming the field's
 * path otherwise. Unknown fields are ignored (the versioning rule, docs/snapshots.md).
 *
 *   const r = new SnapshotReader(snapshot.fields, 'function');
 *   const status = r.u8('status');
 *   const size = r.int('size', 'u16', 1, 32768);
 *   for (const q of r.structs('queues', 64)) ...
 */

import { SnapshotError } from '../errors.js';
import type {
  SnapshotBytes,
  SnapshotInt,
  SnapshotList,
  SnapshotString,
  SnapshotStruct,
  SnapshotU64,
  SnapshotValue,
} from './snapshot-value.js';

/** The value interface of each field type. */
interface ValueOfType {
  u8: SnapshotInt;
  u16: SnapshotInt;
  u32: SnapshotInt;
  u64: SnapshotU64;
  bytes: SnapshotBytes;
  string: SnapshotString;
  list: SnapshotList;
  struct: SnapshotStruct;
}

export class SnapshotReader {
  constructor(
    readonly value: SnapshotStruct,
    /** Where the struct sits in the snapshot, for messages: `core.queues[2]`. */
    readonly path: string,
  ) {}

  has(name: string): boolean {
    return this.value.fields.has(name);
  }

  /** Field `name` as an integer of `type` in [min, max]. */
  int(name: string, type: SnapshotInt['type'], min = 0, max = Number.MAX_SAFE_INTEGER): number {
    const v = this.field(name, type).value;
    if (v < min || v > max) throw this.rangeError(name, `${v} is not in [${min}, ${max}]`);
    return v;
  }
  u8(name: string): number {
    return this.int(name, 'u8');
  }
  u16(name: string): number {
    return this.int(name, 'u16');
  }
  u32(name: string): number {
    return this.int(name, 'u32');
  }
  u64(name: string): bigint {
    return this.field(name, 'u64').value;
  }
  /** A u8 of 0 or 1. */
  flag(name: string): boolean {
    return this.int(name, 'u8', 0, 1) === 1;
  }
  /** Field `name` as bytes, of exactly `length` bytes when given, else of at most `maxLength`. */
  bytes(name: string, length?: number, maxLength = Number.MAX_SAFE_INTEGER): Uint8Array {
    const v = this.field(name, 'bytes').value;
    if (length !== undefined && v.byteLength !== length) throw this.rangeError(name, `${v.byteLength} bytes, expected ${length}`);
    if (v.byteLength > maxLength) throw this.rangeError(name, `${v.byteLength} bytes, at most ${maxLength} allowed`);
    return v;
  }
  string(name: string, maxLength = Number.MAX_SAFE_INTEGER): string {
    const v = this.field(name, 'string').value;
    if (v.length > maxLength) throw this.rangeError(name, `a string of ${v.length} characters, at most ${maxLength} allowed`);
    return v;
  }
  /** Field `name` as a string that is one of `choices`. */
  choice<T extends string>(name: string, choices: readonly T[]): T {
    const v = this.field(name, 'string').value;
    const found = choices.find((c) => c === v);
    if (found === undefined) throw this.rangeError(name, `'${v.slice(0, 64)}' is not one of ${choices.join(', ')}`);
    return found;
  }
  struct(name: string): SnapshotReader {
    return new SnapshotReader(this.field(name, 'struct'), this.child(name));
  }
  /** Field `name` as a list of at most `max` items. */
  list(name: string, max: number): readonly SnapshotValue[] {
    const items = this.field(name, 'list').items;
    if (items.length > max) throw this.rangeError(name, `${items.length} items, at most ${max} allowed`);
    return items;
  }
  /** Field `name` as a list of at most `max` structs. */
  structs(name: string, max: number): SnapshotReader[] {
    return this.list(name, max).map((item, i) => {
      const path = `${this.child(name)}[${i}]`;
      if (item.type !== 'struct') throw new SnapshotError('ERR_SNAPSHOT_FIELD', `${path}: a ${item.type}, expected a struct`);
      return new SnapshotReader(item, path);
    });
  }
  /** Field `name` as a list of at most `max` integers of `type` in [min, max]. */
  ints(name: string, type: SnapshotInt['type'], maxItems: number, min = 0, max = Number.MAX_SAFE_INTEGER): number[] {
    return this.list(name, maxItems).map((item, i) => {
      const path = `${this.child(name)}[${i}]`;
      if (item.type !== type) throw new SnapshotError('ERR_SNAPSHOT_FIELD', `${path}: a ${item.type}, expected a ${type}`);
      if (item.value < min || item.value > max)
        throw new SnapshotError('ERR_SNAPSHOT_RANGE', `${path}: ${item.value} is not in [${min}, ${max}]`);
      return item.value;
    });
  }

  /** A SnapshotError('ERR_SNAPSHOT_RANGE') about field `name`. */
  rangeError(name: string, why: string): SnapshotError {
    return new SnapshotError('ERR_SNAPSHOT_RANGE', `${this.child(name)}: ${why}`);
  }
  /** A SnapshotError of `code` about this struct. */
  error(code: SnapshotError['code'], why: string): SnapshotError {
    return new SnapshotError(code, `${this.path}: ${why}`);
  }

  private child(name: string): string {
    return `${this.path}.${name}`;
  }

  private field<K extends keyof ValueOfType>(name: string, type: K): ValueOfType[K] {
    const v = this.value.fields.get(name);
    if (v === undefined) throw new SnapshotError('ERR_SNAPSHOT_FIELD', `${this.child(name)}: missing`);
    if (v.type !== type) throw new SnapshotError('ERR_SNAPSHOT_FIELD', `${this.child(name)}: a ${v.type}, expected a ${type}`);
    return v as ValueOfType[K];
  }
}
