/**
 * Saved emulator states of a guest booted to /init's VT-READY, so that a test restores one (about a
 * second) instead of booting (about ten). A state holds the guest's view of our PCI functions (the
 * kernel enumerated them), so it is keyed on everything that view depends on: the assets, the kernel
 * command line, RAM size, the v86 version and each function's slot, power-on config space and BARs.
 * Our functions' own state is not in v86's state: it is the config writes the guest made, stored
 * beside it and replayed into fresh functions before restoring.
 */

import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type { ConfigWrite } from './pci-adapter.js';

/** The version of the v86 package in use (part of every key: the state format may change). */
export const V86_VERSION: string = (createRequire(import.meta.url)('v86/package.json') as { version: string }).version;

/** What is stored next to the emulator state. */
export interface SavedStateRecord {
  readonly key: string;
  readonly devices: readonly {
    readonly devfn: number;
    readonly configWrites: readonly ConfigWrite[];
    /** The 256 config bytes when the state was saved: replaying must reproduce them. */
    readonly config: readonly number[];
  }[];
}

/** What a state key is computed from. */
export interface SavedStateInputs {
  readonly manifest: string;
  readonly cmdline: string;
  readonly memoryBytes: number;
  readonly devices: readonly { readonly devfn: number; readonly config: readonly number[]; readonly bars: unknown }[];
}

export function savedStateKey(inputs: SavedStateInputs): string {
  return createHash('sha256')
    .update(JSON.stringify({ ...inputs, v86: V86_VERSION }))
    .digest('hex')
    .slice(0, 24);
}

/**
 * A folder of states, one file each: `<key>.state` holds a 4-byte little-endian length, the record
 * as JSON, then v86's state bytes, so that a single rename publishes both together.
 */
export class SavedStateStore {
  constructor(readonly dir: string) {}

  load(key: string): { state: ArrayBuffer; record: SavedStateRecord } | undefined {
    let bytes: Buffer;
    try {
      bytes = readFileSync(join(this.dir, `${key}.state`));
    } catch {
      return undefined;
    }
    if (bytes.byteLength < 4) return undefined;
    const jsonEnd = 4 + bytes.readUInt32LE(0);
    if (jsonEnd > bytes.byteLength) return undefined;
    let record: SavedStateRecord;
    try {
      record = JSON.parse(bytes.toString('utf8', 4, jsonEnd)) as SavedStateRecord;
    } catch {
      return undefined;
    }
    if (record.key !== key) return undefined;
    const state = new ArrayBuffer(bytes.byteLength - jsonEnd);
    new Uint8Array(state).set(bytes.subarray(jsonEnd));
    return { state, record };
  }

  /** Store atomically (write, then rename), so a concurrent reader sees a whole state or none. */
  save(record: SavedStateRecord, state: ArrayBuffer): void {
    mkdirSync(this.dir, { recursive: true });
    const json = Buffer.from(JSON.stringify(record), 'utf8');
    const head = Buffer.alloc(4);
    head.writeUInt32LE(json.byteLength, 0);
    const file = join(this.dir, `${record.key}.state`);
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, Buffer.concat([head, json, new Uint8Array(state)]));
    renameSync(tmp, file);
  }
}
