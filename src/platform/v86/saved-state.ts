/**
 * Saved emulator states of a guest booted to /init's VT-READY, so that a test restores one (about a
 * second) instead of booting (about ten). A state holds the guest's view of our PCI functions (the
 * kernel enumerated them), so it is keyed on everything that view depends on: the assets, the kernel
 * command line, RAM size, the v86 version and each function's slot, power-on config space and BARs.
 * Our functions' own state is not in v86's state. What the guest can observe of it at VT-READY is
 * config space (the BIOS and the kernel programmed BARs, command, interrupt line): those writes are
 * stored with the state and replayed into fresh functions before restoring. Anything else the
 * firmware did (SeaBIOS drives virtio-blk looking for a boot disk) is undone by Linux anyway: the
 * virtio core resets every device when it registers it, which happens after VT-READY when /init
 * loads the modules. So a restored function starts at power-on state plus its config writes.
 */

import { createHash } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { trackPath } from '../cleanup.js';
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
  /** v86's own devices beside ours (own-devices.ts ownDeviceKey), when there are any. */
  readonly v86Devices?: Readonly<Record<string, unknown>>;
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
  /** Locks this process holds, each with the function that forgets it in cleanup.ts. */
  private readonly held = new Map<string, () => void>();

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

  /**
   * The state for `key`; or, when there is none, `true` if this caller now holds the right to boot
   * and save it (release it after), `false` if it should boot without saving. A caller that finds
   * another holding the right waits up to `timeoutMs` for that state.
   */
  async loadOrClaim(key: string, timeoutMs: number): Promise<{ state: ArrayBuffer; record: SavedStateRecord } | boolean> {
    mkdirSync(this.dir, { recursive: true });
    const lock = join(this.dir, `${key}.lock`);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const saved = this.load(key);
      if (saved !== undefined) return saved;
      try {
        closeSync(openSync(lock, 'wx'));
        // A boot interrupted by a signal must not leave others waiting for a state that never comes.
        this.held.set(key, trackPath(lock));
        return true;
      } catch {
        // Held by another boot; a lock older than the timeout belongs to one that died.
      }
      if (Date.now() > deadline) return false;
      try {
        if (Date.now() - statSync(lock).mtimeMs > timeoutMs) rmSync(lock, { force: true });
      } catch {
        // Released meanwhile: look again.
      }
      await sleep(250);
    }
  }

  release(key: string): void {
    rmSync(join(this.dir, `${key}.lock`), { force: true });
    this.held.get(key)?.();
    this.held.delete(key);
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
