/**
 * `virtio-ts boot`: boots Linux (Debian's 686 kernel and a busybox initramfs, built from Debian
 * packages on first use) in the v86 emulator with virtio-ts devices on its PCI bus, and gives this
 * terminal a shell in it. Devices: virtio-blk on --disk (or a fresh in-memory disk), virtio-rng,
 * virtio-console (the shell runs on it: /dev/hvc0) and, with --net-udp, virtio-net over UDP
 * datagrams (QEMU's -netdev dgram framing). A saved emulator state makes every boot after the first
 * take about a second. `--ring packed` has the devices offer the packed ring (Linux then uses it);
 * the ring Linux negotiated is printed under each device. Ctrl-] leaves at once; `exit` in the shell powers the guest off.
 * `--audit` puts the devices in audit mode (core/driver-audit.ts) and prints, when the session ends,
 * every driver-side statement Linux's drivers broke. `--save FILE` saves the machine with its devices
 * (requests in flight too) when the session is left with Ctrl-]; `--restore FILE` resumes it, in this
 * or another process, with the same options and disk (a state whose device part does not fit is refused).
 */

import cliProgress from 'cli-progress';
import type { Command } from 'commander';
import { PassThrough } from 'node:stream';
import { readFile, writeFile } from 'node:fs/promises';
import { BlkDevice } from '../../device/blk/blk-device.js';
import type { BlockBackend } from '../../device/blk/backend.js';
import { FileBlockBackend } from '../../device/blk/file-backend.js';
import { MemoryBlockBackend } from '../../device/blk/memory-backend.js';
import { VirtioConsoleDevice } from '../../device/console/console-device.js';
import { streamBytePort } from '../../device/console/port-streams.js';
import { DgramNetBackend } from '../../device/net/dgram-backend.js';
import { VirtioNetDevice } from '../../device/net/net-device.js';
import { RngDevice } from '../../device/rng/rng-device.js';
import type { VirtioDevice } from '../../core/virtio-device.js';
import { UsageError } from '../../errors.js';
import { buildGuestAssets } from '../../platform/v86/assets.js';
import { guestFeatures, POWEROFF_MARK } from '../../platform/v86/guest-protocol.js';
import { hasFeature, VIRTIO_F_RING_PACKED } from '../../spec/features.js';
import { checkRingInterface, parseRing, type RingOption } from '../ring-option.js';
import { LinuxGuest } from '../../platform/v86/linux-guest.js';
import { DriverAudit } from '../../core/driver-audit.js';
import { formatDriverAudit } from '../audit-report.js';

interface BootOptions {
  readonly disk?: string;
  readonly readOnly?: boolean;
  readonly memory: string;
  readonly netUdp?: string;
  readonly serialShell?: boolean;
  readonly forceLegacy?: boolean;
  readonly ring?: string;
  readonly savedState: boolean;
  readonly cmdline?: string;
  readonly audit?: boolean;
  readonly save?: string;
  readonly restore?: string;
}

/** Size of the disk made when --disk is not given. */
const FRESH_DISK_SIZE = 64 << 20;
/** Ctrl-]: leave without waiting for the guest (as telnet and QEMU's monitor escape). */
const ESCAPE = 0x1d;
/** Stages after the asset build: emulator up, kernel at /init, modules loaded. */
const BOOT_STAGES = 3;

/** --net-udp LPORT:RHOST:RPORT. */
function parseNetUdp(spec: string): { localPort: number; address: string; port: number } {
  const m = /^(\d+):([0-9.]+):(\d+)$/.exec(spec);
  const localPort = Number(m?.[1]);
  const port = Number(m?.[3]);
  if (!m || localPort > 0xffff || port < 1 || port > 0xffff)
    throw new UsageError(`--net-udp ${spec}: expected LOCAL_PORT:REMOTE_IPV4:REMOTE_PORT`);
  return { localPort, address: m[2]!, port };
}

async function bootCommand(opts: BootOptions): Promise<void> {
  const memoryMiB = Number(opts.memory);
  if (!Number.isInteger(memoryMiB) || memoryMiB < 96 || memoryMiB > 1024)
    throw new UsageError(`--memory ${opts.memory}: MiB in [96, 1024]`);
  const net = opts.netUdp === undefined ? undefined : parseNetUdp(opts.netUdp);
  const ring = parseRing(opts.ring);
  checkRingInterface(ring, opts.forceLegacy ? '--force-legacy' : undefined);
  // The disk's bytes live outside the state: only a disk file is there again when it is restored.
  if ((opts.save !== undefined || opts.restore !== undefined) && opts.disk === undefined)
    throw new UsageError('--save and --restore need --disk: the disk is not part of the saved state');
  const state = opts.restore === undefined ? undefined : await readState(opts.restore);

  // The disk and the UDP socket are opened (and checked) before anything slow starts, and closed
  // however the boot ends: an open socket would keep this process running after a failure.
  const backend: BlockBackend =
    opts.disk === undefined
      ? new MemoryBlockBackend(FRESH_DISK_SIZE)
      : await FileBlockBackend.open(opts.disk, { readOnly: opts.readOnly ?? false });
  let udp: DgramNetBackend | undefined;
  try {
    if (net !== undefined)
      udp = await DgramNetBackend.open({
        local: { address: '0.0.0.0', port: net.localPort },
        remote: { address: net.address, port: net.port },
      });
    process.exitCode = await bootWith(opts, memoryMiB, ring, udp, backend, state);
  } finally {
    await udp?.close();
    if (backend instanceof FileBlockBackend) await backend.close();
  }
}

/** Builds the assets, boots, and connects this terminal to the shell; resolves with the exit status. */
async function bootWith(
  opts: BootOptions,
  memoryMiB: number,
  ring: RingOption | undefined,
  udp: DgramNetBackend | undefined,
  backend: BlockBackend,
  state: ArrayBuffer | undefined,
): Promise<number> {
  const bar = new cliProgress.SingleBar(
    { format: 'virtio-ts boot [{bar}] {stage}', stream: process.stderr, hideCursor: true, clearOnComplete: true },
    cliProgress.Presets.shades_classic,
  );
  try {
    let assetSteps = 5;
    bar.start(assetSteps + BOOT_STAGES, 0, { stage: 'guest assets' });
    const assets = await buildGuestAssets((step, total, what) => {
      assetSteps = total;
      bar.setTotal(total + BOOT_STAGES);
      bar.update(step, { stage: `guest assets: ${what}` });
    });
    bar.update(assetSteps, { stage: 'starting the emulator' });

    const consoleInput = new PassThrough();
    const devices: [string, VirtioDevice][] = [
      ['blk', new BlkDevice({ backend })],
      ['rng', new RngDevice()],
      [
        'console',
        new VirtioConsoleDevice({
          ports: [{ console: true, host: opts.serialShell ? undefined : streamBytePort({ input: consoleInput, output: process.stdout }) }],
          ...(process.stdout.isTTY ? { size: { cols: process.stdout.columns, rows: process.stdout.rows } } : {}),
        }),
      ],
    ];
    if (udp !== undefined) devices.push(['net', new VirtioNetDevice({ backend: udp })]);
    const mode = opts.forceLegacy ? 'transitional' : 'modern';
    // --audit: each device records the driver statements Linux breaks (printed when the session ends).
    const audits = opts.audit === true ? devices.map(([name]) => ({ name, audit: new DriverAudit() })) : [];
    let forward: ((text: string) => void) | undefined;
    const guest = await LinuxGuest.boot({
      assets,
      // plugVirtio's 32-bit modern BAR: reachable wherever the guest puts it (v86 has no memory above 4 GiB).
      devices: devices.map(([name, device], i) => ({
        name,
        virtio: device,
        options: { mode, packed: ring === 'packed', ...(audits[i] === undefined ? {} : { audit: audits[i].audit }) },
      })),
      memoryMiB,
      savedState: opts.savedState,
      ...(state === undefined ? {} : { state }),
      ...(opts.cmdline === undefined ? {} : { cmdline: opts.cmdline }),
      onSerial: (text) => forward?.(text),
    });
    try {
      if (state !== undefined) {
        // The restored machine's shell runs already: connect to it.
        bar.stop();
        process.stderr.write(`virtio-ts boot: restored ${opts.restore!}; Ctrl-] quits\n`);
        return await session(guest, opts, consoleInput, (f) => (forward = f), false);
      }
      bar.update(assetSteps + 1, {
        stage: `${guest.restored ? 'restored' : 'booted'} to /init in ${(guest.bootMs / 1000).toFixed(1)} s; loading virtio modules`,
      });
      // What the devices saw before /init was the firmware's (SeaBIOS drives virtio-blk on a cold boot;
      // a restored state has none of it): the audit is of Linux's drivers, which load now.
      for (const { audit } of audits) audit.clear();
      const loaded = await guest.command(opts.forceLegacy ? 'load force_legacy=1' : 'load');
      bar.update(assetSteps + BOOT_STAGES, { stage: 'ready' });
      bar.stop();
      for (const r of loaded.results) {
        if (r.kind === 'pci') process.stderr.write(`  pci ${r.text}\n`);
        // Linux's own word on the ring: VIRTIO_F_RING_PACKED in the features it negotiated.
        if (r.kind === 'virtio')
          process.stderr.write(
            `  virtio ${r.text}\n    ring: ${hasFeature(guestFeatures(r), VIRTIO_F_RING_PACKED) ? 'packed' : 'split'}\n`,
          );
      }
      if (loaded.rc !== 0) throw new UsageError(`the guest could not load the virtio modules (rc ${loaded.rc})`);
      process.stderr.write(
        `virtio-ts boot: shell on ${opts.serialShell ? 'the serial console' : 'virtio-console (/dev/hvc0)'}; Ctrl-] quits\n`,
      );
      const status = await session(guest, opts, consoleInput, (f) => (forward = f), true);
      if (audits.length > 0) printAudit(audits);
      return status;
    } finally {
      await guest.destroy();
    }
  } finally {
    bar.stop();
  }
}

/** A saved state file (--restore), read whole; a missing or empty file is a UsageError. */
async function readState(path: string): Promise<ArrayBuffer> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (e) {
    throw new UsageError(`--restore ${path}: ${(e as Error).message}`);
  }
  if (bytes.byteLength === 0) throw new UsageError(`--restore ${path}: the file is empty`);
  const state = new ArrayBuffer(bytes.byteLength);
  new Uint8Array(state).set(bytes);
  return state;
}

/** {@link interact}, then with --save the machine's state (devices included) written to the file. */
async function session(
  guest: LinuxGuest,
  opts: BootOptions,
  consoleInput: PassThrough,
  setForward: (f: (text: string) => void) => void,
  startShell: boolean,
): Promise<number> {
  const status = await interact(guest, opts.serialShell ? undefined : consoleInput, setForward, startShell);
  if (opts.save !== undefined && status === 130) {
    await writeFile(opts.save, new Uint8Array(await guest.saveState(true)));
    process.stderr.write(`virtio-ts boot: saved to ${opts.save} (restore with --restore and the same devices and disk)\n`);
  }
  return status;
}

/** The driver audit of Linux's virtio drivers, to stderr (the terminal's stdout belongs to the guest shell). */
function printAudit(audits: readonly { name: string; audit: DriverAudit }[]): void {
  const lines = formatDriverAudit(audits.map(({ name, audit }) => ({ name, findings: audit.findings })));
  process.stderr.write(
    `virtio-ts boot: driver audit of Linux's virtio drivers (statements they broke, as our devices saw them):\n${lines.join('\n')}\n`,
  );
}

/**
 * Connect this terminal to the guest shell until the guest powers off (exit status 0) or Ctrl-] is
 * typed (exit status 130). `consoleInput` feeds the virtio console; without it the serial console is
 * used both ways (`setForward` receives the serial output forwarder).
 */
async function interact(
  guest: LinuxGuest,
  consoleInput: PassThrough | undefined,
  setForward: (f: (text: string) => void) => void,
  startShell: boolean,
): Promise<number> {
  const stdin = process.stdin;
  const raw = stdin.isTTY;
  if (raw) stdin.setRawMode(true);
  let quit: (() => void) | undefined;
  const escaped = new Promise<number>((resolve) => (quit = () => resolve(130)));
  const onData = (chunk: Buffer) => {
    const at = chunk.indexOf(ESCAPE);
    const data = at < 0 ? chunk : chunk.subarray(0, at);
    if (data.byteLength > 0) {
      if (consoleInput) consoleInput.write(data);
      else guest.sendSerial(data.toString('latin1'));
    }
    if (at >= 0) quit!();
  };
  stdin.on('data', onData);
  stdin.resume();
  if (consoleInput === undefined) setForward((text) => process.stdout.write(text));
  const poweroff = guest.waitLine((l) => l.includes(POWEROFF_MARK), 0x7fff_ffff, 'poweroff').then(() => 0);
  if (startShell) guest.sendSerial(consoleInput ? 'shell hvc0\n' : 'shell\n');
  try {
    return await Promise.race([poweroff, escaped]);
  } finally {
    poweroff.catch(() => undefined);
    stdin.off('data', onData);
    if (raw) stdin.setRawMode(false);
    stdin.pause();
  }
}

export function register(program: Command): void {
  program
    .command('boot')
    .description('boot Linux in the v86 emulator with virtio-ts devices and get a shell in it (virtio-console)')
    .option('--disk <path>', 'virtio-blk disk image file (default: a fresh 64 MiB in-memory disk)')
    .option('--read-only', 'open --disk read-only (VIRTIO_BLK_F_RO)')
    .option('--memory <MiB>', 'guest RAM in MiB', '256')
    .option('--net-udp <lport:rhost:rport>', 'add virtio-net, frames as UDP datagrams (QEMU -netdev dgram)')
    .option('--serial-shell', 'run the shell on the serial console instead of virtio-console')
    .option('--force-legacy', 'transitional devices, and Linux forced onto the legacy interface')
    .option(
      '--ring <ring>',
      'split or packed: packed has the devices offer the packed ring, which Linux then negotiates (default: not offered)',
    )
    .option('--no-saved-state', 'boot from scratch every time (no saved emulator state)')
    .option('--cmdline <params>', 'extra kernel parameters')
    .option('--audit', "devices in audit mode: print the driver statements Linux's drivers broke when the session ends")
    .option('--save <file>', 'on Ctrl-], save the machine with its devices (requests in flight too) to FILE (needs --disk)')
    .option('--restore <file>', 'resume the machine saved in FILE instead of booting (same options and --disk as when saved)')
    .action((opts: BootOptions) => bootCommand(opts));
}
