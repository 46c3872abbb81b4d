/**
 * Console ports backed by Node streams (Node only): bytes the host sends the guest come from
 * `input`, bytes the guest sends go to `output`. `streamBytePort` adapts them to the device's byte
 * port; helpers give the usual ends: stdio, a socket, a file.
 */

import { createReadStream, createWriteStream } from 'node:fs';
import type { Socket } from 'node:net';
import type { Readable, Writable } from 'node:stream';
import type { ConsoleBytePort, ConsolePortLink } from './byte-port.js';

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

/**
 * A console port's host end as Node streams. Each input chunk pauses the input until the guest has
 * taken it. The host end is gone once the output closes or fails, the input fails, or (with no
 * output) the input ends: the end of input (a file read to its end, a half-closed socket) leaves
 * the output usable.
 */
export function streamBytePort(streams: ConsolePortStreams): ConsoleBytePort {
  const { input, output } = streams;
  let link: ConsolePortLink | undefined;
  const port: ConsoleBytePort = {
    open(opened: ConsolePortLink): void {
      link = opened;
      if (input) {
        input.on('data', (chunk: Buffer | string) => {
          const bytes =
            typeof chunk === 'string' ? new TextEncoder().encode(chunk) : new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
          input.pause();
          opened.deliver(bytes);
        });
        input.on('end', () => {
          if (!output) opened.disconnected();
        });
        input.on('error', () => opened.disconnected());
      }
      if (output) {
        output.on('drain', () => opened.drained());
        output.on('close', () => opened.disconnected());
        output.on('error', () => opened.disconnected());
      }
    },
  };
  if (input) port.resume = () => void input.resume();
  if (output) {
    port.room = () => output.writableHighWaterMark - output.writableLength;
    port.write = (bytes) => {
      // Ended or destroyed before its 'close': gone already.
      if (output.destroyed || output.writableEnded) {
        link?.disconnected();
        return true;
      }
      return output.write(bytes);
    };
  }
  return port;
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
