/**
 * `virtio-ts serve`: the browser page on localhost. Serves the page's build (dist/web, made by
 * `npm run build`), the Linux guest's files `npm run setup` builds (the default kernel's, see
 * assets.ts) and v86's ESM build and wasm, then prints the URL and serves until interrupted.
 * Missing files are one line saying how to build them; nothing is created, so SIGINT or SIGTERM
 * leaves nothing behind.
 */

import type { Command } from 'commander';
import { createRequire } from 'node:module';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UsageError } from '../../errors.js';
import { findGuestAssets } from '../../platform/v86/assets.js';
import { startPageServer, type PageServer } from '../page-server.js';

/** Where `vite build` puts the page: this file is dist/src/cli/commands/serve.js. */
export const PAGE_DIR = fileURLToPath(new URL('../../../web/', import.meta.url));

/** The v86 files the page loads (by name, from v86's build folder). */
const V86_FILES = ['libv86.mjs', 'v86.wasm'];

interface ServeOptions {
  readonly port: string;
  readonly host: string;
}

/** Checks the options and the files, and starts the server (the page at `pageDir`). */
export async function serve(opts: ServeOptions, pageDir = PAGE_DIR): Promise<PageServer> {
  const port = Number(opts.port);
  if (!/^\d+$/.test(opts.port) || port > 0xffff) throw new UsageError(`--port ${opts.port}: a port number in [0, 65535] (0: any free one)`);
  const guest = findGuestAssets();
  const v86Dir = dirname(createRequire(import.meta.url).resolve('v86/build/v86.wasm'));
  return startPageServer({
    pageDir,
    files: {
      'guest/': Object.fromEntries([guest.kernel, guest.initrd, guest.bios].map((f) => [basename(f), f])),
      'v86/': Object.fromEntries(V86_FILES.map((f) => [f, join(v86Dir, f)])),
    },
    host: opts.host,
    port,
  });
}

export function register(program: Command): void {
  program
    .command('serve')
    .description('serve the browser page (Linux in v86 with virtio-ts devices, and the transport at work) on localhost')
    .option('--port <n>', 'TCP port (0: any free one)', '8086')
    .option('--host <address>', 'address to listen on', '127.0.0.1')
    .action(async (opts: ServeOptions) => {
      const server = await serve(opts);
      process.stdout.write(`virtio-ts serve: ${server.url} (Ctrl-C stops)\n`);
    });
}
