/**
 * Console output as a guest feels it: the project's Linux guest in v86 writes a 16 MiB file to a
 * virtio console tty (hvc, raw, dd in 4 KiB blocks: hvc's output buffer is a page) on our
 * virtio-console and on v86's own, same guest, same run, alternating. The host hashes every byte that
 * reaches the console's host end (ours: its byte port; v86's: its "virtio-console0-output-bytes"
 * events) and checks it against the file's. Which hvc is whose is found by writing to each: the bytes
 * must all arrive at one end and none at the other. Target (issue 17): >= 2x v86's.
 */

import { createHash, type Hash } from 'node:crypto';
import { MemoryBlockBackend } from '../src/device/blk/memory-backend.js';
import type { ConsoleBytePort } from '../src/device/console/byte-port.js';
import type { NetBackend } from '../src/device/net/backend.js';
import {
  REPEATS,
  Side,
  bootComparisonGuest,
  costColumns,
  interleaved,
  measure,
  one,
  ratioText,
  run as guestRun,
  type Cost,
} from './guest-machine.js';

const BYTES = 16 << 20;
/** The file's line (one word: /init splits commands at blanks). */
const LINE = 'virtio-ts_console_bench_0123456789abcdefghijklmnopqrstuvwxyz';
const TARGET = 2;

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

const idleNet: NetBackend = { attach: () => undefined, send: () => undefined, close: async () => undefined };

export async function run(): Promise<void> {
  const line = `${LINE}\n`;
  const want = createHash('sha256')
    .update(Buffer.from(line.repeat(Math.ceil(BYTES / line.length)).slice(0, BYTES), 'latin1'))
    .digest('hex');
  const ours = new Sink(new Side('our virtio-console'));
  const theirs = new Sink(new Side("v86's virtio-console"));
  const unused = new Side('unused');
  const port: ConsoleBytePort = {
    write: (bytes) => {
      ours.take(bytes);
      return true;
    },
  };
  const g = await bootComparisonGuest(
    { blk: new MemoryBlockBackend(1 << 20), console: port, net: idleNet },
    { blk: unused, console: ours.side, net: unused },
    { ide: unused, virtio_net: unused, virtio_console: theirs.side },
    new ArrayBuffer(1 << 20),
  );
  try {
    g.emulator.add_listener('virtio-console0-output-bytes', (bytes) => theirs.take(bytes));
    await guestRun(g.guest, `pattern /tmp/con ${BYTES} ${LINE}`);
    const sinks: [Sink, Sink] = [ours, theirs];
    const tty = new Map<Sink, string>();
    const best = sinks.map(() => ({ guestMBps: 0, hostMBps: 0, cost: undefined as Cost | undefined }));
    /** One run on `hvc`: which sink got the bytes, and what it cost there. */
    const once = async (hvc: string): Promise<Sink> => {
      const before = sinks.map((s) => s.side.bytes);
      await guestRun(g.guest, `hvcrate ${hvc} /tmp/con`);
      const moved = sinks.map((s, i) => s.side.bytes - before[i]!);
      const at = sinks.find((_, i) => moved[i] === BYTES && moved[1 - i] === 0);
      if (at === undefined) throw new Error(`${hvc}: ${moved[0]} bytes reached our console, ${moved[1]} v86's; expected ${BYTES} at one`);
      if (at.digest() !== want) throw new Error(`${hvc}: the bytes at ${at.side.name} differ from the guest's file`);
      return at;
    };
    for (const hvc of ['hvc0', 'hvc1']) tty.set(await once(hvc), hvc);
    if (tty.size !== 2) throw new Error('hvc0 and hvc1 reached the same console');
    for (let repeat = 0; repeat < REPEATS; repeat++) {
      for (const sink of interleaved(sinks, repeat)) {
        const hvc = tty.get(sink)!;
        const { value, cost } = await measure(sink.side, () => guestRun(g.guest, `hvcrate ${hvc} /tmp/con`));
        const dd = one(value, 'hvcrate');
        const seconds = Number(dd.fields['cs']) / 100;
        if (dd.fields['records'] !== `${BYTES / 4096}+0` || !(seconds > 0)) throw new Error(`${sink.side.name}: dd reported ${dd.text}`);
        if (cost.bytes !== BYTES || sink.digest() !== want) throw new Error(`${sink.side.name}: ${cost.bytes} bytes arrived, or not the file's`);
        const b = best[sinks.indexOf(sink)]!;
        const guestMBps = BYTES / seconds / 1e6;
        if (guestMBps > b.guestMBps) Object.assign(b, { guestMBps, hostMBps: cost.bytes / cost.wallMs / 1000, cost });
      }
    }
    const rows: Record<string, string>[] = sinks.map((s, i) => ({
      device: `${s.side.name} (${tty.get(s)})`,
      'guest dd MB/s': best[i]!.guestMBps.toFixed(1),
      'host MB/s': best[i]!.hostMBps.toFixed(1),
      ...costColumns(best[i]!.cost!),
      verified: 'sha256 of all 16 MiB',
    }));
    rows.push({
      device: "ours / v86's",
      'guest dd MB/s': ratioText(best[0]!.guestMBps, best[1]!.guestMBps, TARGET),
      'host MB/s': `${(best[0]!.hostMBps / best[1]!.hostMBps).toFixed(2)}x`,
    });
    console.table(rows);
  } finally {
    await g.guest.destroy();
  }
}
