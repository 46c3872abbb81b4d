#!/usr/bin/env node
/** The `virtio-ts` command line: each subcommand lives in src/cli/commands/<name>.ts. */
import { Command } from 'commander';
import { VirtioError } from '../errors.js';
import * as boot from './commands/boot.js';
import * as demo from './commands/demo.js';
import * as diff from './commands/diff.js';
import * as lspci from './commands/lspci.js';
import * as probe from './commands/probe.js';
import { packageVersion } from './version.js';

// Output piped into `head` and the like: a closed pipe ends the command quietly.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});

const program = new Command()
  .name('virtio-ts')
  .description('The virtio PCI transport, device and driver halves, in TypeScript')
  .version(packageVersion())
  .showHelpAfterError();

const commands: Array<{ register(p: Command): void }> = [demo, lspci, probe, diff, boot];
for (const c of commands) c.register(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof VirtioError) {
    console.error(`virtio-ts: ${err.message} (${err.code})`);
    process.exitCode = 1;
  } else {
    throw err;
  }
}
