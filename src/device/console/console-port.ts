/**
 * One console port's host side: the bytes waiting for the guest, and the streams behind them.
 * Flow control both ways without loss: at most one input chunk waits here, and the input stream is
 * paused until the guest has taken it; guest output stops being consumed while the output stream
 * reports itself full, and resumes on 'drain'.
 */

import type { Readable, Writable } from 'node:stream';
import type { ConsolePortStreams } from './port-streams.js';

export interface ConsolePortEvents {
  /** Host bytes arrived (or the port opened): try to move them into the guest. */
  onInput(): void;
  /** The output stream drained: resume taking the guest's bytes. */
  onDrain(): void;
  /** The host end connected or went away. */
  onHostConnected(connected: boolean): void;
}

export class ConsolePort {
  /** Host bytes not yet in guest buffers (at most one chunk: the input is paused meanwhile). */
  private pending: Uint8Array | undefined;
  private readonly input: Readable | undefined;
  private readonly output: Writable | undefined;
  private outputFull = false;
  /** The host end is there: input not ended and output not closed. */
  hostConnected: boolean;
  /** The guest has the port open (PORT_OPEN from the driver; always for a single-port device). */
  guestOpen = false;
  /** The driver sent PORT_READY for this port. */
  ready = false;
  /** Guest bytes thrown away because no host end was there. */
  discarded = 0;

  constructor(
    readonly id: number,
    readonly name: string | undefined,
    readonly isConsole: boolean,
    streams: ConsolePortStreams,
    private readonly events: ConsolePortEvents,
  ) {
    this.input = streams.input;
    this.output = streams.output;
    this.hostConnected = this.input !== undefined || this.output !== undefined;
    const input = this.input;
    if (input) {
      input.on('data', (chunk: Buffer | string) => {
        const bytes = typeof chunk === 'string' ? new TextEncoder().encode(chunk) : new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
        this.pending = this.pending ? concat(this.pending, bytes) : bytes;
        input.pause();
        this.events.onInput();
      });
      // The end of input (a file read to its end, a half-closed socket) leaves the output usable;
      // the host end is gone only when nothing is left to write to.
      input.on('end', () => {
        if (!this.output) this.hostGone();
      });
      input.on('error', () => this.hostGone());
    }
    const output = this.output;
    if (output) {
      output.on('drain', () => {
        this.outputFull = false;
        this.events.onDrain();
      });
      output.on('close', () => this.hostGone());
      output.on('error', () => this.hostGone());
    }
  }

  /** Bytes the guest may be given now (empty when none). */
  get waiting(): Uint8Array | undefined {
    return this.pending;
  }

  /** The guest took the first `n` waiting bytes; resume the input once all are taken. */
  consumed(n: number): void {
    if (!this.pending) return;
    this.pending = n >= this.pending.byteLength ? undefined : this.pending.subarray(n);
    if (!this.pending) this.input?.resume();
  }

  /** Whether guest output can be taken now (false while the output stream is full). */
  get canWrite(): boolean {
    return !this.outputFull;
  }

  /** Bytes the output takes before it reports itself full (Infinity when there is none to fill). */
  get room(): number {
    const output = this.output;
    if (!output || !this.hostConnected) return Infinity;
    return Math.max(0, output.writableHighWaterMark - output.writableLength);
  }

  /** Guest -> host bytes (a copy the stream may keep). */
  write(bytes: Uint8Array): void {
    const output = this.output;
    if (!output || !this.hostConnected || output.destroyed || output.writableEnded) {
      this.discarded += bytes.byteLength;
      return;
    }
    if (!output.write(bytes)) this.outputFull = true;
  }

  private hostGone(): void {
    if (!this.hostConnected) return;
    this.hostConnected = false;
    this.outputFull = false;
    this.events.onHostConnected(false);
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.byteLength + b.byteLength);
  out.set(a);
  out.set(b, a.byteLength);
  return out;
}
