/**
 * One console port's host side: the bytes waiting for the guest, and the host end behind them.
 * Flow control both ways without loss: host input delivered here waits until the guest has taken it
 * (the host delivers no more until then), and guest output stops being taken while the host end
 * reports itself full, and resumes once it has drained.
 */

import type { ConsoleBytePort, ConsolePortLink } from './byte-port.js';
import type { SnapshotReader } from '../../snapshot/snapshot-reader.js';
import { bytes, flag, struct, type SnapshotStruct } from '../../snapshot/snapshot-value.js';

export interface ConsolePortEvents {
  /** Host bytes arrived (or the port opened): try to move them into the guest. */
  onInput(): void;
  /** The host end drained: resume taking the guest's bytes. */
  onDrain(): void;
  /** The host end connected or went away. */
  onHostConnected(connected: boolean): void;
}

export class ConsolePort implements ConsolePortLink {
  /** Host bytes not yet in guest buffers (one delivery, unless the host delivers without waiting). */
  private pending: Uint8Array | undefined;
  private outputFull = false;
  /** The host end is there (given, and not reported gone). */
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
    private readonly host: ConsoleBytePort | undefined,
    private readonly events: ConsolePortEvents,
  ) {
    this.hostConnected = host !== undefined;
    host?.open?.(this);
  }

  /** The port's state (docs/snapshots.md): whether the driver has it ready and open, host bytes not yet in the guest. */
  snapshot(): SnapshotStruct {
    return struct({ ready: flag(this.ready), guestOpen: flag(this.guestOpen), waiting: bytes(this.pending ?? new Uint8Array(0)) });
  }

  /** Check `r` (SnapshotError otherwise) and return what applies it. */
  prepareRestore(r: SnapshotReader): () => void {
    const ready = r.flag('ready');
    const guestOpen = r.flag('guestOpen');
    const waiting = r.bytes('waiting').slice();
    return () => {
      this.ready = ready;
      this.guestOpen = guestOpen;
      this.pending = waiting.byteLength > 0 ? waiting : undefined;
    };
  }

  deliver(bytes: Uint8Array): void {
    this.pending = this.pending ? concat(this.pending, bytes) : bytes;
    this.events.onInput();
  }

  drained(): void {
    this.outputFull = false;
    this.events.onDrain();
  }

  disconnected(): void {
    if (!this.hostConnected) return;
    this.hostConnected = false;
    this.outputFull = false;
    this.events.onHostConnected(false);
  }

  /** Bytes the guest may be given now (empty when none). */
  get waiting(): Uint8Array | undefined {
    return this.pending;
  }

  /** The guest took the first `n` waiting bytes; let the host deliver more once all are taken. */
  consumed(n: number): void {
    if (!this.pending) return;
    this.pending = n >= this.pending.byteLength ? undefined : this.pending.subarray(n);
    if (!this.pending) this.host?.resume?.();
  }

  /** Whether guest output can be taken now (false while the host end is full). */
  get canWrite(): boolean {
    return !this.outputFull;
  }

  /** Bytes the host end takes before it reports itself full (Infinity when there is none to fill). */
  get room(): number {
    const host = this.host;
    if (host?.room === undefined || !this.hostConnected) return Infinity;
    return Math.max(0, host.room());
  }

  /** Guest -> host bytes (a copy the host may keep). */
  write(bytes: Uint8Array): void {
    const host = this.host;
    if (host?.write === undefined || !this.hostConnected) {
      this.discarded += bytes.byteLength;
      return;
    }
    const more = host.write(bytes);
    // The host may find its end gone only as it writes.
    if (!this.hostConnected) this.discarded += bytes.byteLength;
    else if (!more) this.outputFull = true;
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.byteLength + b.byteLength);
  out.set(a);
  out.set(b, a.byteLength);
  return out;
}
