/**
 * The HTTP server behind `virtio-ts serve`: the browser page's build (every file under its folder),
 * the Linux guest's kernel, initramfs and BIOS under guest/, and v86's ESM build and wasm under v86/
 * (those two folders by name only: nothing else in the guest cache or in v86's package is served).
 * GET and HEAD only; a path that leaves its folder (`..`, an encoded slash or backslash, a NUL) is a 404.
 */

import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join, resolve, sep } from 'node:path';
import { ServeError } from '../errors.js';

/** Content types of the files the page, the guest and v86 are made of. */
const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.map': 'application/json',
  '.wasm': 'application/wasm',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
};

export interface PageServerOptions {
  /** The page's build: served at /, index.html for the bare path. */
  readonly pageDir: string;
  /** URL prefixes ("guest/", "v86/") each with the only files served under it, by name. */
  readonly files: Readonly<Record<string, Readonly<Record<string, string>>>>;
  readonly host: string;
  /** 0: any free port. */
  readonly port: number;
}

export interface PageServer {
  /** http://host:port/ */
  readonly url: string;
  close(): Promise<void>;
}

/** The file a request path names, or undefined when it names none of the served ones. */
function target(options: PageServerOptions, url: string): string | undefined {
  const path = url.split(/[?#]/, 1)[0]!;
  let decoded: string;
  try {
    decoded = decodeURIComponent(path);
  } catch {
    return undefined;
  }
  if (!decoded.startsWith('/') || decoded.includes('\0') || decoded.includes('\\')) return undefined;
  const relative = decoded.slice(1);
  for (const [prefix, files] of Object.entries(options.files)) {
    if (relative.startsWith(prefix))
      return Object.hasOwn(files, relative.slice(prefix.length)) ? files[relative.slice(prefix.length)] : undefined;
  }
  const root = resolve(options.pageDir);
  const file = resolve(root, relative === '' ? 'index.html' : relative);
  return file.startsWith(root + sep) ? file : undefined;
}

async function serveFile(options: PageServerOptions, req: IncomingMessage, res: ServerResponse): Promise<void> {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { Allow: 'GET, HEAD', 'Content-Type': 'text/plain' }).end('method not allowed\n');
    return;
  }
  const file = target(options, req.url ?? '/');
  const info = file === undefined ? undefined : await stat(file).catch(() => undefined);
  if (file === undefined || info === undefined || !info.isFile()) {
    res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found\n');
    return;
  }
  res.writeHead(200, {
    'Content-Type': CONTENT_TYPES[extname(file)] ?? 'application/octet-stream',
    'Content-Length': info.size,
    'Cache-Control': 'no-cache',
  });
  if (req.method === 'HEAD') {
    res.end();
    return;
  }
  const stream = createReadStream(file);
  stream.on('error', () => res.destroy());
  stream.pipe(res);
}

/** Starts serving; rejects with a ServeError when the page is not built or the port is taken. */
export async function startPageServer(options: PageServerOptions): Promise<PageServer> {
  const index = join(options.pageDir, 'index.html');
  if (!(await stat(index).catch(() => undefined))?.isFile())
    throw new ServeError('ERR_SERVE_PAGE_MISSING', `the browser page is not built (no ${index}): run \`npm run build\``);
  const server: Server = createServer((req, res) => {
    serveFile(options, req, res).catch(() => res.destroy());
  });
  await new Promise<void>((done, fail) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      fail(
        err.code === 'EADDRINUSE'
          ? new ServeError('ERR_SERVE_PORT_IN_USE', `port ${options.port} on ${options.host} is in use: choose another with --port`, {
              cause: err,
            })
          : err,
      ),
    );
    server.listen(options.port, options.host, () => done());
  });
  const { address, port } = server.address() as AddressInfo;
  const host = address.includes(':') ? `[${address}]` : address;
  return {
    url: `http://${host}:${port}/`,
    close: () =>
      new Promise<void>((done) => {
        server.close(() => done());
        server.closeAllConnections();
      }),
  };
}
