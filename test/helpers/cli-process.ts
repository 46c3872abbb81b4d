/**
 * Runs the built `virtio-ts` CLI as a child process with a private TMPDIR, ends it the ways a
 * command can end (its own end, SIGINT, SIGTERM, a reader that closes the pipe), and checks what it
 * left behind: files in that TMPDIR, and any process it started that still runs.
 */

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { readdir, readFile } from 'node:fs/promises';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';

/** The built CLI (this file is dist/test/helpers/cli-process.js). */
export const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

/** When to act on the running command: a line of its output (stdout or stderr) matches, or it has a child process. */
export type Marker = RegExp | 'child';

/** How the run is ended once the marker is seen: a signal, or the reader closing stdout (EPIPE at the command's next write). */
export type Ending = 'SIGINT' | 'SIGTERM' | 'EPIPE';

export interface CliRunOptions {
  /** The command's TMPDIR (see {@link privateTmp}). */
  readonly tmp: string;
  readonly at?: Marker;
  readonly end?: Ending;
  /** Written to the command's stdin once the marker is seen (after closing stdout, for EPIPE). */
  readonly input?: string;
  readonly timeoutMs?: number;
  /** Variables added to the command's environment. */
  readonly env?: Readonly<Record<string, string>>;
}

export interface CliRun {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  /** Every process seen below the command while it ran. */
  readonly descendants: readonly number[];
  /** The marker's match, when there was one. */
  readonly match?: RegExpExecArray;
}

/** A TMPDIR of the test's own, removed after it. */
export async function privateTmp(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'virtio-ts-cli-test-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** The children of `pid` (of every thread of it), from /proc/PID/task/TID/children. */
async function childrenOf(pid: number): Promise<number[]> {
  const tasks = await readdir(`/proc/${pid}/task`).catch(() => []);
  const lists = await Promise.all(tasks.map((tid) => readFile(`/proc/${pid}/task/${tid}/children`, 'utf8').catch(() => '')));
  return lists.flatMap((l) =>
    l
      .split(' ')
      .filter((x) => x !== '')
      .map(Number),
  );
}

/** The processes below `root`. */
async function descendantsOf(root: number): Promise<number[]> {
  const found: number[] = [];
  for (let frontier = [root]; frontier.length > 0;) {
    const next = (await Promise.all(frontier.map(childrenOf))).flat();
    found.push(...next);
    frontier = next;
  }
  return found;
}

/** Runs `virtio-ts <args>`; see {@link CliRunOptions}. */
export async function runCli(args: readonly string[], options: CliRunOptions): Promise<CliRun> {
  const child = spawn(process.execPath, [CLI, ...args], {
    env: { ...process.env, ...options.env, TMPDIR: options.tmp },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  let acted = false;
  let match: RegExpExecArray | undefined;
  const seen = new Set<number>();
  const act = (): void => {
    if (acted) return;
    acted = true;
    if (options.end === 'EPIPE') child.stdout.destroy();
    else if (options.end !== undefined) child.kill(options.end);
    if (options.input !== undefined) child.stdin.write(options.input);
  };
  const onOutput = (): void => {
    if (options.at instanceof RegExp && match === undefined) {
      const found = options.at.exec(`${stdout}\n${stderr}`);
      if (found !== null) {
        match = found;
        act();
      }
    }
  };
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
    onOutput();
  });
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
    onOutput();
  });
  child.stdin.on('error', () => undefined);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  let running = true;
  void exited.then(() => (running = false));
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000);
  // Watch the process tree while the command runs (every child it ever had must be gone after).
  while (running) {
    for (const pid of await descendantsOf(child.pid!)) seen.add(pid);
    if (options.at === 'child' && seen.size > 0) act();
    await new Promise((r) => setTimeout(r, 5));
  }
  const { code, signal } = await exited;
  clearTimeout(timer);
  return { code, signal, stdout, stderr, descendants: [...seen], ...(match === undefined ? {} : { match }) };
}

/** Whether `pid` still runs (a zombie counts as gone). */
async function alive(pid: number): Promise<boolean> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  return stat !== undefined && stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
}

/** Asserts the run left nothing behind: `tmp` is empty and no process it started still runs. */
export async function assertNothingLeft(tmp: string, run: CliRun, what: string): Promise<void> {
  assert.deepEqual(await readdir(tmp), [], `${what}: files left in TMPDIR`);
  // The killing is done before the command exits; give the kernel a moment to finish it.
  const deadline = Date.now() + 5000;
  let left: number[];
  do {
    left = [];
    for (const pid of run.descendants) if (await alive(pid)) left.push(pid);
    if (left.length === 0) return;
    await new Promise((r) => setTimeout(r, 50));
  } while (Date.now() < deadline);
  assert.deepEqual(left, [], `${what}: child processes still running`);
}

/** Asserts an expected failure: exit status 1 and exactly one line `virtio-ts: ... (CODE)` on stderr, no stack. */
export function assertOneLineError(run: CliRun, message: RegExp, code: string): void {
  assert.equal(run.code, 1, run.stderr);
  const lines = run.stderr.split('\n').filter((l) => l !== '');
  assert.equal(lines.length, 1, `one line, no stack:\n${run.stderr}`);
  assert.match(lines[0]!, /^virtio-ts: /);
  assert.match(lines[0]!, message);
  assert.ok(lines[0]!.endsWith(`(${code})`), lines[0]);
}

/** Binds UDP `port` on every address (as `boot --net-udp` does) and closes it again: the port bound; rejects when it is taken. */
export function bindUdpOnce(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createSocket('udp4');
    s.once('error', reject);
    s.bind(port, '0.0.0.0', () => {
      const bound = s.address().port;
      s.close(() => resolve(bound));
    });
  });
}
