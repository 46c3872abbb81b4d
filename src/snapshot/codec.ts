/**
 * The snapshot byte format (docs/snapshots.md), little-endian:
 *
 *   "VTSN" magic, u16 format version, kind (u8 length, ASCII), then one value, a struct; nothing after.
 *   value  = u8 tag, payload:  1 u8 | 2 u16 | 3 u32 | 4 u64
 *                              5 bytes:  u32 length, the bytes
 *                              6 string: u32 length, UTF-8 (well-formed)
 *                              7 list:   u32 count, `count` values
 *                              8 struct: u32 count, `count` times (u8 name length, name, value)
 *
 * Decoding trusts nothing: every length and count is checked against the bytes left before anything
 * is allocated for it (each value takes at least one byte, so no count can ask for more items than
 * the input has bytes), nesting is at most {@link SNAPSHOT_MAX_DEPTH} deep, names are unique and
 * well-formed, and every failure is a SnapshotError('ERR_SNAPSHOT_MALFORMED') (an unknown version:
 * 'ERR_SNAPSHOT_VERSION'). Decoded bytes fields are copies: the snapshot never aliases the input.
 */

import { SnapshotError, UsageError } from '../errors.js';
import {
  SNAPSHOT_FORMAT_VERSION,
  SNAPSHOT_NAME_PATTERN,
  type FunctionSnapshot,
  type SnapshotStruct,
  type SnapshotValue,
} from './snapshot-value.js';

/** "VTSN". */
const MAGIC = [0x56, 0x54, 0x53, 0x4e] as const;
/** Deepest nesting of lists and structs (the function's tree is 5 deep). */
export const SNAPSHOT_MAX_DEPTH = 16;
/** Largest encoded snapshot accepted (guest memory is not part of a snapshot). */
export const SNAPSHOT_MAX_BYTES = 64 * 1024 * 1024;

const TAG = { u8: 1, u16: 2, u32: 3, u64: 4, bytes: 5, string: 6, list: 7, struct: 8 } as const;
const KIND_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

/** The bytes of `snapshot`; UsageError for a snapshot no decoder would accept (bad names, values, depth). */
export function encodeSnapshot(snapshot: FunctionSnapshot): Uint8Array {
  if (!Number.isInteger(snapshot.version) || snapshot.version < 0 || snapshot.version > 0xffff)
    throw new UsageError(`snapshot version ${snapshot.version} is not a u16`);
  if (!KIND_PATTERN.test(snapshot.kind)) throw new UsageError(`snapshot kind '${snapshot.kind}' is not valid`);
  const w = new Writer();
  w.raw(Uint8Array.from(MAGIC));
  w.u16(snapshot.version);
  w.name(snapshot.kind);
  w.value(snapshot.fields, 1);
  const out = w.finish();
  if (out.byteLength > SNAPSHOT_MAX_BYTES) throw new UsageError(`snapshot of ${out.byteLength} bytes exceeds ${SNAPSHOT_MAX_BYTES}`);
  return out;
}

/** The snapshot `bytes` hold; SnapshotError on anything else (see the file comment). */
export function decodeSnapshot(bytes: Uint8Array): FunctionSnapshot {
  if (!(bytes instanceof Uint8Array)) throw malformed('input is not a Uint8Array');
  if (bytes.byteLength > SNAPSHOT_MAX_BYTES) throw malformed(`${bytes.byteLength} bytes exceeds ${SNAPSHOT_MAX_BYTES}`);
  const r = new Reader(bytes);
  for (const b of MAGIC) if (r.u8() !== b) throw malformed('no snapshot magic "VTSN"');
  const version = r.u16();
  if (version !== SNAPSHOT_FORMAT_VERSION)
    throw new SnapshotError(
      'ERR_SNAPSHOT_VERSION',
      `snapshot format version ${version}; this build reads version ${SNAPSHOT_FORMAT_VERSION}`,
    );
  const kind = r.name('kind');
  const fields = r.value(1);
  if (fields.type !== 'struct') throw malformed(`the root is a ${fields.type}, expected a struct`);
  if (r.left !== 0) throw malformed(`${r.left} bytes after the snapshot`);
  return { version, kind, fields };
}

function malformed(why: string): SnapshotError {
  return new SnapshotError('ERR_SNAPSHOT_MALFORMED', `snapshot bytes: ${why}`);
}

class Writer {
  private buf = new Uint8Array(256);
  private dv = new DataView(this.buf.buffer);
  private at = 0;
  private readonly text = new TextEncoder();

  finish(): Uint8Array {
    return this.buf.slice(0, this.at);
  }
  raw(b: Uint8Array): void {
    this.room(b.byteLength);
    this.buf.set(b, this.at);
    this.at += b.byteLength;
  }
  u8(v: number): void {
    this.room(1);
    this.dv.setUint8(this.at++, v);
  }
  u16(v: number): void {
    this.room(2);
    this.dv.setUint16(this.at, v, true);
    this.at += 2;
  }
  u32(v: number): void {
    this.room(4);
    this.dv.setUint32(this.at, v, true);
    this.at += 4;
  }
  name(n: string): void {
    // Valid names are ASCII, so one byte per character.
    this.u8(n.length);
    this.raw(this.text.encode(n));
  }
  value(v: SnapshotValue, depth: number): void {
    this.u8(TAG[v.type]);
    switch (v.type) {
      case 'u8':
      case 'u16':
      case 'u32': {
        const max = v.type === 'u8' ? 0xff : v.type === 'u16' ? 0xffff : 0xffff_ffff;
        if (!Number.isInteger(v.value) || v.value < 0 || v.value > max)
          throw new UsageError(`snapshot ${v.type} ${v.value} is out of range`);
        if (v.type === 'u8') this.u8(v.value);
        else if (v.type === 'u16') this.u16(v.value);
        else this.u32(v.value);
        return;
      }
      case 'u64':
        if (v.value < 0n || v.value > 0xffff_ffff_ffff_ffffn) throw new UsageError(`snapshot u64 ${v.value} is out of range`);
        this.room(8);
        this.dv.setBigUint64(this.at, v.value, true);
        this.at += 8;
        return;
      case 'bytes':
        this.u32(v.value.byteLength);
        this.raw(v.value);
        return;
      case 'string': {
        const b = this.text.encode(v.value);
        this.u32(b.byteLength);
        this.raw(b);
        return;
      }
      case 'list':
        this.nest(depth);
        this.u32(v.items.length);
        for (const item of v.items) this.value(item, depth + 1);
        return;
      case 'struct':
        this.nest(depth);
        this.u32(v.fields.size);
        for (const [name, field] of v.fields) {
          if (!SNAPSHOT_NAME_PATTERN.test(name)) throw new UsageError(`snapshot field name '${name}' is not valid`);
          this.name(name);
          this.value(field, depth + 1);
        }
        return;
    }
  }
  private nest(depth: number): void {
    if (depth > SNAPSHOT_MAX_DEPTH) throw new UsageError(`snapshot nested deeper than ${SNAPSHOT_MAX_DEPTH}`);
  }
  private room(n: number): void {
    if (this.at + n <= this.buf.byteLength) return;
    let size = this.buf.byteLength * 2;
    while (size < this.at + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.at));
    this.buf = next;
    this.dv = new DataView(next.buffer);
  }
}

class Reader {
  private at = 0;
  private readonly dv: DataView;
  private readonly text = new TextDecoder('utf-8', { fatal: true });

  constructor(private readonly bytes: Uint8Array) {
    this.dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  get left(): number {
    return this.bytes.byteLength - this.at;
  }
  private need(n: number, what: string): void {
    if (n > this.left) throw malformed(`${what} needs ${n} bytes at offset ${this.at}, ${this.left} left`);
  }
  u8(): number {
    this.need(1, 'a u8');
    return this.dv.getUint8(this.at++);
  }
  u16(): number {
    this.need(2, 'a u16');
    const v = this.dv.getUint16(this.at, true);
    this.at += 2;
    return v;
  }
  u32(): number {
    this.need(4, 'a u32');
    const v = this.dv.getUint32(this.at, true);
    this.at += 4;
    return v;
  }
  private take(n: number, what: string): Uint8Array {
    this.need(n, what);
    const b = this.bytes.slice(this.at, this.at + n);
    this.at += n;
    return b;
  }
  name(what: string): string {
    const n = this.u8();
    const b = this.take(n, what);
    const name = String.fromCharCode(...b);
    if (!SNAPSHOT_NAME_PATTERN.test(name)) throw malformed(`${what} at offset ${this.at - n} is not a valid name`);
    return name;
  }
  /** A count of items that each take at least one byte: never more than the bytes left. */
  private count(what: string): number {
    const n = this.u32();
    if (n > this.left) throw malformed(`${what} of ${n} items at offset ${this.at - 4}, ${this.left} bytes left`);
    return n;
  }
  value(depth: number): SnapshotValue {
    const at = this.at;
    const tag = this.u8();
    switch (tag) {
      case TAG.u8:
        return { type: 'u8', value: this.u8() };
      case TAG.u16:
        return { type: 'u16', value: this.u16() };
      case TAG.u32:
        return { type: 'u32', value: this.u32() };
      case TAG.u64: {
        this.need(8, 'a u64');
        const value = this.dv.getBigUint64(this.at, true);
        this.at += 8;
        return { type: 'u64', value };
      }
      case TAG.bytes:
        return { type: 'bytes', value: this.take(this.u32(), 'a bytes field') };
      case TAG.string: {
        const b = this.take(this.u32(), 'a string');
        try {
          return { type: 'string', value: this.text.decode(b) };
        } catch {
          throw malformed(`the string at offset ${at} is not well-formed UTF-8`);
        }
      }
      case TAG.list: {
        this.nest(depth, at);
        const n = this.count('a list');
        const items: SnapshotValue[] = [];
        for (let i = 0; i < n; i++) items.push(this.value(depth + 1));
        return { type: 'list', items };
      }
      case TAG.struct: {
        this.nest(depth, at);
        const n = this.count('a struct');
        const fields = new Map<string, SnapshotValue>();
        for (let i = 0; i < n; i++) {
          const name = this.name('a field name');
          if (fields.has(name)) throw malformed(`field '${name}' twice in the struct at offset ${at}`);
          fields.set(name, this.value(depth + 1));
        }
        return { type: 'struct', fields } satisfies SnapshotStruct;
      }
      default:
        throw malformed(`unknown tag ${tag} at offset ${at}`);
    }
  }
  private nest(depth: number, at: number): void {
    if (depth > SNAPSHOT_MAX_DEPTH) throw malformed(`nesting deeper than ${SNAPSHOT_MAX_DEPTH} at offset ${at}`);
  }
}
