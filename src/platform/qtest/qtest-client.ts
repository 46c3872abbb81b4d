/**
 * A qtest protocol client over a connected socket. Commands are pipelined: every call queues its
 * line at once (lines queued in the same tick go out in one socket write) and replies are matched
 * to commands in order, so a caller that issues many commands before awaiting pays one round trip.
 *
 * Writes may be posted (as PCI memory writes are): {@link QtestClient.post} queues the command
 * and returns without waiting for its reply. QEMU executes commands in order, so a later command
 * sees the write; a failed posted write is reported by the next awaited command. Every command
 * has a deadline: a reply that does not come in time, a protocol violation or a closed socket
 * breaks the client for good (the reply stream can no longer be matched) and rejects everything
 * in flight with a BusError.
 */

import type { Socket } from 'node:net';
import { BusError } from '../../errors.js';
import { parseLine } from './qtest-protocol.js';

/** Called for every `IRQ raise|lower N` line, in arrival order. */
export type IrqListener = (line: number, raised: boolean) => void;

interface Pending {
  readonly command: string;
  readonly deadline: number;
  /** Undefined for a posted command: nobody awaits its reply. */
  readonly resolve: ((value: string) => void) | undefined;
  readonly reject: ((err: Error) => void) | undefined;
}

export interface QtestClientOptions {
  /** How long one command may wait for its reply, in ms. */
  readonly timeoutMs: number;
  /** Called once when the client breaks (timeout, protocol error, socket closed). */
  readonly onBroken?: (err: BusError) => void;
  /** Extra words for error messages, e.g. QEMU's stderr; asked for only when something fails. */
  readonly describe?: () => string;
}

/** How often deadlines are checked; a timeout fires at most this much late. */
const DEADLINE_CHECK_MS = 100;
/** Commands are shown in error messages up to this length (b64write lines can be megabytes). */
const COMMAND_ECHO_MAX = 80;

function echo(command: string): string {
  return command.length > COMMAND_ECHO_MAX ? `${command.slice(0, COMMAND_ECHO_MAX)}...` : command;
}

export class QtestClient {
  private readonly pending: (Pending | undefined)[] = [];
  private head = 0;
  private outbox: string[] = [];
  private flushScheduled = false;
  private inbuf = '';
  private broken: BusError | undefined;
  private postedError: BusError | undefined;
  private readonly irqListeners = new Set<IrqListener>();
  private readonly deadlineTimer: NodeJS.Timeout;
  private sent = 0;

  constructor(
    private readonly socket: Socket,
    private readonly options: QtestClientOptions,
  ) {
    socket.setNoDelay(true);
    // Referenced only while a command is in flight: an idle QEMU must not keep the process alive
    // (cleanup.ts kills it at exit).
    socket.unref();
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
    socket.on('error', (err) => this.break(`qtest socket error: ${err.message}`, err));
    socket.on('close', () => this.break('QEMU closed the qtest socket'));
    // Unref'd: an idle client must not keep the process alive; a waiting command's socket does.
    this.deadlineTimer = setInterval(() => this.checkDeadline(), DEADLINE_CHECK_MS).unref();
  }

  /** Commands sent so far (for benchmarks: commands per request). */
  get commandsSent(): number {
    return this.sent;
  }

  /** Sends a command (built by qtest-protocol.ts) and resolves with the value after `OK`. */
  request(command: string): Promise<string> {
    return new Promise<string>((resolve, reject) => {
      if (this.broken) {
        reject(this.broken);
        return;
      }
      this.enqueue({ command, deadline: Date.now() + this.options.timeoutMs, resolve, reject });
    });
  }

  /** Sends a command without waiting for its reply (a posted write); a failure surfaces later. */
  post(command: string): void {
    if (this.broken) throw this.broken;
    this.enqueue({ command, deadline: Date.now() + this.options.timeoutMs, resolve: undefined, reject: undefined });
  }

  /** Resolves when every command sent so far has been answered; throws a failed posted write's error. */
  async sync(): Promise<void> {
    // `endianness` has no side effects and always answers OK.
    await this.request('endianness');
  }

  /** Listen for asynchronous IRQ lines; returns the unsubscribe function. */
  onIrq(listener: IrqListener): () => void {
    this.irqListeners.add(listener);
    return () => this.irqListeners.delete(listener);
  }

  /** Stops the client: rejects what is in flight and closes the socket. */
  close(): void {
    this.break('qtest client closed');
  }

  private enqueue(p: Pending): void {
    if (this.head === this.pending.length) this.socket.ref();
    this.pending.push(p);
    this.outbox.push(p.command);
    this.sent++;
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      queueMicrotask(() => this.flushOutbox());
    }
  }

  private flushOutbox(): void {
    this.flushScheduled = false;
    if (this.broken || this.outbox.length === 0) return;
    const text = this.outbox.join('\n') + '\n';
    this.outbox = [];
    this.socket.write(text, 'latin1');
  }

  private receive(chunk: Buffer): void {
    this.inbuf += chunk.toString('latin1');
    let start = 0;
    for (;;) {
      const nl = this.inbuf.indexOf('\n', start);
      if (nl < 0) break;
      const line = this.inbuf.slice(start, nl);
      start = nl + 1;
      this.handleLine(line);
      if (this.broken) return;
    }
    this.inbuf = this.inbuf.slice(start);
  }

  private handleLine(line: string): void {
    const parsed = parseLine(line);
    if (parsed === undefined) {
      this.break(`unexpected line from QEMU: ${echo(JSON.stringify(line))}`);
      return;
    }
    if (parsed.kind === 'irq') {
      for (const listener of this.irqListeners) listener(parsed.line, parsed.raised);
      return;
    }
    const p = this.pending[this.head];
    if (p === undefined) {
      this.break(`reply with no command in flight: ${echo(line)}`);
      return;
    }
    this.pending[this.head] = undefined;
    this.head++;
    if (this.head === this.pending.length) {
      this.pending.length = 0;
      this.head = 0;
      this.socket.unref();
    } else if (this.head > 1024 && this.head * 2 > this.pending.length) {
      this.pending.splice(0, this.head);
      this.head = 0;
    }
    if (parsed.kind === 'fail') {
      const err = new BusError(`QEMU refused \`${echo(p.command)}\`: ${parsed.text}`);
      if (p.reject) p.reject(err);
      else this.postedError ??= err;
      return;
    }
    if (!p.resolve) return;
    const posted = this.postedError;
    if (posted) {
      this.postedError = undefined;
      p.reject?.(posted);
      return;
    }
    p.resolve(parsed.value);
  }

  private checkDeadline(): void {
    const p = this.pending[this.head];
    if (p !== undefined && Date.now() > p.deadline) {
      this.break(`QEMU did not answer \`${echo(p.command)}\` within ${this.options.timeoutMs} ms`);
    }
  }

  private break(reason: string, cause?: unknown): void {
    if (this.broken) return;
    const extra = this.options.describe?.() ?? '';
    const err = new BusError(extra ? `${reason}; ${extra}` : reason, cause === undefined ? undefined : { cause });
    this.broken = err;
    clearInterval(this.deadlineTimer);
    const inFlight = this.pending.slice(this.head);
    this.pending.length = 0;
    this.head = 0;
    this.outbox = [];
    this.socket.destroy();
    for (const p of inFlight) p?.reject?.(err);
    this.options.onBroken?.(err);
  }
}
