#!/usr/bin/env node
/**
 * The `virtio-ts` command line: each subcommand lives in src/cli/commands/<name>.ts. Every expected
 * failure (a bad option, a file that is missing, a directory, not permitted or too small, a peer
 * that fails) is one line `virtio-ts: <message> (<CODE>)` and a non-zero exit status; only a bug
 * shows a stack. Whatever a command creates (temporary files, child processes) is registered with
 * platform/cleanup.ts, which releases it however the command ends.
 */
import { Command, CommanderError } from 'commander';
import { VirtioError } from '../errors.js';
import * as boot from './commands/boot.js';
import * as conformance from './commands/conformance.js';
import * as demo from './commands/demo.js';
import * as diff from './commands/diff.js';
import * as lspci from './commands/lspci.js';
import * as probe from './commands/probe.js';
import * as serve from './commands/serve.js';
import { packageVersion } from './version.js';

/** Exit status of a process ended by SIGPIPE (128 + 13), which is what a closed pipe means. */
const EXIT_CLOSED_PIPE = 141;

// Output piped into `head` and the like: a closed pipe ends the command quietly, as SIGPIPE would
// end a C program; process.exit() runs the clean-up at 'exit'.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(EXIT_CLOSED_PIPE);
  throw err;
});

const program = new Command()
  .name('virtio-ts')
  .description('The virtio PCI transport, device and driver halves, in TypeScript')
  .version(packageVersion())
  // Commander's own errors come to the catch below, to be reported as one line like every other.
  .exitOverride()
  .configureOutput({ outputError: () => undefined });

const commands: Array<{ register(p: Command): void }> = [demo, lspci, probe, diff, conformance, boot, serve];
for (const c of commands) c.register(program);

/** --help, --version and a bare `virtio-ts` (help on stderr, status 1): commander has said all there is. */
const QUIET_COMMANDER_ENDS = new Set(['commander.helpDisplayed', 'commander.help', 'commander.version']);

/** A failed system call (errno error from node:fs, node:net, ...): the environment, not a bug. */
function isSystemError(err: unknown): err is NodeJS.ErrnoException & { code: string } {
  return (
    err instanceof Error &&
    typeof (err as NodeJS.ErrnoException).syscall === 'string' &&
    typeof (err as NodeJS.ErrnoException).code === 'string'
  );
}

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    if (!QUIET_COMMANDER_ENDS.has(err.code))
      console.error(`virtio-ts: ${err.message.replace(/^error: /, '')} (${err.code}; see virtio-ts --help)`);
    process.exitCode = err.exitCode;
  } else if (err instanceof VirtioError || isSystemError(err)) {
    console.error(`virtio-ts: ${err.message} (${err.code})`);
    process.exitCode = 1;
  } else {
    throw err;
  }
}
