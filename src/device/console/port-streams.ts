/**
 * The host side of a console port as Node streams: bytes the host sends the guest come from `input`,
 * bytes the guest sends go to `output`. Helpers for the usual ends: stdio, a socket, a file.
 */

import { createReadStream, createWriteStream } from 'node:fs';
import type { Socket } from 'node:net';
import type { Readable, Writable } from 'node:stream';

export interface ConsolePortStreams {
  /** Host -> guest. Paused while the guest has no receive buffers (back-pressure, never loss). */
  readonly input?: Readable;
  /**
   * Guest -> host. The device stops taking the guest's bytes while `write` says the stream is full.
   * Bytes come in batches: the chains of one notification gathered into one write of at most the
   * room below the stream's high-water mark (at least one chain). Each chunk is the stream's to keep.
   */
  readonly output?: Writable;
}

/** The process's stdin and stdout. */
export function stdioPortStreams(): ConsolePortStreams {
  return { input: process.stdin, output: process.stdout };
}

/** A connected TCP or Unix socket, both ways. */
export function socketPortStreams(socket: Socket): ConsolePortStreams {
  return { input: socket, output: socket };
}

/** Guest output appended to the file at `outPath`; host input read once from `inPath` if given. */
export function filePortStreams(outPath: string, inPath?: string): ConsolePortStreams {
  const output = createWriteStream(outPath, { flags: 'a' });
  return inPath === undefined ? { output } : { output, input: createReadStream(inPath) };
}
