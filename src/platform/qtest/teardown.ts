/**
 * Makes sure no QEMU we started outlives us. Three layers, because each covers what the others
 * cannot: QemuProcess.close() on the normal path; synchronous SIGKILL from process 'exit' (also
 * reached after an uncaught exception or a failed test file) and from SIGINT/SIGTERM/SIGHUP; and,
 * for a parent killed with SIGKILL, the kernel's parent-death signal that qemu-process.ts asks for
 * with setpriv(1).
 */

/** QEMU process ids that are running and not yet closed. */
const live = new Set<number>();
const SIGNALS: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
let hooked = false;

function killAll(): void {
  for (const pid of live) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
  live.clear();
}

function onSignal(signal: NodeJS.Signals): void {
  killAll();
  // When nobody else handles the signal, keep its default meaning (terminate with that signal).
  if (process.listenerCount(signal) === 1) {
    process.removeListener(signal, onSignal);
    process.kill(process.pid, signal);
  }
}

function hook(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', killAll);
  for (const signal of SIGNALS) process.on(signal, onSignal);
}

/** Registers a running QEMU; returns the function that forgets it once it has been reaped. */
export function trackQemu(pid: number): () => void {
  hook();
  live.add(pid);
  return () => {
    live.delete(pid);
  };
}
