/**
 * Console output as a guest feels it: the project's Linux guest in v86 writes a 16 MiB file to a
 * virtio console tty (hvc, raw, dd in 4 KiB blocks: hvc's output buffer is a page) on our
 * virtio-console and on v86's own, same run, alternating. In a guest with both consoles only the one
 * Linux brings up first delivers (the other's hvc takes writes that reach neither device), so each
 * runs in a guest of its own: the same kernel, image and memory, with our console or v86's and
 * nothing else (bootConsoleGuest), both guests up for the whole run. The host hashes every byte that
 * reaches the console's host end (ours: its byte port; v86's: its "virtio-console0-output-bytes"
 * events) and checks it against the file's. Which hvc delivers is found by writing a page to each.
 * Target (issue 17): >= 2x v86's.
 */

import { createHash, type Hash } from 'node:crypto';
import type { ConsoleBytePort } from '../src/device/console/byte-port.js';
import type { LinuxGuest } from '../src/platform/v86/linux-guest.js';
import {
  REPEATS,
  Side,
  bootConsoleGuest,
  costColumns,
  interleaved,
  measure,
  one,
  ratioText,
  run as guestRun,
  type Cost,
} from './guest-machine.js';

export { checkGuestAssets as checkPeer } from './guest-machine.js';

const BYTES = 16 << 20;
/** The file's line (one word: /init splits commands at blanks). */
const LINE = 'virtio-ts_console_bench_0123456789abcdefghijklmnopqrstuvwxyz';
const TARGET = 2;
/** Console ttys tried (Linux numbers them in the order the consoles come up). */
const HVC_TTYS = 4;

/** The host end of one console: counts and hashes what arrives (timed as the side's backend). */
class Sink {
  hash: Hash = createHash('sha256');
  readonly take: (bytes: Uint8Array) => void;

  constructor(readonly side: Side) {
    this.take = side.backend.wrap((bytes: Uint8Array) => {
      side.bytes += bytes.byteLength;
      this.hash.update(bytes);
    });
  }

  /** The hash of everything since the last call. */
  digest(): string {
    const d = this.hash.digest('hex');
    this.hash = createHash('sha256');
    return d;
  }
}

export async function run(): Promise<void> {
  const line = `${LINE}\n`;
  const want = createHash('sha256')
    .update(Buffer.from(line.repeat(Math.ceil(BYTES / line.length)).slice(0, BYTES), 'latin1'))
    .digest('hex');
  const ours = new Sink(new Side('our virtio-console'));
  const theirs = new Sink(new Side("v86's virtio-console"));
  const port: ConsoleBytePort = {
    write: (bytes) => {
      ours.take(bytes);
      return true;
    },
  };
  const sinks: [Sink, Sink] = [ours, theirs];
  const guests = new Map<Sink, LinuxGuest>();
  try {
    guests.set(ours, await bootConsoleGuest(ours.side, port));
    const v86Guest = await bootConsoleGuest(theirs.side);
    guests.set(theirs, v86Guest);
    v86Guest.emulator.add_listener('virtio-console0-output-bytes', (bytes) => theirs.take(bytes));
    // Which hvc delivers: a page to each console tty there is; it must arrive whole at the sink.
    const tty = new Map<Sink, string>();
    for (const sink of sinks) {
      const guest = guests.get(sink)!;
      await guestRun(guest, `pattern /tmp/con ${BYTES} ${LINE}`);
      await guestRun(guest, `pattern /tmp/probe 4096 ${LINE}`);
      for (let n = 0; n < HVC_TTYS && !tty.has(sink); n++) {
        const before = sink.side.bytes;
        if ((await guest.command(`hvcrate hvc${n} /tmp/probe`)).rc !== 0) break;
        if (sink.side.bytes - before === 4096) tty.set(sink, `hvc${n}`);
        sink.digest();
      }
    }
    const best = sinks.map(() => ({ guestMBps: 0, hostMBps: 0, cost: undefined as Cost | undefined }));
    for (let repeat = 0; repeat < REPEATS; repeat++) {
      for (const sink of interleaved(sinks, repeat)) {
        const hvc = tty.get(sink);
        if (hvc === undefined) continue;
        const { value, cost } = await measure(sink.side, () => guestRun(guests.get(sink)!, `hvcrate ${hvc} /tmp/con`));
        const dd = one(value, 'hvcrate');
        const seconds = Number(dd.fields['cs']) / 100;
        if (dd.fields['records'] !== `${BYTES / 4096}+0` || !(seconds > 0)) throw new Error(`${sink.side.name}: dd reported ${dd.text}`);
        if (cost.bytes !== BYTES || sink.digest() !== want)
          throw new Error(`${sink.side.name}: ${cost.bytes} bytes arrived, or not the file's`);
        const b = best[sinks.indexOf(sink)]!;
        const guestMBps = BYTES / seconds / 1e6;
        if (guestMBps > b.guestMBps) Object.assign(b, { guestMBps, hostMBps: cost.bytes / cost.wallMs / 1000, cost });
      }
    }
    if (tty.size === 0) throw new Error(`no hvc0..hvc${HVC_TTYS - 1} reached either console`);
    const rows: Record<string, string>[] = sinks.map((s, i) =>
      tty.has(s)
        ? {
            device: `${s.side.name} (${tty.get(s)})`,
            'guest dd MB/s': best[i]!.guestMBps.toFixed(1),
            'host MB/s': best[i]!.hostMBps.toFixed(1),
            ...costColumns(best[i]!.cost!),
            verified: 'sha256 of all 16 MiB',
          }
        : { device: s.side.name, 'guest dd MB/s': `not reached: no hvc tty delivered a byte to it (tried hvc0..hvc${HVC_TTYS - 1})` },
    );
    if (tty.size === 2) {
      rows.push({
        device: "ours / v86's",
        'guest dd MB/s': ratioText(best[0]!.guestMBps, best[1]!.guestMBps, TARGET),
        'host MB/s': `${(best[0]!.hostMBps / best[1]!.hostMBps).toFixed(2)}x`,
      });
    }
    console.table(rows);
  } finally {
    for (const guest of guests.values()) await guest.destroy();
  }
}
