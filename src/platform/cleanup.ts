/**
 * What this process must not leave behind: temporary paths and child processes. Every owner
 * releases its own on the normal path (close(), a finally block); this registry is the layer under
 * that: it removes the paths and kills the children still registered, synchronously, on process
 * 'exit' (however reached: the end, process.exit() after a closed stdout, an uncaught exception, a
 * failed test file) and on SIGINT/SIGTERM/SIGHUP, after which the signal keeps its default meaning
 * (the process ends by that signal, status 128+n) unless someone else handles it. A parent killed
 * with SIGKILL runs no handler: QEMU asks the kernel for a parent-death signal (qemu-process.ts),
 * and files that must survive no crash are kept only as long as they are needed.
 */

import { rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Running children (a negative id is a process group) and the signal that ends each. */
const children = new Map<number, NodeJS.Signals>();
/** Paths removed recursively. */
const paths = new Set<string>();
const SIGNALS: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
let hooked = false;

/** Kills every registered child and removes every registered path, now. */
function releaseAll(): void {
  for (const [pid, signal] of children) {
    try {
      process.kill(pid, signal);
    } catch {
      // Already gone.
    }
  }
  children.clear();
  for (const path of paths) rmSync(path, { recursive: true, force: true });
  paths.clear();
}

function onSignal(signal: NodeJS.Signals): void {
  releaseAll();
  // When nobody else handles the signal, keep its default meaning (terminate with that signal).
  if (process.listenerCount(signal) === 1) {
    process.removeListener(signal, onSignal);
    process.kill(process.pid, signal);
  }
}

function hook(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', releaseAll);
  for (const signal of SIGNALS) process.on(signal, onSignal);
}

/**
 * Registers a running child process (or, with a negative id, a process group) to be sent `signal`
 * if this process ends first; returns the function that forgets it once it has been reaped.
 */
export function trackChild(pid: number, signal: NodeJS.Signals = 'SIGKILL'): () => void {
  hook();
  children.set(pid, signal);
  return () => void children.delete(pid);
}

/** Registers a path to be removed (recursively) if this process ends first; returns the function that forgets it. */
export function trackPath(path: string): () => void {
  hook();
  paths.add(path);
  return () => void paths.delete(path);
}

/** A temporary directory that is removed by remove(), or when the process ends, whichever comes first. */
export interface TempDir {
  readonly path: string;
  remove(): Promise<void>;
}

/** Creates a directory `<tmpdir>/<prefix>XXXXXX` registered with {@link trackPath}. */
export async function makeTempDir(prefix: string): Promise<TempDir> {
  const path = await mkdtemp(join(tmpdir(), prefix));
  const untrack = trackPath(path);
  return {
    path,
    remove: async () => {
      await rm(path, { recursive: true, force: true });
      untrack();
    },
  };
}
