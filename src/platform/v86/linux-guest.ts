/**
 * A Linux guest under v86, headless in Node, with virtio-ts PCI functions on its bus: boots Debian's
 * kernel with the initramfs of scripts/guest (or restores a saved state of that boot), then drives
 * /init's command protocol over the serial console (guest-protocol.ts). Every wait has a timeout,
 * and a failure carries the serial log.
 *
 *   const guest = await LinuxGuest.boot({ devices: [{ name: 'rng', create: (host) => new VirtioPciFunction(rng, host) }] });
 *   try {
 *     await guest.command('load');
 *     const out = await guest.command('rng 64');
 *   } finally {
 *     await guest.destroy();
 *   }
 */

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { V86 } from 'v86';
import { BusError, UsageError, V86StateError, VirtioError } from '../../errors.js';
import type { VirtioDevice } from '../../core/virtio-device.js';
import type { DeviceHost, PciFunction } from '../../pci/function.js';
import type { VirtioPciFunctionOptions } from '../../transport/pci/virtio-pci-function.js';
import { findGuestAssets, guestAssetDir, type GuestAssets, type GuestKernel } from './assets.js';
import {
  BASE_CMDLINE,
  DONE_MARK,
  POWEROFF_MARK,
  READY_MARK,
  SerialLog,
  parseDone,
  parseResult,
  type CommandOutput,
  type GuestResult,
} from './guest-protocol.js';
import { FIRST_FREE_DEVFN, V86PciAdapter, configSnapshot, type PluggedFunction } from './pci-adapter.js';
import { ownDeviceKey, ownDeviceOptions, type V86OwnDevices } from './own-devices.js';
import { SavedStateStore, savedStateKey, type SavedStateRecord } from './saved-state.js';

/**
 * A PCI function to put on the guest's bus: one `create` builds, or a virtio device that
 * {@link V86PciAdapter.plugVirtio} puts there (its modern BAR 32-bit unless `options` say otherwise).
 */
export type GuestDevice = GuestSlot &
  (
    | {
        /** Builds the function against the host (guest memory, INTx) the emulator gives it. */
        readonly create: (host: DeviceHost) => PciFunction;
      }
    | { readonly virtio: VirtioDevice; readonly options?: VirtioPciFunctionOptions }
  );

export interface GuestSlot {
  readonly name: string;
  /** Bus-0 devfn; default: the next free slot from 00:0d.0. */
  readonly devfn?: number;
}

export interface LinuxGuestOptions {
  readonly devices?: readonly GuestDevice[];
  /** The kernel to boot (its built assets in the cache); default `$VIRTIO_TS_GUEST_KERNEL`, or 6.1. */
  readonly kernel?: GuestKernel;
  /** Assets to boot instead of a built kernel's. */
  readonly assets?: GuestAssets;
  /** Kernel parameters added to the base ones (console on ttyS0, no MSI: v86 cannot deliver it). */
  readonly cmdline?: string;
  /** Guest RAM in MiB (default 128; the initrd is loaded at 64 MiB). */
  readonly memoryMiB?: number;
  /** Restore a saved state of this configuration's boot when there is one; save one after a cold boot. Default true. */
  readonly savedState?: boolean;
  /** Default 180 s (a cold boot takes 10-15 s on two idle cores, several times that on busy ones). */
  readonly bootTimeoutMs?: number;
  /** Every byte the guest writes to its serial console, as text. */
  readonly onSerial?: (text: string) => void;
  /** v86's own devices beside ours, for comparisons (own-devices.ts); part of the saved state's key. */
  readonly v86Devices?: V86OwnDevices;
  /** Where the PCI adapter's warnings go (default console.warn), e.g. a BAR v86 cannot reach. */
  readonly warn?: (message: string) => void;
  /**
   * Resume the machine of this state ({@link LinuxGuest.saveState}, our devices' part included)
   * instead of booting: the devices must be made as when it was saved, their backends holding what
   * they held then (the same disk file). A device part that does not fit is a V86StateError.
   */
  readonly state?: ArrayBuffer;
}

/** A guest failure, with the serial log so far. */
export class GuestError extends BusError {
  constructor(
    message: string,
    readonly serialLog: string,
  ) {
    super(`${message}\n----- guest serial log -----\n${serialLog.slice(-20000)}\n----- end of serial log -----`);
  }
}

const require = createRequire(import.meta.url);

type LineWaiter = (line: string) => boolean;

export class LinuxGuest {
  private readonly serial = new SerialLog();
  private readonly waiters = new Set<LineWaiter>();
  private queue: Promise<unknown> = Promise.resolve();
  private destroyed = false;

  /** Whether this guest started from a saved state rather than a cold boot. */
  restored = false;
  /** Milliseconds from construction to VT-READY. */
  bootMs = 0;

  private constructor(
    readonly emulator: V86,
    readonly adapter: V86PciAdapter,
  ) {}

  /** What the guest wrote on its serial console (the most recent part: see SerialLog). */
  get serialLog(): string {
    return this.serial.text;
  }

  /** The functions on the bus, with their slots. */
  get functions(): PluggedFunction[] {
    return this.adapter.functions;
  }

  /** Boot (or restore) a guest and wait for /init's VT-READY. */
  static async boot(options: LinuxGuestOptions = {}): Promise<LinuxGuest> {
    const t0 = performance.now();
    const assets = options.assets ?? findGuestAssets(guestAssetDir(options.kernel));
    const memoryBytes = (options.memoryMiB ?? 128) * 1024 * 1024;
    const cmdline = [BASE_CMDLINE, options.cmdline ?? ''].join(' ').trim();
    const file = (path: string) => {
      const b = readFileSync(path);
      const buffer = new ArrayBuffer(b.byteLength);
      new Uint8Array(buffer).set(b);
      return { buffer };
    };
    const emulator = new V86({
      wasm_path: require.resolve('v86/build/v86.wasm'),
      // No vga_bios: with one, v86 maps its ROM over [0xfeb00000, 0xfec00000), where SeaBIOS places
      // PCI BARs (the adapter would have to refuse ours).
      bios: file(assets.bios),
      bzimage: file(assets.kernel),
      initrd: file(assets.initrd),
      cmdline,
      memory_size: memoryBytes,
      autostart: false,
      disable_keyboard: true,
      disable_mouse: true,
      disable_speaker: true,
      ...ownDeviceOptions(options.v86Devices ?? {}),
    });
    let guest: LinuxGuest | undefined;
    try {
      await new Promise<void>((resolve) => emulator.add_listener('emulator-loaded', () => resolve()));
      const adapter = new V86PciAdapter(emulator, { warn: options.warn });
      guest = new LinuxGuest(emulator, adapter);
      emulator.add_listener('serial0-output-byte', (byte) => guest!.onByte(byte, options.onSerial));
      let devfn = FIRST_FREE_DEVFN;
      for (const d of options.devices ?? []) {
        const at = d.devfn ?? devfn;
        if ('create' in d) adapter.plug(at, d.name, d.create);
        else adapter.plugVirtio(at, d.name, d.virtio, d.options);
        devfn = Math.max(devfn, ((at >> 3) + 1) << 3);
      }
      if (options.state !== undefined) {
        await emulator.restore_state(options.state).catch((e: unknown) => {
          // v86's own refusals (StateLoadError: header, version, length) are plain objects.
          if (e instanceof VirtioError) throw e;
          const why = typeof e === 'object' && e !== null && 'message' in e ? String(e.message) : String(e);
          throw new V86StateError(`not a state this v86 can restore: ${why.slice(0, 200)}`);
        });
        guest.restored = true;
        await emulator.run();
        guest.bootMs = performance.now() - t0;
        return guest;
      }
      const store = new SavedStateStore(join(assets.dir, 'states'));
      const key = savedStateKey({
        manifest: assets.manifest,
        cmdline,
        memoryBytes,
        devices: adapter.functions.map((f) => ({ devfn: f.devfn, config: configSnapshot(f.fn), bars: f.fn.bars })),
        ...(options.v86Devices === undefined ? {} : { v86Devices: ownDeviceKey(options.v86Devices) }),
      });
      const bootTimeoutMs = options.bootTimeoutMs ?? 180_000;
      // Concurrent boots of one configuration: one boots and saves, the others wait and restore.
      const claimed = (options.savedState ?? true) ? await store.loadOrClaim(key, bootTimeoutMs) : false;
      if (claimed !== false && claimed !== true) {
        guest.replay(claimed.record);
        await emulator.restore_state(claimed.state);
        adapter.syncIntxAfterRestore();
        guest.restored = true;
        await emulator.run();
      } else {
        try {
          const ready = guest.waitLine((l) => l.includes(READY_MARK), bootTimeoutMs, 'boot to /init');
          await emulator.run();
          await ready;
          // A guest that made more config writes than were recorded cannot be rebuilt from them.
          if (claimed && adapter.functions.every((f) => !f.configWritesTruncated)) {
            await emulator.stop();
            store.save(guest.record(key), await emulator.save_state());
            await emulator.run();
          }
        } finally {
          if (claimed) store.release(key);
        }
      }
      guest.bootMs = performance.now() - t0;
      return guest;
    } catch (err) {
      await (guest ? guest.destroy() : emulator.destroy());
      throw err;
    }
  }

  /** Replay a state's config writes into our fresh functions (same slots and functions: the key says so). */
  private replay(record: SavedStateRecord): void {
    for (const [i, f] of this.adapter.functions.entries()) {
      const d = record.devices[i]!;
      this.adapter.replayConfigWrites(f.devfn, d.configWrites);
      if (configSnapshot(f.fn).some((b, off) => b !== d.config[off])) {
        throw new GuestError(
          `${f.name}: replaying the saved config writes does not reproduce its config space (a stale saved state? delete the states folder in the guest cache)`,
          this.serial.text,
        );
      }
    }
  }

  private record(key: string): SavedStateRecord {
    return {
      key,
      devices: this.adapter.functions.map((f) => ({ devfn: f.devfn, configWrites: f.configWrites, config: configSnapshot(f.fn) })),
    };
  }

  private onByte(byte: number, onSerial: ((text: string) => void) | undefined): void {
    const line = this.serial.push(byte);
    onSerial?.(String.fromCharCode(byte));
    if (line !== undefined) for (const w of [...this.waiters]) if (w(line)) this.waiters.delete(w);
  }

  /** Resolves with the first line `match` accepts, or rejects after `timeoutMs` with the serial log. */
  waitLine(match: (line: string) => boolean, timeoutMs: number, what: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const waiter: LineWaiter = (line) => {
        if (!match(line)) return false;
        clearTimeout(timer);
        resolve(line);
        return true;
      };
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        reject(new GuestError(`guest timed out after ${timeoutMs} ms waiting for: ${what}`, this.serial.text));
      }, timeoutMs);
      this.waiters.add(waiter);
    });
  }

  /** Type text on the guest's serial console. */
  sendSerial(text: string): void {
    this.emulator.serial0_send(text);
  }

  /**
   * Run one /init command (e.g. "load", "rng 64") and collect its VT-RESULT lines, each also given to
   * `onResult` as it arrives (for commands that wait on the host). Commands run one at a time.
   * Rejects when the command does not finish in time (default 180 s, like the boot: with a load
   * average of 20-28 on two cores, "load" alone took 34-88 s while the peer matrix ran two guests);
   * a non-zero rc is returned, not thrown.
   */
  command(line: string, timeoutMs = 180_000, onResult?: (result: GuestResult) => void): Promise<CommandOutput> {
    const name = line.trim().split(/\s+/)[0];
    if (name === undefined || name === '' || line.includes('\n')) throw new UsageError(`not a single command: ${JSON.stringify(line)}`);
    const run = async (): Promise<CommandOutput> => {
      const results: GuestResult[] = [];
      const done = this.waitLine(
        (l) => {
          const r = parseResult(l);
          if (r !== undefined) {
            results.push(r);
            onResult?.(r);
          }
          return parseDone(l)?.[0] === name;
        },
        timeoutMs,
        `${DONE_MARK} ${name} (after sending "${line}")`,
      );
      this.sendSerial(`${line}\n`);
      const [, rc] = parseDone(await done)!;
      return { command: line, rc, results };
    };
    const next = this.queue.then(run, run);
    this.queue = next.catch(() => undefined);
    return next;
  }

  /** Ask /init to power off and wait until it says so, then free the emulator. */
  async poweroff(timeoutMs = 30_000): Promise<void> {
    const off = this.waitLine((l) => l.includes(POWEROFF_MARK), timeoutMs, 'poweroff');
    this.sendSerial('poweroff\n');
    await off;
    await this.destroy();
  }

  /**
   * The machine's state now, our devices' included (requests in flight too: see docs/snapshots.md):
   * the emulator stops for the save and runs again after it unless `stop`.
   */
  async saveState(stop = false): Promise<ArrayBuffer> {
    await this.emulator.stop();
    const state = await this.emulator.save_state();
    if (!stop) await this.emulator.run();
    return state;
  }

  /** Stop and free the emulator (idempotent). */
  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    await this.emulator.destroy();
  }
}
