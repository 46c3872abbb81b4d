/**
 * Starts qemu-system-x86_64 with no guest (the stub BIOS keeps the CPU idle under TCG), accepts its
 * qtest connection on a unix socket we listen on, and owns the process until close(). Facts from
 * shared/QTEST.md: Debian's QEMU has no qtest accelerator, so `-accel tcg` with the stub BIOS.
 */

import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants as fsConstants } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { delimiter, join } from 'node:path';
import { BusError, UsageError } from '../../errors.js';
import { makeTempDir, trackChild } from '../cleanup.js';
import { QtestClient } from './qtest-client.js';
import { stubBiosImage } from './stub-bios.js';

export type QemuMachine = 'pc' | 'q35';

export interface QemuOptions {
  /** `-M pc` (i440FX + PIIX3) or `-M q35` (ICH9). */
  readonly machine: QemuMachine;
  /** Guest RAM in MiB (the driver's DMA memory lives there). Default 128. */
  readonly memoryMiB?: number;
  /** Further arguments: `-device`, `-drive`, `-netdev`, `-chardev`, ... */
  readonly args?: readonly string[];
  /** The QEMU binary; default `$VIRTIO_TS_QEMU` or qemu-system-x86_64 on PATH. */
  readonly binary?: string;
  /** How long QEMU may take to start and connect, in ms. Default 20000. */
  readonly startTimeoutMs?: number;
  /** How long one qtest command may take, in ms. Default 10000. */
  readonly commandTimeoutMs?: number;
}

export const DEFAULT_MEMORY_MIB = 128;
const QEMU_BINARY = 'qemu-system-x86_64';
/** How QEMU is installed where it is missing (the project's setup does this as root). */
export const QEMU_INSTALL_HINT =
  "install Debian's QEMU with `apt-get install -y qemu-system-x86` as root (or run `npm run setup`, which does it)";
/** Kept of QEMU's stderr for error messages. */
const STDERR_TAIL_BYTES = 4096;
/** How long a QEMU that dropped the connection at start-up gets to exit and explain itself. */
const EXIT_GRACE_MS = 2000;
/** How long close() waits for the killed process to be reaped. */
const REAP_TIMEOUT_MS = 5000;

/** The executable's full path when `name` is found on PATH (or is an executable path). */
function findExecutable(name: string): string | undefined {
  const candidates = name.includes('/')
    ? [name]
    : (process.env.PATH ?? '')
        .split(delimiter)
        .filter(Boolean)
        .map((d) => join(d, name));
  for (const path of candidates) {
    try {
      accessSync(path, fsConstants.X_OK);
      return path;
    } catch {
      // Not here.
    }
  }
  return undefined;
}

/** The QEMU binary to run, or a BusError that says how to install it. */
export function findQemu(binary = process.env.VIRTIO_TS_QEMU ?? QEMU_BINARY): string {
  const path = findExecutable(binary);
  if (path === undefined) throw new BusError(`${binary} not found: ${QEMU_INSTALL_HINT}`);
  return path;
}

/** The version a QEMU binary reports (`-version`), e.g. "10.0.2"; a BusError when it reports none. */
export function qemuVersion(binary?: string): string {
  const qemu = findQemu(binary);
  let text: string;
  try {
    text = execFileSync(qemu, ['-version'], { encoding: 'utf8', timeout: 10000, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    throw new BusError(`${qemu} -version failed`, { cause: err });
  }
  const m = /QEMU emulator version (\d+\.\d+\.\d+)/.exec(text);
  if (!m) throw new BusError(`${qemu} -version reports no version: ${text.slice(0, 200)}`);
  return m[1]!;
}

/** A running QEMU and its qtest connection. */
export class QemuProcess {
  private closing: Promise<void> | undefined;

  private constructor(
    readonly machine: QemuMachine,
    readonly memoryMiB: number,
    readonly pid: number,
    /** The qtest protocol client on QEMU's connection. */
    readonly client: QtestClient,
    private readonly child: ChildProcess,
    /** Settles when the QEMU process has gone (it exited, was killed, or close() ended it). */
    readonly exited: Promise<void>,
    private readonly untrack: () => void,
  ) {}

  /** Starts QEMU and waits for its qtest connection. Always kills QEMU again if that fails. */
  static async start(options: QemuOptions): Promise<QemuProcess> {
    const memoryMiB = options.memoryMiB ?? DEFAULT_MEMORY_MIB;
    if (!Number.isInteger(memoryMiB) || memoryMiB < 16 || memoryMiB > 2048)
      throw new UsageError(`memoryMiB ${memoryMiB} out of range 16..2048`);
    if (options.machine !== 'pc' && options.machine !== 'q35') throw new UsageError(`machine ${String(options.machine)}: use pc or q35`);
    const qemu = findQemu(options.binary);
    // The stub BIOS and the socket are needed only until QEMU has loaded one and connected to the
    // other: the folder goes as soon as QEMU answers, so that not even a SIGKILL leaves it behind.
    const dir = await makeTempDir('virtio-ts-qemu-');
    const bios = join(dir.path, 'stub-bios.bin');
    const sock = join(dir.path, 'qtest.sock');
    await writeFile(bios, stubBiosImage());
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(sock, () => resolve());
    });

    const qemuArgs = [
      '-accel',
      'tcg',
      '-bios',
      bios,
      '-qtest',
      `unix:${sock}`,
      '-qtest-log',
      '/dev/null',
      '-nodefaults',
      '-display',
      'none',
      '-monitor',
      'none',
      '-serial',
      'none',
      '-M',
      options.machine,
      '-m',
      `${memoryMiB}M`,
      ...(options.args ?? []),
    ];
    // setpriv asks the kernel to SIGKILL QEMU when we die, even by SIGKILL; it then execs QEMU
    // under the same pid.
    const setpriv = findExecutable('setpriv');
    const [file, argv] = setpriv ? [setpriv, ['--pdeathsig', 'SIGKILL', '--', qemu, ...qemuArgs]] : [qemu, qemuArgs];
    const child = spawn(file, argv, { stdio: ['ignore', 'ignore', 'pipe'] });
    // Neither QEMU nor its stderr keeps the process alive; cleanup.ts kills QEMU at exit.
    child.unref();
    (child.stderr as Socket | null)?.unref();
    let stderr = '';
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (text: string) => {
      stderr = (stderr + text).slice(-STDERR_TAIL_BYTES);
    });
    let exitStatus: string | undefined;
    const exited = new Promise<void>((resolve) => {
      // 'close' rather than 'exit': it comes after stderr has been read to the end, so the reason
      // QEMU gave is in the tail when we report the exit.
      child.once('close', (code, signal) => {
        exitStatus = signal ? `killed by ${signal}` : `exit code ${code}`;
        resolve();
      });
      child.once('error', (err) => {
        exitStatus = `could not start: ${err.message}`;
        resolve();
      });
    });
    const untrack = child.pid === undefined ? () => undefined : trackChild(child.pid);
    const describe = (): string => {
      const status = exitStatus ? `QEMU ${exitStatus}` : 'QEMU still running';
      const tail = stderr.trim();
      return tail ? `${status}; its stderr: ${tail}` : status;
    };
    const cleanUp = async (): Promise<void> => {
      child.kill('SIGKILL');
      await settleWithin(exited, REAP_TIMEOUT_MS);
      untrack();
      server.close();
      await dir.remove();
    };

    const startTimeoutMs = options.startTimeoutMs ?? 20000;
    let socket: Socket;
    try {
      socket = await acceptOne(server, exited, startTimeoutMs, describe);
    } catch (err) {
      await cleanUp();
      throw err;
    } finally {
      server.close();
    }
    if (child.pid === undefined) throw new BusError(`QEMU has no pid; ${describe()}`);
    let qemuProcess!: QemuProcess;
    const client = new QtestClient(socket, {
      timeoutMs: options.commandTimeoutMs ?? 10000,
      describe,
      // A broken protocol stream cannot be recovered: QEMU goes away at once.
      onBroken: () => void qemuProcess.close(),
    });
    qemuProcess = new QemuProcess(options.machine, memoryMiB, child.pid, client, child, exited, untrack);
    // QEMU connects before it has finished creating the machine; the first answer means it has.
    // Without it, a bad -device argument would surface as a reset socket in the caller's first command.
    try {
      await client.sync();
    } catch {
      await settleWithin(exited, EXIT_GRACE_MS);
      await qemuProcess.close();
      throw new BusError(`QEMU did not start; ${describe()}`);
    } finally {
      await dir.remove();
    }
    return qemuProcess;
  }

  /** Kills QEMU (no state worth saving: it runs no guest). */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.client.close();
      this.child.kill('SIGKILL');
      await settleWithin(this.exited, REAP_TIMEOUT_MS);
      this.untrack();
    })();
    return this.closing;
  }
}

/** Waits for `promise` at most `ms`, without the wait itself keeping the process alive afterwards. */
async function settleWithin(promise: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([promise, new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}

/** Accepts QEMU's connection, or fails when QEMU exits or the time is up. */
function acceptOne(server: Server, exited: Promise<void>, timeoutMs: number, describe: () => string): Promise<Socket> {
  return new Promise<Socket>((resolve, reject) => {
    const timer = setTimeout(() => reject(new BusError(`QEMU did not connect within ${timeoutMs} ms; ${describe()}`)), timeoutMs);
    server.once('connection', (socket) => {
      clearTimeout(timer);
      resolve(socket);
    });
    void exited.then(() => {
      clearTimeout(timer);
      reject(new BusError(`QEMU did not start; ${describe()}`));
    });
  });
}
